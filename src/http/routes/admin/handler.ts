/**
 * Admin API handlers: read the live policy, or validate a change and apply it through
 * `PolicyService.update` (persisted to the policy store before it takes effect; the request path
 * sees it on the next request). Every change is audited as event `admin` with who made it and
 * what changed, never a key or a hash.
 */
import { randomBytes } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import { hashKey, hashesEqual, keyIdFromHash } from '../../../config/api-key-spec.js';
import type { PolicyService } from '../../../policy/policy-service.js';
import type { ApiKeyRecord, PolicyDocument } from '../../../policy/types.js';
import { readJsonBody } from '../../body.js';
import { sendJson } from '../../respond.js';
import { auditAdmin } from '../../admin-audit.js';
import type { AuditSink, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import {
  apiKeyView,
  guardrailsView,
  rateLimitView,
  type ApiKeyCreate,
  type GuardrailsUpdate,
  type RateLimitUpdate,
} from './schema.js';

export interface AdminDeps {
  policy: PolicyService;
  audit: AuditSink | undefined;
  maxBodyBytes: number;
  log: (msg: string) => void;
}

/** Generated keys: a fixed prefix (recognisable in secret scanners) and 256 random bits. */
export function generateKey(): string {
  return `ifx-${randomBytes(32).toString('base64url')}`;
}

/**
 * Runs one audited change: the audit line says who, what and the outcome; failures (store
 * conflicts, I/O errors) are audited too, then rethrown for the error response.
 */
async function change(
  deps: AdminDeps,
  ctx: RequestContext,
  decision: string,
  mutate: (draft: PolicyDocument) => void,
  detail: (doc: PolicyDocument) => string,
): Promise<PolicyDocument> {
  const record = (status: number, outcome: string, text: string) => auditAdmin(deps.audit, ctx, { status, decision: outcome, detail: text });
  try {
    const doc = await deps.policy.update(mutate);
    record(200, decision, detail(doc));
    return doc;
  } catch (err) {
    const e = InferFluxError.from(err);
    if (e.code === 'internal_error') deps.log(`admin ${decision} failed: ${err instanceof Error ? err.message : String(err)}`);
    record(e.status, `${decision}:error:${e.code}`, e.code);
    throw e;
  }
}

export function getGuardrails(deps: AdminDeps) {
  return (res: HttpResponse): void => {
    const doc = deps.policy.current;
    sendJson(res, 200, guardrailsView(doc.guardrails, doc.version));
  };
}

export function putGuardrails(deps: AdminDeps, validate: Validator<GuardrailsUpdate>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.maxBodyBytes));
    const doc = await change(
      deps,
      ctx,
      'guardrails.update',
      (d) => {
        const g = d.guardrails;
        if (body.blocklist !== undefined) g.blocklist = [...new Set(body.blocklist)];
        if (body.pii?.action !== undefined) g.pii.action = body.pii.action;
        if (body.pii?.kinds !== undefined) g.pii.kinds = body.pii.kinds;
        if (body.pii?.output !== undefined) g.pii.output = body.pii.output;
        if (body.opa_endpoint !== undefined) g.opaEndpoint = body.opa_endpoint;
        if (body.opa_timeout_ms !== undefined) g.opaTimeoutMs = body.opa_timeout_ms;
        if (body.opa_fail_mode !== undefined) g.opaFailMode = body.opa_fail_mode;
        d.overrides = { ...d.overrides, guardrails: new Date().toISOString() };
      },
      // Blocklist terms may themselves be sensitive: the audit line names the fields, and a hash.
      (d) => `fields=${Object.keys(body).sort().join(',')} guardrails_sha256=${hashKey(JSON.stringify(d.guardrails))} version=${d.version}`,
    );
    sendJson(res, 200, guardrailsView(doc.guardrails, doc.version));
  };
}

export function getRateLimit(deps: AdminDeps) {
  return (res: HttpResponse): void => {
    const doc = deps.policy.current;
    sendJson(res, 200, rateLimitView(doc.rateLimit, doc.version));
  };
}

export function putRateLimit(deps: AdminDeps, validate: Validator<RateLimitUpdate>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.maxBodyBytes));
    const doc = await change(
      deps,
      ctx,
      'rate_limit.update',
      (d) => {
        const r = d.rateLimit;
        if (body.requests_per_minute !== undefined) r.requestsPerMinute = body.requests_per_minute;
        if (body.tokens_per_minute !== undefined) r.tokensPerMinute = body.tokens_per_minute;
        if (body.tenant_requests_per_minute !== undefined) r.tenantRequestsPerMinute = body.tenant_requests_per_minute;
        if (body.tenant_tokens_per_minute !== undefined) r.tenantTokensPerMinute = body.tenant_tokens_per_minute;
        d.overrides = { ...d.overrides, rateLimit: new Date().toISOString() };
      },
      (d) =>
        `requests_per_minute=${d.rateLimit.requestsPerMinute} tokens_per_minute=${d.rateLimit.tokensPerMinute} ` +
        `tenant_requests_per_minute=${d.rateLimit.tenantRequestsPerMinute} tenant_tokens_per_minute=${d.rateLimit.tenantTokensPerMinute} version=${d.version}`,
    );
    sendJson(res, 200, rateLimitView(doc.rateLimit, doc.version));
  };
}

export function listApiKeys(deps: AdminDeps) {
  return (res: HttpResponse): void => {
    sendJson(res, 200, { object: 'list', data: deps.policy.current.apiKeys.map(apiKeyView) });
  };
}

/**
 * A new key: generated here and shown once, or one the operator chose (`key`, or only its
 * `key_sha256`, when migrating existing clients), which is never echoed back.
 */
export function createApiKey(deps: AdminDeps, validate: Validator<ApiKeyCreate>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.maxBodyBytes));
    if (body.key !== undefined && body.key_sha256 !== undefined) {
      throw new InferFluxError('invalid_request', "Send either 'key' or 'key_sha256', not both.", { param: 'key_sha256' });
    }
    const chosen = body.key !== undefined || body.key_sha256 !== undefined;
    let secret = '';
    let rec: ApiKeyRecord | undefined;
    await change(
      deps,
      ctx,
      'api_keys.create',
      (d) => {
        if (chosen) {
          const hash = body.key !== undefined ? hashKey(body.key) : body.key_sha256!.toLowerCase();
          const taken = d.apiKeys.find((k) => hashesEqual(k.hash, hash) || k.id === keyIdFromHash(hash));
          if (taken) throw new InferFluxError('api_key_exists', `This key is already registered as '${taken.id}'.`, { param: body.key !== undefined ? 'key' : 'key_sha256' });
          rec = { hash, id: keyIdFromHash(hash), scopes: body.scopes, tenant: body.tenant ?? 'default', createdAt: new Date().toISOString(), origin: 'store' };
        } else {
          // The id is 48 bits of the hash; draw again in the (astronomically unlikely) event of a clash.
          do {
            secret = generateKey();
            const hash = hashKey(secret);
            rec = { hash, id: keyIdFromHash(hash), scopes: body.scopes, tenant: body.tenant ?? 'default', createdAt: new Date().toISOString(), origin: 'store' };
          } while (d.apiKeys.some((k) => k.id === rec!.id));
        }
        if (body.priority !== undefined && body.priority !== 0) rec.priority = body.priority;
        if (body.label !== undefined) rec.label = body.label;
        d.apiKeys.push(rec);
      },
      (d) => `id=${rec!.id} scopes=${rec!.scopes.join('|')} tenant=${rec!.tenant} chosen=${chosen} version=${d.version}`,
    );
    // A generated key is shown this once; nothing caches this response.
    sendJson(res, 201, chosen ? apiKeyView(rec!) : { ...apiKeyView(rec!), key: secret }, { 'cache-control': 'no-store' });
  };
}

export function deleteApiKey(deps: AdminDeps) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const id = ctx.params.id!;
    // Checked before the update so a bad id costs no store write; re-checked inside it, because
    // another replica's change may have landed in between.
    const check = (keys: readonly ApiKeyRecord[]): void => {
      const found = keys.find((k) => k.id === id);
      if (!found) throw new InferFluxError('api_key_not_found', `No API key with id '${id}'.`, { param: 'id' });
      if (found.origin !== 'store') {
        throw new InferFluxError(
          'api_key_read_only',
          `The API key '${id}' comes from the server ${found.origin === 'env' ? 'environment' : 'configuration'}; remove it there.`,
          { param: 'id' },
        );
      }
    };
    check(deps.policy.current.apiKeys);
    await change(
      deps,
      ctx,
      'api_keys.delete',
      (d) => {
        check(d.apiKeys);
        d.apiKeys = d.apiKeys.filter((k) => k.id !== id);
      },
      (d) => `id=${id} version=${d.version}`,
    );
    sendJson(res, 200, { id, object: 'api_key', deleted: true });
  };
}
