/**
 * Embeddings behind the facade: resolve the model, check its capability (`supportsEmbeddings`,
 * from the config entry and the GGUF header), bound the batch, run the request on the embedding
 * pool (actors/embedding: its own worker threads, never the decode loop), and account for it like
 * a generation: prompt tokens in the token counters, inputs and evaluation time in the embedding
 * metrics, one audit line (hashes of the inputs unless audit.debug_mode).
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { EmbeddingPool } from '../actors/embedding/pool.js';
import type { AuditEvent } from '../audit/event.js';
import type { InferFluxConfig, ModelEntry } from '../config/types.js';
import { InferFluxError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { poolingTypeOf, supportsEmbeddings } from './capabilities.js';
import type { EmbedInput, EmbedOutput, ModelFileInfo } from './contract.js';

export interface EmbedderDeps {
  config: InferFluxConfig;
  pool: EmbeddingPool;
  metrics: Metrics;
  audit: { record(e: AuditEvent): void };
  resolveModel(id: string | undefined): ModelEntry;
  /** The ready models, in the registry's order (where a request that named no model may go instead). */
  readyModels(): ModelEntry[];
  modelFile(path: string): Promise<ModelFileInfo>;
}

export class Embedder {
  constructor(private readonly deps: EmbedderDeps) {}

  /** Starts the pool and loads every configured model that serves embeddings (start-up). */
  async warm(log: (msg: string) => void): Promise<void> {
    for (const m of this.deps.config.models) {
      if (!(await this.embeds(m))) continue;
      await this.deps.pool.warm(m.path).catch((err: unknown) => log(`embeddings for model '${m.id}' are not available yet: ${String(err)}`));
    }
  }

  async embed(input: EmbedInput, signal?: AbortSignal): Promise<EmbedOutput> {
    const started = performance.now();
    let entry = this.deps.resolveModel(input.model);
    const { config, metrics } = this.deps;
    try {
      const file = await this.deps.modelFile(entry.path);
      if (!supportsEmbeddings({ embeddings: entry.embeddings, metadata: file.metadata })) {
        // A request that named no model goes to a served model that embeds (capability route
        // fallback); one that named its model gets that model or the error, never another.
        const routed = input.model === undefined || input.model === '' ? await this.embeddingModel() : null;
        if (!routed) {
          const pooling = poolingTypeOf(file.metadata);
          throw new InferFluxError(
            'embeddings_not_supported',
            `Model '${entry.id}' does not have the embeddings capability: its GGUF declares ${pooling === null ? 'no pooling type' : `pooling type ${pooling}`} ` +
              `(an embedding model declares mean, cls or last)${entry.embeddings === false ? ' and its models entry says embeddings: false' : ''}` +
              `${input.model ? '' : ', and no other served model has it'}. ` +
              'Use an embedding model, or set embeddings: true on its models entry to embed with it anyway.',
            { param: 'model', capability: { model: entry.id, name: 'embeddings' } },
          );
        }
        metrics.capabilityRouteFallbacks.inc({ capability: 'embeddings', from_model: entry.id, to_model: routed.id });
        entry = routed;
      }
      const max = config.runtime.embeddings.batchMax;
      if (input.inputs.length > max) {
        throw new InferFluxError('invalid_request', `${input.inputs.length} inputs in one request; this server embeds at most ${max} (runtime.embeddings.batch_max).`, {
          param: input.param,
        });
      }
      const r = await this.deps.pool.embed(
        {
          modelPath: entry.path,
          inputs: input.inputs,
          maxTokens: input.maxTokens ?? config.runtime.embeddings.contextSize,
          truncate: input.truncate,
          param: input.param,
          single: input.single,
        },
        signal,
      );
      const promptTokens = r.tokens.reduce((a, b) => a + b, 0);
      const model = { model: entry.id };
      metrics.promptTokensTotal.inc({ ...model, backend: entry.backend }, promptTokens);
      metrics.embeddingInputs.inc(model, input.inputs.length);
      metrics.embeddingDuration.observe(model, r.evalMs / 1000);
      const totalMs = performance.now() - started;
      this.audit(input, entry.id, 200, 'allow', promptTokens, totalMs);
      return { model: entry.id, vectors: r.vectors, promptTokens, loadMs: r.loadMs, evalMs: r.evalMs, totalMs };
    } catch (err) {
      const e = InferFluxError.from(err);
      this.audit(input, entry.id, e.status, `error:${e.code}`, 0, performance.now() - started);
      throw e;
    }
  }

  /** The first ready model that embeds, in the registry's order, or null. */
  private async embeddingModel(): Promise<ModelEntry | null> {
    for (const m of this.deps.readyModels()) if (await this.embeds(m)) return m;
    return null;
  }

  /** Whether a model serves embeddings (its entry and its GGUF); false when its file cannot be read. */
  private async embeds(m: ModelEntry): Promise<boolean> {
    const file = await this.deps.modelFile(m.path).catch(() => null);
    return file !== null && supportsEmbeddings({ embeddings: m.embeddings, metadata: file.metadata });
  }

  private audit(input: EmbedInput, model: string, status: number, decision: string, promptTokens: number, latencyMs: number): void {
    const text = JSON.stringify(input.inputs.map((i) => ('text' in i ? i.text : i.tokens)));
    this.deps.audit.record({
      ts: new Date().toISOString(),
      event: status >= 400 ? 'error' : 'completion',
      requestId: input.requestId,
      keyId: input.keyId,
      tenant: input.tenant,
      traceparent: input.traceparent,
      route: input.route,
      model,
      status,
      decision,
      promptTokens,
      completionTokens: 0,
      latencyMs: Math.round(latencyMs * 1000) / 1000,
      // Raw inputs only in debug mode; the vectors are not logged (they are derived from the inputs).
      prompt: this.deps.config.audit.debugMode ? text : createHash('sha256').update(text).digest('hex'),
    });
  }
}
