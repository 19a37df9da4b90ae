/**
 * The one table of client-visible errors. Every error a client can see has an entry here; the
 * HTTP edge renders it in OpenAI's shape (`{"error": {message, type, param, code}}`), and errors
 * crossing threads travel as `WireError` data and are rebuilt from this table on the main thread,
 * so nothing depends on `instanceof` across workers or on matching message text.
 */

export interface ErrorSpec {
  readonly status: number;
  /** OpenAI's `type` string. */
  readonly type: string;
  /** Stable machine code; equals the key of the table entry. */
  readonly code: string;
  /** Default message when the thrower gives none. */
  readonly message: string;
  /**
   * Seconds a client should wait before retrying, on every 429/503 where retrying can help;
   * becomes `Retry-After`. A thrower that knows better (a rate limit's refill time) overrides it.
   */
  readonly retryAfter?: number;
}

function spec<const C extends string>(code: C, status: number, type: string, message: string, retryAfter?: number) {
  return { code, status, type, message, retryAfter } as const;
}

export const ERRORS = {
  invalid_json: spec('invalid_json', 400, 'invalid_request_error', 'The request body is not valid JSON.'),
  invalid_request: spec('invalid_request', 400, 'invalid_request_error', 'The request is invalid.'),
  // Responses WebSocket mode: a connection keeps only its most recent response.
  previous_response_not_found: spec('previous_response_not_found', 400, 'invalid_request_error', 'The previous response is not kept on this connection.'),
  context_length_exceeded: spec(
    'context_length_exceeded',
    400,
    'invalid_request_error',
    "The prompt plus max_tokens exceeds the model's context length.",
  ),
  // The message names the model; 400 as Ollama answers a model without the embedding capability.
  embeddings_not_supported: spec(
    'embeddings_not_supported',
    400,
    'invalid_request_error',
    'The model does not serve embeddings.',
  ),
  // The message names the reason code: blocklist, pii_<kind>, opa_denied, opa_unavailable, token_prompt.
  guardrail_denied: spec('guardrail_denied', 400, 'invalid_request_error', 'Denied by guardrail policy.'),
  unauthorized: spec('unauthorized', 401, 'authentication_error', 'Missing or invalid credentials.'),
  forbidden: spec('forbidden', 403, 'permission_error', 'The credentials lack the scope this route needs.'),
  not_found: spec('not_found', 404, 'invalid_request_error', 'No such route.'),
  model_not_found: spec('model_not_found', 404, 'invalid_request_error', 'The model does not exist.'),
  api_key_not_found: spec('api_key_not_found', 404, 'invalid_request_error', 'No API key with this id.'),
  method_not_allowed: spec('method_not_allowed', 405, 'invalid_request_error', 'Method not allowed on this route.'),
  api_key_exists: spec('api_key_exists', 409, 'invalid_request_error', 'This key is already registered (its id is in the message).'),
  api_key_read_only: spec(
    'api_key_read_only',
    409,
    'invalid_request_error',
    'This API key comes from the server configuration or environment; change it there, not through the admin API.',
  ),
  policy_conflict: spec(
    'policy_conflict',
    409,
    'invalid_request_error',
    'The policy was changed by another replica at the same time; the newer policy is being loaded. Retry the change.',
  ),
  headers_too_large: spec(
    'headers_too_large',
    431,
    'invalid_request_error',
    'The request headers are larger than server.max_header_bytes allows.',
  ),
  host_not_allowed: spec(
    'host_not_allowed',
    421,
    'invalid_request_error',
    'The Host header names a host this server does not answer for (server.allowed_hosts).',
  ),
  request_too_large: spec('request_too_large', 413, 'invalid_request_error', 'The request body is too large.'),
  unsupported_media_type: spec(
    'unsupported_media_type',
    415,
    'invalid_request_error',
    'The request body must be application/json.',
  ),
  capability_not_supported: spec(
    'capability_not_supported',
    422,
    'invalid_request_error',
    'The model does not have the capability this request needs.',
  ),
  queue_full: spec('queue_full', 429, 'rate_limit_error', 'The server is at capacity; retry later.', 1),
  rate_limited: spec('rate_limited', 429, 'rate_limit_error', 'Rate limit reached; retry after the time in Retry-After.', 1),
  too_many_concurrent_requests: spec(
    'too_many_concurrent_requests',
    429,
    'rate_limit_error',
    'This key has as many generation requests in flight as limits.max_concurrent_requests_per_key allows; retry when one finishes.',
    1,
  ),
  // Pulling models (src/runtime/models): the message names the host, file or digest.
  download_refused: spec(
    'download_refused',
    400,
    'invalid_request_error',
    'The download would reach a host or scheme a pull may not use (private, loopback or link-local addresses need pull.allowed_private_hosts).',
  ),
  hub_access_denied: spec(
    'hub_access_denied',
    403,
    'permission_error',
    'The hub refused access to the repository (gated or private); set HF_TOKEN to a token that can read it.',
  ),
  pull_in_progress: spec('pull_in_progress', 409, 'invalid_request_error', 'This model is already being pulled; wait for that pull to finish.'),
  download_failed: spec('download_failed', 502, 'server_error', 'The download failed; the partial file is kept and the next pull resumes it.'),
  digest_mismatch: spec('digest_mismatch', 502, 'server_error', 'The downloaded file does not match its SHA-256 digest; it was removed.'),
  internal_error: spec('internal_error', 500, 'server_error', 'Internal server error.'),
  not_implemented: spec('not_implemented', 501, 'server_error', 'This endpoint is not implemented on this server yet.'),
  model_not_loaded: spec('model_not_loaded', 503, 'service_unavailable', 'No model is loaded.', 5),
  worker_crashed: spec(
    'worker_crashed',
    503,
    'service_unavailable',
    'The engine worker serving this request stopped; the request was not completed. Retry it.',
    1,
  ),
  shutting_down: spec('shutting_down', 503, 'service_unavailable', 'The server is shutting down.', 1),
  policy_store_unavailable: spec(
    'policy_store_unavailable',
    503,
    'service_unavailable',
    'The policy store could not be written; nothing was changed. Retry later.',
    1,
  ),
  rate_limiter_unavailable: spec(
    'rate_limiter_unavailable',
    503,
    'service_unavailable',
    'The shared rate limiter (Redis) did not answer and rate_limit.redis_fail_mode is closed; the request was not admitted. Retry later.',
    1,
  ),
  guardrail_unavailable: spec(
    'guardrail_unavailable',
    503,
    'service_unavailable',
    'The external policy engine could not decide and guardrails.opa_fail_mode is closed; the request was not checked. Retry later.',
    5,
  ),
  auth_unavailable: spec(
    'auth_unavailable',
    503,
    'service_unavailable',
    "The identity provider's signing keys could not be fetched; the token was not checked. Retry later.",
    5,
  ),
  // Model registry (runtime load/unload, /v1/admin/models).
  model_unloading: spec('model_unloading', 503, 'service_unavailable', 'The model is being unloaded; requests already running finish, new ones are refused.', 1),
  model_exists: spec('model_exists', 409, 'invalid_request_error', 'A model with this id is already loaded or loading.'),
  model_is_default: spec(
    'model_is_default',
    409,
    'invalid_request_error',
    'The default model cannot be unloaded; make another model the default first.',
  ),
  model_not_ready: spec('model_not_ready', 409, 'invalid_request_error', 'The model is not ready (loading, unloading or failed).'),
  invalid_model_path: spec('invalid_model_path', 400, 'invalid_request_error', 'The model path is not a readable file inside the allowed models directory.'),
  invalid_model_file: spec('invalid_model_file', 422, 'invalid_request_error', 'The file is not a GGUF model llama.cpp can load safely.'),
  // LoRA adapters (/v1/admin/adapters, `base:adapter` model ids, the `adapter` request field).
  adapter_not_found: spec('adapter_not_found', 404, 'invalid_request_error', 'The adapter is not loaded for this model.'),
  adapter_exists: spec('adapter_exists', 409, 'invalid_request_error', 'An adapter with this id is already loaded or loading.'),
  adapter_unloading: spec('adapter_unloading', 503, 'service_unavailable', 'The adapter is being unloaded; requests already running finish, new ones are refused.', 1),
  invalid_adapter_file: spec('invalid_adapter_file', 422, 'invalid_request_error', 'The file is not a LoRA adapter llama.cpp can apply to this model.'),
  insufficient_memory: spec(
    'insufficient_memory',
    507,
    'server_error',
    'Loading this model would pass runtime.memory_budget_bytes; unload a model or raise the budget.',
  ),
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** An error as it crosses a thread boundary: plain data, rebuilt on the other side. */
export interface WireError {
  code: ErrorCode;
  message: string;
  param?: string | null;
  /** Travels so the thrower's retry time survives the thread hop; absent means the table's. */
  retryAfter?: number;
}

export class InferFluxError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  /** Seconds a client should wait before retrying (429/503); becomes `Retry-After`. */
  readonly retryAfter: number | undefined;
  /** The model capability a refusal names (`inferflux_capability_rejections_total`). */
  readonly capability: { model: string; name: string } | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    opts: { param?: string | null; cause?: unknown; retryAfter?: number; capability?: { model: string; name: string } } = {},
  ) {
    const entry = ERRORS[code];
    super(message ?? entry.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'InferFluxError';
    this.code = code;
    this.status = entry.status;
    this.type = entry.type;
    this.param = opts.param ?? null;
    this.retryAfter = opts.retryAfter ?? (entry as ErrorSpec).retryAfter;
    this.capability = opts.capability;
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, param: this.param };
    if (this.retryAfter !== undefined) wire.retryAfter = this.retryAfter;
    return wire;
  }

  static fromWire(wire: WireError): InferFluxError {
    const code: ErrorCode = isErrorCode(wire.code) ? wire.code : 'internal_error';
    const retryAfter = typeof wire.retryAfter === 'number' && Number.isFinite(wire.retryAfter) ? wire.retryAfter : undefined;
    return new InferFluxError(code, wire.message, { param: wire.param ?? null, retryAfter });
  }

  /** Anything thrown becomes an InferFluxError; unknown errors are internal and keep their cause. */
  static from(err: unknown): InferFluxError {
    if (err instanceof InferFluxError) return err;
    return new InferFluxError('internal_error', undefined, { cause: err });
  }
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERRORS, code);
}

/**
 * The wire protocols whose clients InferFlux serves. Each has its own error envelope; the error
 * itself (status, code, message) always comes from the one table above.
 */
export type WireProtocol = 'openai' | 'ollama' | 'anthropic';

/** OpenAI's error envelope. */
export function openAIErrorBody(err: InferFluxError): {
  error: { message: string; type: string; param: string | null; code: string };
} {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}

/** Anthropic's error `type` for an HTTP status (its API reference, "Errors"). */
function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 409:
    case 415:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return 'api_error';
  }
}

/** The error body a client of `protocol` expects (Ollama: `{"error": "..."}`; Anthropic: `{"type":"error","error":{type,message}}`). */
export function errorBody(protocol: WireProtocol, err: InferFluxError): unknown {
  switch (protocol) {
    case 'openai':
      return openAIErrorBody(err);
    case 'ollama':
      return { error: err.message };
    case 'anthropic':
      return { type: 'error', error: { type: anthropicErrorType(err.status), message: err.message } };
    default: {
      const never: never = protocol;
      throw new Error(`unknown protocol ${String(never)}`);
    }
  }
}
