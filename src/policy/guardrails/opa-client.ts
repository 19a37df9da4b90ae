/**
 * The external policy engine: one decision per prompt, from an OPA-style HTTP endpoint or a JSON
 * file. Never throws: every failure (timeout, refused connection, non-2xx, malformed answer,
 * unreadable file) is `unavailable`, and the caller applies the configured fail mode.
 *
 * HTTP (`http://` / `https://`): `POST` `{"input": {prompt, messages?, model, tenant, key_id,
 * route}}`; the answer must be `{"result": {"allow": bool, "reason"?: string}}` or
 * `{"result": bool}` (a missing `result`, i.e. an undefined OPA rule, counts as malformed). The
 * whole exchange, body included, runs under one deadline of `timeoutMs`; redirects are refused.
 *
 * File (`file:///abs/path.json`, or `file://relative/path.json` against the working directory):
 * either a fixed decision in the same `{"result": ...}` shape, or a rule set, all fields optional:
 * ```json
 * { "deny_terms": ["wire transfer"], "deny_models": ["big"], "allow_models": ["demo"],
 *   "deny_tenants": ["blocked-co"], "deny_routes": ["/v1/completions"], "max_prompt_chars": 20000,
 *   "reason": "text for denials (defaults to the rule that fired)" }
 * ```
 * `deny_terms` match like the blocklist (NFKC, case-insensitive, whole words, `*` wildcards). The
 * file is re-read when its modification time changes (checked at most once a second).
 */
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Blocklist } from './blocklist.js';

export interface OpaInput {
  prompt: string;
  messages?: { role: string; content: string }[];
  model: string | null;
  tenant: string | null;
  key_id: string | null;
  route: string;
}

export type OpaOutcome =
  | { kind: 'allow' }
  | { kind: 'deny'; reason: string | undefined }
  | { kind: 'unavailable'; why: string };

export interface PolicyEngineClient {
  evaluate(input: OpaInput): Promise<OpaOutcome>;
}

/** Answers larger than this are malformed: a decision is a few bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;
const FILE_RECHECK_MS = 1000;

/** A reason from outside is shown to clients: keep it short and printable. */
function cleanReason(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, 200);
  return s === '' ? undefined : s;
}

/** `{"result": bool}` or `{"result": {"allow": bool, "reason"?}}`; anything else is null. */
export function parseDecision(body: unknown): OpaOutcome | null {
  if (typeof body !== 'object' || body === null) return null;
  const result = (body as { result?: unknown }).result;
  if (typeof result === 'boolean') return result ? { kind: 'allow' } : { kind: 'deny', reason: undefined };
  if (typeof result === 'object' && result !== null && typeof (result as { allow?: unknown }).allow === 'boolean') {
    const r = result as { allow: boolean; reason?: unknown };
    return r.allow ? { kind: 'allow' } : { kind: 'deny', reason: cleanReason(r.reason) };
  }
  return null;
}

/**
 * Uses node:http(s) with a keep-alive agent rather than `fetch`: the first `fetch` in a process
 * loads undici (~100 ms), which alone would blow a 200 ms budget on the first request.
 */
export class HttpPolicyClient implements PolicyEngineClient {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(
    endpoint: string,
    private readonly timeoutMs: number,
  ) {
    this.url = new URL(endpoint);
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.request = secure ? https.request : http.request;
  }

  evaluate(input: OpaInput): Promise<OpaOutcome> {
    const payload = JSON.stringify({ input });
    return new Promise<OpaOutcome>((resolve) => {
      let settled = false;
      const done = (o: OpaOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      const req = this.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) },
      });
      // One deadline for the whole exchange, body included.
      const timer = setTimeout(() => {
        done({ kind: 'unavailable', why: `no answer within ${this.timeoutMs} ms` });
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'unavailable', why: err.code ?? err.message }));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          res.resume();
          // Redirects are not followed: a policy endpoint that moves is a configuration error.
          return done({ kind: 'unavailable', why: `HTTP ${status}` });
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            done({ kind: 'unavailable', why: 'answer too large' });
            req.destroy();
          } else chunks.push(c);
        });
        res.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'unavailable', why: err.code ?? err.message }));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return done({ kind: 'unavailable', why: 'answer is not JSON' });
          }
          done(parseDecision(body) ?? { kind: 'unavailable', why: 'answer has no boolean result or result.allow' });
        });
      });
      req.end(payload);
    });
  }
}

interface RuleSet {
  fixed: OpaOutcome | null;
  denyTerms: Blocklist | null;
  denyModels: Set<string> | null;
  allowModels: Set<string> | null;
  denyTenants: Set<string> | null;
  denyRoutes: Set<string> | null;
  maxPromptChars: number | null;
  reason: string | undefined;
}

function stringList(v: unknown, field: string): string[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`${field} must be a list of strings`);
  return v as string[];
}

/** Parses a policy file; throws with the offending field. */
export function parseRuleSet(body: unknown): RuleSet {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('policy file must be a JSON object');
  const b = body as Record<string, unknown>;
  const known = ['result', 'deny_terms', 'deny_models', 'allow_models', 'deny_tenants', 'deny_routes', 'max_prompt_chars', 'reason'];
  const unknown = Object.keys(b).filter((k) => !known.includes(k));
  if (unknown.length) throw new Error(`unknown field(s) ${unknown.join(', ')} (supported: ${known.join(', ')})`);
  let fixed: OpaOutcome | null = null;
  if ('result' in b) {
    fixed = parseDecision(b);
    if (!fixed) throw new Error('result must be a boolean or {"allow": boolean, "reason"?: string}');
  }
  const terms = stringList(b.deny_terms, 'deny_terms');
  const set = (v: unknown, f: string) => {
    const l = stringList(v, f);
    return l ? new Set(l) : null;
  };
  const max = b.max_prompt_chars;
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 0)) {
    throw new Error('max_prompt_chars must be a non-negative integer');
  }
  return {
    fixed,
    denyTerms: terms && terms.length ? new Blocklist(terms) : null,
    denyModels: set(b.deny_models, 'deny_models'),
    allowModels: set(b.allow_models, 'allow_models'),
    denyTenants: set(b.deny_tenants, 'deny_tenants'),
    denyRoutes: set(b.deny_routes, 'deny_routes'),
    maxPromptChars: (max as number | undefined) ?? null,
    reason: cleanReason(b.reason),
  };
}

export function evaluateRuleSet(rules: RuleSet, input: OpaInput): OpaOutcome {
  if (rules.fixed) return rules.fixed;
  const deny = (rule: string): OpaOutcome => ({ kind: 'deny', reason: rules.reason ?? rule });
  if (rules.denyRoutes?.has(input.route)) return deny('route denied');
  if (input.tenant !== null && rules.denyTenants?.has(input.tenant)) return deny('tenant denied');
  if (input.model !== null && rules.denyModels?.has(input.model)) return deny('model denied');
  if (rules.allowModels && (input.model === null || !rules.allowModels.has(input.model))) return deny('model not allowed');
  if (rules.maxPromptChars !== null && input.prompt.length > rules.maxPromptChars) return deny('prompt too long');
  if (rules.denyTerms && rules.denyTerms.scan(input.prompt).kind === 'hit') return deny('denied term');
  return { kind: 'allow' };
}

/** `file://` endpoint -> filesystem path: `file:///abs` is absolute, `file://rel/x` is relative to cwd. */
export function filePathOf(endpoint: string, cwd = process.cwd()): string {
  const rest = decodeURIComponent(endpoint.slice('file://'.length));
  return path.resolve(cwd, rest);
}

export class FilePolicyClient implements PolicyEngineClient {
  private rules: RuleSet | null = null;
  private error = 'not loaded yet';
  private mtimeMs = -1;
  private checkedAt = -Infinity;
  private loading: Promise<void> | null = null;

  constructor(readonly file: string) {}

  async evaluate(input: OpaInput): Promise<OpaOutcome> {
    if (performance.now() - this.checkedAt >= FILE_RECHECK_MS) {
      this.loading ??= this.refresh().finally(() => (this.loading = null));
      await this.loading;
    }
    if (!this.rules) return { kind: 'unavailable', why: `policy file ${this.file}: ${this.error}` };
    return evaluateRuleSet(this.rules, input);
  }

  private async refresh(): Promise<void> {
    this.checkedAt = performance.now();
    try {
      const st = await stat(this.file);
      if (st.mtimeMs === this.mtimeMs && this.rules) return;
      const rules = parseRuleSet(JSON.parse(await readFile(this.file, 'utf8')));
      this.rules = rules;
      this.mtimeMs = st.mtimeMs;
    } catch (err) {
      // A file that disappears or turns invalid is unavailable (fail mode), not the old rules.
      this.rules = null;
      this.mtimeMs = -1;
      this.error = (err as Error).message;
    }
  }
}

/** The client for an endpoint, or null for '' (no external engine). */
export function policyClientFor(endpoint: string, timeoutMs: number): PolicyEngineClient | null {
  if (endpoint === '') return null;
  if (endpoint.startsWith('file://')) return new FilePolicyClient(filePathOf(endpoint));
  if (/^https?:\/\//i.test(endpoint)) return new HttpPolicyClient(endpoint, timeoutMs);
  throw new Error(`guardrails.opa_endpoint must start with http://, https:// or file:// (got "${endpoint}")`);
}
