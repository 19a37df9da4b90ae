/**
 * One audit line's content: who did what, to which model, with what outcome. Written by the audit
 * writer actor (hash-chained, batched, fsync'd); produced by the policy layer (auth, denials, admin
 * changes) and the generation facade (completions). Hashes of prompt and response by default.
 */
export interface AuditEvent {
  ts: string;
  event: 'completion' | 'error' | 'auth' | 'denial' | 'admin' | 'lifecycle';
  requestId?: string | undefined;
  keyId?: string | undefined;
  tenant?: string | undefined;
  model?: string | undefined;
  adapter?: string | undefined;
  route?: string | undefined;
  status?: number | undefined;
  decision?: string | undefined;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  latencyMs?: number | undefined;
  finishReason?: string | undefined;
  /** SHA-256 hex of the prompt / response text, or the raw text in debug mode. */
  prompt?: string | undefined;
  response?: string | undefined;
  traceparent?: string | undefined;
  detail?: string | undefined;
}
