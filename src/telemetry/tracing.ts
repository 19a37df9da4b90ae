/**
 * OpenTelemetry trace export over OTLP/HTTP (JSON encoding, the exporter's `http/json`). Off, and
 * free, while no endpoint is configured: no provider, no exporter, no per-request span objects.
 *
 * Endpoint, in the order the OpenTelemetry SDKs read them: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
 * (the full traces URL), `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL; `/v1/traces` is appended),
 * then `telemetry.otlp_endpoint` (either form). `OTEL_TRACES_EXPORTER=none` turns export off.
 * Sampling is parent-based: a caller's `traceparent` with the sampled flag off is respected (no
 * spans); requests without one are always sampled.
 */
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { TelemetryConfig } from '../config/types.js';
import { SERVER_VERSION } from '../version.js';

export interface Tracing {
  tracer: Tracer;
  /** Where spans go, for the start-up log. */
  url: string;
  /** Exports what is buffered and stops (server shutdown). */
  shutdown(): Promise<void>;
}

/** The traces URL to export to, or null when tracing is off. */
export function tracesUrl(cfg: TelemetryConfig, env: NodeJS.ProcessEnv = process.env): string | null {
  if ((env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase() === 'none') return null;
  const full = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '').trim();
  if (full) return full;
  const base = (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim() || cfg.otlpEndpoint;
  if (!base) return null;
  if (/\/v1\/traces\/?$/.test(base)) return base;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

export function startTracing(cfg: TelemetryConfig, env: NodeJS.ProcessEnv = process.env): Tracing | null {
  const url = tracesUrl(cfg, env);
  if (url === null) return null;
  const exporter = new OTLPTraceExporter({ url });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': (env.OTEL_SERVICE_NAME ?? '').trim() || 'inferflux',
      'service.version': SERVER_VERSION,
    }),
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    // Exported in batches off the request path; a second's delay is what a collector UI shows.
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000, maxQueueSize: 4096 })],
  });
  return { tracer: provider.getTracer('inferflux', SERVER_VERSION), url, shutdown: () => provider.shutdown() };
}
