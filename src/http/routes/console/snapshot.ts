/**
 * The console's one JSON document (`GET /v1/admin/console`, and each event of
 * `/v1/admin/console/events`): live state read from the sources that already exist (the gateway's
 * models, pools and running generations; the scheduler gauges and token counters in the metrics
 * registry; the engines' prefix-cache status; the live policy) plus the recent-activity rings of
 * the console feed. Ids, counts and codes only: no key, no prompt, no generated text, no OPA URL.
 */
import { performance } from 'node:perf_hooks';
import type { RunningGeneration } from '../../../generation/contract.js';
import { SERVER_VERSION } from '../../../version.js';
import type { FeedView } from '../../console-feed.js';
import type { HttpDeps } from '../../types.js';

/** Rows of a long list the snapshot carries at most (the page shows the newest). */
const MAX_RUNNING = 50;
/** How long the snapshot waits for the engines' cache status before showing the last one. */
const CACHE_STATUS_TIMEOUT_MS = 1000;

interface Sample {
  value: number;
  labels: Partial<Record<string, string | number>>;
}
interface Readable {
  get(): Promise<{ values: Sample[] }>;
}

async function samples(m: Readable): Promise<Sample[]> {
  return (await m.get()).values;
}

async function sum(m: Readable, where: (labels: Sample['labels']) => boolean = () => true): Promise<number> {
  return (await samples(m)).filter((s) => where(s.labels)).reduce((a, s) => a + s.value, 0);
}

export interface SchedulerRow {
  model: string;
  queue_depth: number;
  prefill_queue_depth: number;
  decode_queue_depth: number;
  /** Sequences generating (decode or unified pool). */
  running_sequences: number;
  /** Sequences evaluating a prompt on the prefill pool (disaggregated mode). */
  prefill_sequences: number;
}

export interface KvWorker {
  model: string;
  worker: number;
  pages_used: number;
  pages_total: number;
  snapshots: number;
  disk_bytes: number;
  /** Sequences holding KV, and the tokens they hold. */
  sequences_in_use: number;
  sequences: number;
  resident_tokens: number;
}

export interface ConsoleSnapshot {
  object: 'console.snapshot';
  time: string;
  version: string;
  uptime_s: number;
  auth: 'on' | 'off';
  models: { id: string; state: string; ready: boolean; default: boolean; architecture: string; context_size: number; parameters: number; memory_bytes: number; error: string | null }[];
  pools: { name: string; workers: number; ready: number; restarts: number }[];
  scheduler: { sequence_capacity_per_model: number; max_queue: number; models: SchedulerRow[] };
  running: { request_id: string; model: string; route: string | null; key_id: string | null; tenant: string | null; phase: string; prompt_tokens: number; generated_tokens: number; age_ms: number; ttft_ms: number | null }[];
  tokens: { prompt: number; completion: number; generating_now: number; requests: number; errors: number; cancelled: number };
  kv: { pages_used: number; pages_total: number; disk_bytes: number; workers: KvWorker[]; error: string | null } | null;
  prefix_cache: { hits: number; partial_hits: number; misses: number; matched_tokens: number; hit_rate: number | null };
  guardrails: { active: boolean; blocklist_terms: number; pii_action: string; pii_kinds: string[]; external_engine: boolean; recent: FeedView['guardrails'] };
  rate_limit: {
    backend: 'local' | 'redis';
    limits: { requests_per_minute: number; tokens_per_minute: number; tenant_requests_per_minute: number; tenant_tokens_per_minute: number } | null;
    max_concurrent_per_key: number;
    keys: FeedView['keys'];
    recent_refusals: FeedView['limits'];
  };
  requests: FeedView['requests'];
  totals: FeedView['totals'];
}

export interface SnapshotSource {
  deps: HttpDeps;
  feed: () => FeedView;
  /** Last good engine cache status (kept when an engine is too busy to answer in time). */
  lastKv?: ConsoleSnapshot['kv'];
}

function runningRow(r: RunningGeneration): ConsoleSnapshot['running'][number] {
  return {
    request_id: r.requestId,
    model: r.model,
    route: r.route ?? null,
    key_id: r.keyId ?? null,
    tenant: r.tenant ?? null,
    phase: r.phase,
    prompt_tokens: r.promptTokens,
    generated_tokens: r.generatedTokens,
    age_ms: r.ageMs,
    ttft_ms: r.ttftMs,
  };
}

/** The engines' cache status (shape of ActorSystem.cacheStatus), read defensively: `unknown` crosses the contract. */
export function kvFrom(workers: unknown): NonNullable<ConsoleSnapshot['kv']> {
  const rows: KvWorker[] = [];
  for (const w of Array.isArray(workers) ? (workers as Record<string, unknown>[]) : []) {
    const cache = (w.cache ?? null) as { host?: { pagesUsed?: number; pagesTotal?: number; snapshots?: number }; disk?: { enabled?: boolean; bytes?: number } } | null;
    const resident = Array.isArray(w.resident) ? (w.resident as number[]) : [];
    rows.push({
      model: String(w.model ?? ''),
      worker: Number(w.worker ?? 0),
      pages_used: cache?.host?.pagesUsed ?? 0,
      pages_total: cache?.host?.pagesTotal ?? 0,
      snapshots: cache?.host?.snapshots ?? 0,
      disk_bytes: cache?.disk?.enabled ? (cache.disk.bytes ?? 0) : 0,
      sequences_in_use: resident.filter((n) => n > 0).length,
      sequences: resident.length,
      resident_tokens: resident.reduce((a, n) => a + n, 0),
    });
  }
  return {
    pages_used: rows.reduce((a, r) => a + r.pages_used, 0),
    pages_total: rows.reduce((a, r) => a + r.pages_total, 0),
    disk_bytes: rows.reduce((a, r) => a + r.disk_bytes, 0),
    workers: rows,
    error: null,
  };
}

async function readKv(src: SnapshotSource): Promise<ConsoleSnapshot['kv']> {
  const cache = src.deps.gateway.cache;
  if (!cache) return null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`engines did not report their cache within ${CACHE_STATUS_TIMEOUT_MS} ms`)), CACHE_STATUS_TIMEOUT_MS);
  });
  try {
    src.lastKv = kvFrom(await Promise.race([cache.status(), timeout]));
    return src.lastKv;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ...(src.lastKv ?? { pages_used: 0, pages_total: 0, disk_bytes: 0, workers: [] }), error: why };
  } finally {
    clearTimeout(timer);
  }
}

export async function buildSnapshot(src: SnapshotSource): Promise<ConsoleSnapshot> {
  const { deps } = src;
  const { config, gateway } = deps;
  const m = deps.metrics;
  const [queue, prefillQueue, decodeQueue, active, kv] = await Promise.all([
    samples(m.queueDepth),
    samples(m.prefillQueueDepth),
    samples(m.decodeQueueDepth),
    samples(m.activeSequences),
    readKv(src),
  ]);
  const [prompt, completion, requests, errors, cancelled, hits, partial, misses, matched] = await Promise.all([
    sum(m.promptTokensTotal),
    sum(m.completionTokensTotal),
    sum(m.requestsTotal),
    sum(m.errorsTotal),
    sum(m.cancelledTotal),
    sum(m.prefixHits),
    sum(m.prefixPartialHits),
    sum(m.prefixMisses),
    sum(m.prefixMatchedTokens),
  ]);
  const models = gateway.models();
  const ready = gateway.readiness();
  const byModel = (list: Sample[], model: string, phase?: string) =>
    list.filter((s) => s.labels.model === model && (phase === undefined || s.labels.phase === phase)).reduce((a, s) => a + s.value, 0);
  const running = (gateway.running?.() ?? []).slice(0, MAX_RUNNING);
  const view = src.feed();
  const g = deps.guardrails?.policy ?? deps.policy?.current.guardrails ?? config.guardrails;
  const rl = deps.policy?.current.rateLimit;
  const lookups = hits + partial + misses;
  return {
    object: 'console.snapshot',
    time: new Date().toISOString(),
    version: SERVER_VERSION,
    uptime_s: Math.round(performance.now() / 100) / 10,
    auth: deps.pipeline?.authEnabled ? 'on' : 'off',
    models: models.map((x) => ({
      id: x.id,
      state: x.state,
      ready: x.ready,
      default: x.isDefault,
      architecture: x.architecture,
      context_size: x.contextSize,
      parameters: x.parameterCount,
      memory_bytes: x.memoryBytes,
      error: x.error,
    })),
    pools: ready.pools.map((p) => ({ name: p.name, workers: p.workers, ready: p.ready, restarts: p.restarts })),
    scheduler: {
      sequence_capacity_per_model: config.runtime.sequencesPerWorker * config.scheduler.decodePoolSize,
      max_queue: config.scheduler.maxQueue,
      models: models.map((x) => ({
        model: x.id,
        queue_depth: byModel(queue, x.id),
        prefill_queue_depth: byModel(prefillQueue, x.id),
        decode_queue_depth: byModel(decodeQueue, x.id),
        running_sequences: byModel(active, x.id, 'decode'),
        prefill_sequences: byModel(active, x.id, 'prefill'),
      })),
    },
    running: running.map(runningRow),
    tokens: {
      prompt,
      completion,
      generating_now: running.reduce((a, r) => a + r.generatedTokens, 0),
      requests,
      errors,
      cancelled,
    },
    kv,
    prefix_cache: { hits, partial_hits: partial, misses, matched_tokens: matched, hit_rate: lookups > 0 ? (hits + partial) / lookups : null },
    guardrails: {
      active: deps.guardrails?.active ?? false,
      blocklist_terms: g.blocklist.length,
      pii_action: g.pii.action,
      pii_kinds: [...g.pii.kinds],
      external_engine: g.opaEndpoint !== '',
      recent: view.guardrails,
    },
    rate_limit: {
      backend: config.rateLimitBackend.redisUrl === '' ? 'local' : 'redis',
      limits: rl
        ? {
            requests_per_minute: rl.requestsPerMinute,
            tokens_per_minute: rl.tokensPerMinute,
            tenant_requests_per_minute: rl.tenantRequestsPerMinute,
            tenant_tokens_per_minute: rl.tenantTokensPerMinute,
          }
        : null,
      max_concurrent_per_key: config.limits.maxConcurrentRequestsPerKey,
      keys: view.keys,
      recent_refusals: view.limits,
    },
    requests: view.requests,
    totals: view.totals,
  };
}
