/**
 * Guardrails on the request path: the compiled form of the live `GuardrailPolicy` (blocklist
 * regex, PII kinds, external policy client), rebuilt once per policy change and read per request
 * as one snapshot, so a request never sees half of an update.
 *
 * A prompt goes through the local checks (blocklist, PII block or redact) and then, with the
 * redacted text only, through the external engine. The verdict carries the prompt to generate
 * from and the rules the output filter applies to what the model writes.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AuditEvent } from '../../audit/event.js';
import type { ChatMessage, PromptInput } from '../../generation/contract.js';
import { InferFluxError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import type { GuardrailPolicy, PiiKind } from '../types.js';
import { Blocklist } from './blocklist.js';
import { policyClientFor, type OpaInput, type PolicyEngineClient } from './opa-client.js';
import type { OutputRules } from './output-filter.js';
import { findPii, redact } from './pii.js';

/** What the engine needs of the live policy (PolicyService satisfies it). */
export interface GuardrailSource {
  readonly current: { readonly guardrails: GuardrailPolicy };
  subscribe(listener: (doc: { readonly guardrails: GuardrailPolicy }, previous: { readonly guardrails: GuardrailPolicy }) => void): () => void;
}

export interface PromptContext {
  prompt: PromptInput;
  model: string | undefined;
  tenant?: string | undefined;
  keyId?: string | undefined;
  /** Route pattern, e.g. `/v1/chat/completions`. */
  route: string;
}

export type GuardrailEngineKind = 'local' | 'opa';

export type PromptVerdict =
  | { allow: true; prompt: PromptInput; redacted: PiiKind[]; output: OutputRules | null }
  | { allow: false; reason: string; engine: GuardrailEngineKind; detail?: string | undefined };

interface Compiled {
  policy: GuardrailPolicy;
  blocklist: Blocklist;
  pii: { action: 'off' | 'redact' | 'block'; kinds: ReadonlySet<PiiKind> };
  client: PolicyEngineClient | null;
  output: OutputRules | null;
  active: boolean;
}

/** Reason of a prompt the external engine could not judge while the fail mode is `closed`. */
const OPA_UNAVAILABLE = 'opa_unavailable';

/**
 * The client-visible refusal of a prompt: 400 `guardrail_denied` with the reason code in the
 * message, `param` null; or, when the external engine could not decide (fail mode closed), 503
 * `guardrail_unavailable` with Retry-After: nothing is wrong with the request, so the client may
 * retry. Why the engine failed (timeouts, paths) goes to the log and audit, not to the client.
 */
export function guardrailDenied(reason: string, detail?: string): InferFluxError {
  if (reason === OPA_UNAVAILABLE) return new InferFluxError('guardrail_unavailable');
  const why = detail ? ` (${detail})` : '';
  return new InferFluxError('guardrail_denied', `Denied by guardrail policy: ${reason}${why}.`);
}

/** The audit line of a denial: the prompt as its SHA-256 unless debug mode. */
export function denialAuditEvent(
  ctx: PromptContext & { requestId: string },
  reason: string,
  stage: 'prompt' | 'output',
  debugMode: boolean,
  detail?: string,
): AuditEvent {
  const text = promptText(ctx.prompt);
  return {
    ts: new Date().toISOString(),
    event: 'denial',
    requestId: ctx.requestId,
    keyId: ctx.keyId,
    tenant: ctx.tenant,
    model: ctx.model,
    route: ctx.route,
    status: guardrailDenied(reason).status,
    decision: `guardrail:${reason}`,
    prompt: debugMode ? text : createHash('sha256').update(text).digest('hex'),
    detail: detail ? `${stage}: ${detail}` : stage,
  };
}

function promptText(p: PromptInput): string {
  return p.kind === 'chat' ? JSON.stringify(p.messages) : p.kind === 'text' ? p.text : JSON.stringify(p.tokens);
}

export interface GuardrailEngineOptions {
  metrics?: Metrics | undefined;
  log?: ((msg: string) => void) | undefined;
}

export class GuardrailEngine {
  private compiled: Compiled;
  private readonly metrics: Metrics | undefined;
  private readonly log: (msg: string) => void;
  private lastUnavailableLog = -Infinity;

  constructor(policy: GuardrailPolicy, opts: GuardrailEngineOptions = {}) {
    this.metrics = opts.metrics;
    this.log = opts.log ?? (() => {});
    this.compiled = this.compile(policy);
  }

  /** The policy now in force. */
  get policy(): GuardrailPolicy {
    return this.compiled.policy;
  }

  /** False when nothing is configured: routes skip guardrails entirely. */
  get active(): boolean {
    return this.compiled.active;
  }

  /** Replace the policy; requests already past their prompt check keep the rules they started with. */
  setPolicy(policy: GuardrailPolicy): void {
    this.compiled = this.compile(policy);
  }

  /** Follow the live policy: adopt its guardrails now and on every change. Returns the unsubscriber. */
  follow(source: GuardrailSource): () => void {
    this.setPolicy(source.current.guardrails);
    return source.subscribe((doc) => {
      if (JSON.stringify(doc.guardrails) !== JSON.stringify(this.compiled.policy)) this.setPolicy(doc.guardrails);
    });
  }

  private compile(policy: GuardrailPolicy): Compiled {
    const blocklist = new Blocklist(policy.blocklist);
    const kinds = new Set(policy.pii.action === 'off' ? [] : policy.pii.kinds);
    let client: PolicyEngineClient | null;
    try {
      client = policyClientFor(policy.opaEndpoint, policy.opaTimeoutMs);
    } catch (err) {
      // Reached only through a stored policy (config is validated): fail mode decides, loudly.
      const why = (err as Error).message;
      this.log?.(`guardrails: ${why}; every external check is unavailable`);
      client = { evaluate: async () => ({ kind: 'unavailable', why }) };
    }
    const pii = { action: kinds.size ? policy.pii.action : ('off' as const), kinds };
    // `pii.output: false` scrubs prompts only: streams are not held back for possible PII.
    const outputPii = pii.action !== 'off' && policy.pii.output !== false;
    const outputActive = blocklist.size > 0 || outputPii;
    return {
      policy,
      blocklist,
      pii,
      client,
      output: outputActive ? { blocklist, piiAction: outputPii ? pii.action : 'off', piiKinds: outputPii ? kinds : new Set<PiiKind>() } : null,
      active: outputActive || client !== null,
    };
  }

  /** Checks a prompt. Never rejects: failures of the external engine follow the fail mode. */
  async checkPrompt(ctx: PromptContext): Promise<PromptVerdict> {
    const c = this.compiled;
    if (!c.active) return { allow: true, prompt: ctx.prompt, redacted: [], output: null };

    const t0 = performance.now();
    const local = this.checkLocal(c, ctx.prompt);
    this.metrics?.guardrailVerdict.observe({ stage: 'prompt', engine: 'local' }, (performance.now() - t0) / 1000);
    if ('reason' in local) return this.deny(local.reason, 'local');
    for (const kind of local.redacted) this.metrics?.guardrailRedactions.inc({ stage: 'prompt', kind });

    if (c.client) {
      const t1 = performance.now();
      const outcome = await c.client.evaluate(opaInput(ctx, local.prompt));
      this.metrics?.guardrailVerdict.observe({ stage: 'prompt', engine: 'opa' }, (performance.now() - t1) / 1000);
      if (outcome.kind === 'deny') return this.deny('opa_denied', 'opa', outcome.reason);
      if (outcome.kind === 'unavailable') {
        const now = performance.now();
        if (now - this.lastUnavailableLog > 10_000) {
          this.lastUnavailableLog = now;
          this.log(`guardrails: external policy engine unavailable (${outcome.why}); failing ${c.policy.opaFailMode}`);
        }
        if (c.policy.opaFailMode === 'closed') return this.deny(OPA_UNAVAILABLE, 'opa', outcome.why);
      }
    }
    return { allow: true, prompt: local.prompt, redacted: local.redacted, output: c.output };
  }

  /** Counts a denial found while streaming the output (the sink wrapper reports it). */
  recordOutputDenial(reason: string): void {
    this.metrics?.guardrailDenials.inc({ stage: 'output', reason });
  }

  /** Time the output filter spent on one request, observed once at its end. */
  recordOutputTime(seconds: number, redacted: readonly PiiKind[]): void {
    this.metrics?.guardrailVerdict.observe({ stage: 'output', engine: 'local' }, seconds);
    for (const kind of redacted) this.metrics?.guardrailRedactions.inc({ stage: 'output', kind });
  }

  private deny(reason: string, engine: GuardrailEngineKind, detail?: string): PromptVerdict {
    this.metrics?.guardrailDenials.inc({ stage: 'prompt', reason });
    return { allow: false, reason, engine, detail };
  }

  private checkLocal(c: Compiled, prompt: PromptInput): { prompt: PromptInput; redacted: PiiKind[] } | { reason: string } {
    if (prompt.kind === 'tokens') {
      // Token ids cannot be read without the model's vocabulary: refuse rather than wave through.
      return { reason: 'token_prompt' };
    }
    const texts = prompt.kind === 'chat' ? prompt.messages.map((m) => m.content) : [prompt.text];
    for (const t of texts) if (c.blocklist.scan(t).kind === 'hit') return { reason: 'blocklist' };
    if (c.pii.action === 'off') return { prompt, redacted: [] };

    const redacted: PiiKind[] = [];
    const out: string[] = [];
    for (const t of texts) {
      const found = findPii(t, c.pii.kinds);
      if (found.length && c.pii.action === 'block') return { reason: `pii_${found[0]!.kind}` };
      for (const m of found) redacted.push(m.kind);
      out.push(redact(t, found));
    }
    if (redacted.length === 0) return { prompt, redacted };
    const next: PromptInput =
      prompt.kind === 'chat'
        ? { ...prompt, messages: prompt.messages.map((m, i): ChatMessage => ({ ...m, content: out[i]! })) }
        : { kind: 'text', text: out[0]! };
    return { prompt: next, redacted };
  }
}

function opaInput(ctx: PromptContext, prompt: PromptInput): OpaInput {
  const base = { model: ctx.model ?? null, tenant: ctx.tenant ?? null, key_id: ctx.keyId ?? null, route: ctx.route };
  if (prompt.kind === 'chat') {
    const messages = prompt.messages.map((m) => ({ role: m.role, content: m.content }));
    return { prompt: messages.map((m) => m.content).join('\n'), messages, ...base };
  }
  return { prompt: prompt.kind === 'text' ? prompt.text : '', ...base };
}
