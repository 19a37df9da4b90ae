/**
 * What the operations console (`/ui`, `/v1/admin/console`) shows of recent activity, kept on the
 * main thread in bounded rings: finished requests (from the access-log hook in server.ts),
 * guardrail decisions and redactions, rate-limit and concurrency refusals (from the audit events
 * the policy layer and the routes already write), and the last rate-limit budget seen per key.
 *
 * Only ids, counts and codes are kept: never a key, a bearer token, a prompt or a response (the
 * audit event's `prompt`/`response` fields are not copied), so nothing here can leak them.
 */
import type { AuditEvent } from '../audit/event.js';
import { RingBuffer } from '../runtime/ring-buffer.js';

/** One finished request, as the access log saw it. */
export interface RequestRecord {
  at: string;
  request_id: string;
  /** W3C trace id (32 hex) of the request's trace. */
  trace_id: string;
  method: string;
  route: string;
  status: number;
  latency_ms: number;
  model: string | null;
  tokens_in: number | null;
  tokens_out: number | null;
  /** Arrival to the first generated text, for generations that produced any. */
  ttft_ms: number | null;
  key_id: string | null;
  tenant: string | null;
  error_code: string | null;
}

/** A guardrail verdict worth showing: a denial (prompt or output) or a redaction. */
export interface GuardrailRecord {
  at: string;
  action: 'deny' | 'redact';
  stage: 'prompt' | 'output';
  /** Denial reason code (`blocklist`, `pii_email`, `opa_denied`) or the redacted PII kinds. */
  reason: string;
  request_id: string | null;
  route: string | null;
  model: string | null;
  key_id: string | null;
  tenant: string | null;
}

/** A request refused by the rate limiter or the per-key concurrency cap. */
export interface LimitRecord {
  at: string;
  request_id: string | null;
  route: string | null;
  key_id: string | null;
  tenant: string | null;
  status: number;
  detail: string;
}

export interface Budget {
  limit: number;
  remaining: number;
}

/** The last rate-limit budget a key's request saw (from the `x-ratelimit-*` headers it got). */
export interface KeyBudget {
  key_id: string;
  tenant: string | null;
  at: string;
  requests: Budget | null;
  tokens: Budget | null;
}

export interface ConsoleFeedLimits {
  /** Recent requests kept. Defaults to `100`. */
  requests?: number;
  /** Recent guardrail decisions kept. Defaults to `100`. */
  guardrails?: number;
  /** Recent limit refusals kept. Defaults to `100`. */
  limits?: number;
  /** Keys whose last budget is kept (least recently seen forgotten first). Defaults to `64`. */
  keys?: number;
}

export interface FeedView {
  requests: RequestRecord[];
  guardrails: GuardrailRecord[];
  limits: LimitRecord[];
  keys: KeyBudget[];
  /** Since start: how many of each were ever recorded (the rings keep only the last ones). */
  totals: { requests: number; guardrail_denials: number; guardrail_redactions: number; limit_refusals: number };
}

/** Routes whose requests the console does not list: its own page and API (it polls and streams). */
const OWN_ROUTES = /^\/(ui(\/|$)|v1\/admin\/console(\/|$))/;

export class ConsoleFeed {
  private readonly requests: RingBuffer<RequestRecord>;
  private readonly guardrails: RingBuffer<GuardrailRecord>;
  private readonly limits: RingBuffer<LimitRecord>;
  private readonly keys = new Map<string, KeyBudget>();
  private readonly maxKeys: number;
  private denials = 0;
  private redactions = 0;
  private readonly shutdownHooks = new Set<() => void>();

  constructor(limits: ConsoleFeedLimits = {}) {
    this.requests = new RingBuffer(limits.requests ?? 100);
    this.guardrails = new RingBuffer(limits.guardrails ?? 100);
    this.limits = new RingBuffer(limits.limits ?? 100);
    this.maxKeys = limits.keys ?? 64;
  }

  /** A finished request; the console's own routes are skipped. */
  request(r: RequestRecord): void {
    if (OWN_ROUTES.test(r.route)) return;
    this.requests.push(r);
  }

  /** PII redacted from a prompt or an output (kinds only, never the text). */
  redaction(r: Omit<GuardrailRecord, 'action' | 'at'>): void {
    this.redactions++;
    this.guardrails.push({ at: new Date().toISOString(), action: 'redact', ...r });
  }

  /**
   * The rate-limit budget a key's request was told about (`x-ratelimit-*` response headers);
   * requests without those headers (no limit set, public routes) change nothing.
   */
  budget(keyId: string | undefined, tenant: string | undefined, headers: Readonly<Record<string, string>>): void {
    if (!keyId) return;
    const read = (kind: 'requests' | 'tokens'): Budget | null => {
      const limit = headers[`x-ratelimit-limit-${kind}`];
      const remaining = headers[`x-ratelimit-remaining-${kind}`];
      return limit === undefined || remaining === undefined ? null : { limit: Number(limit), remaining: Number(remaining) };
    };
    const requests = read('requests');
    const tokens = read('tokens');
    if (!requests && !tokens) return;
    // Re-inserted so the Map's order is least recently seen first.
    this.keys.delete(keyId);
    this.keys.set(keyId, { key_id: keyId, tenant: tenant ?? null, at: new Date().toISOString(), requests, tokens });
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
  }

  /** Picks what the console shows from an audit event: guardrail denials and limit refusals. */
  audit(e: AuditEvent): void {
    if (e.event !== 'denial') return;
    const who = { request_id: e.requestId ?? null, route: e.route ?? null, key_id: e.keyId ?? null, tenant: e.tenant ?? null };
    if (e.decision?.startsWith('guardrail:')) {
      this.denials++;
      const stage = e.detail?.startsWith('output') ? 'output' : 'prompt';
      this.guardrails.push({ at: e.ts, action: 'deny', stage, reason: e.decision.slice('guardrail:'.length), model: e.model ?? null, ...who });
      return;
    }
    const detail = e.detail ?? '';
    if (e.status === 429 || detail.startsWith('rate limit') || detail.startsWith('concurrency')) {
      this.limits.push({ at: e.ts, status: e.status ?? 429, detail, ...who });
    }
  }

  /** An audit sink that writes to `inner` and shows the event here too. */
  tee(inner: { record(e: AuditEvent): void }): { record(e: AuditEvent): void } {
    return {
      record: (e) => {
        inner.record(e);
        this.audit(e);
      },
    };
  }

  view(): FeedView {
    return {
      requests: this.requests.newestFirst(),
      guardrails: this.guardrails.newestFirst(),
      limits: this.limits.newestFirst(),
      keys: [...this.keys.values()].reverse(),
      totals: { requests: this.requests.total, guardrail_denials: this.denials, guardrail_redactions: this.redactions, limit_refusals: this.limits.total },
    };
  }

  /** Called when the server shuts down (the console's live streams end then). */
  onShutdown(fn: () => void): () => void {
    this.shutdownHooks.add(fn);
    return () => this.shutdownHooks.delete(fn);
  }

  shutdown(): void {
    for (const fn of [...this.shutdownHooks]) fn();
    this.shutdownHooks.clear();
  }
}
