/**
 * Per-step overhead at c=8 (issue 13, item 4): the server under `node --cpu-prof`, default
 * configuration, bench model, N closed-loop streaming clients (token prompts, greedy, ignore_eos),
 * then the .cpuprofile of every thread read back: per thread the top frames by self time inside
 * the load window, and for the engine workers the share of wall time their JS thread spends on
 * each part of a step around the native decode (batch glue, sampling, detokenizing, posting
 * tokens, GC). llama_decode and the native part of sampleToken run on the libuv pool, so the JS
 * thread is idle while they run: its busy share of the window is the step time JS adds.
 *
 *   npm run -s build && node --import tsx bench/profile-step.ts [--clients 8] [--requests 6]
 *     [--tokens 64] [--prompt 128] [--keep DIR]
 *
 * Bounded: warm-up of `clients` requests, then clients x requests requests, each with a deadline.
 * The load window is taken on CLOCK_MONOTONIC, which both this process (process.hrtime) and V8's
 * profiler timestamps use, so samples are cut to exactly the measured interval.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { streamRequest } from './stream-client.js';
import { benchModel, provenance, randomTokens, runBench, say, startServer } from './server.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Step parts, matched leaf-first up the stack: the first frame that matches names the sample. */
const PARTS: [part: string, match: (f: CallFrame) => boolean][] = [
  ['gc', (f) => f.functionName === '(garbage collector)'],
  [
    'posting',
    (f) => f.functionName === 'postMessage' || /frame-codec|msgpackr/.test(f.url) || (f.functionName === 'postFrame' && /protocol/.test(f.url)),
  ],
  ['detokenize', (f) => f.functionName === 'detokenize' || /token-text-stream|stop-matcher/.test(f.url)],
  [
    'sampling',
    (f) =>
      /engine\/sampler\.js/.test(f.url) ||
      f.functionName === 'sampleToken' ||
      (/batch-adapter/.test(f.url) && /^sample/.test(f.functionName)) ||
      (/step-loop/.test(f.url) && f.functionName === 'decodeAndSample'),
  ],
  [
    'batch glue',
    (f) => ['addToBatch', 'initBatch', 'decodeBatch'].includes(f.functionName) || (/batch-adapter/.test(f.url) && f.functionName === 'decode'),
  ],
  ['kv save/cache', (f) => /kv-tier|kv-moves|page-pool|prefix-cache|seq-state/.test(f.url) || /SequenceState/.test(f.functionName)],
];
const STEP_PARTS = new Set(['sampling', 'detokenize', 'posting']);

interface ThreadReport {
  file: string;
  kind: string;
  windowMs: number;
  busyMs: number;
  parts: Map<string, number>;
  top: [string, number][];
}

function analyse(file: string, fromUs: number, toUs: number): ThreadReport {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const urls = p.nodes.map((n) => n.callFrame.url).join(' ');
  const kinds: [string, RegExp][] = [
    ['engine worker', /engine\/worker\.js/],
    ['main thread', /uWebSockets|http\/server\.js/],
    ['tokenizer', /tokenizer/],
    ['scheduler', /scheduler/],
    ['audit', /audit/],
  ];
  const kind = kinds.find(([, re]) => re.test(urls))?.[0] ?? 'other';
  const self = new Map<number, number>();
  const parts = new Map<string, number>();
  let t = p.startTime;
  let windowUs = 0;
  let busyUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    // The time up to the next sample belongs to this one.
    const dt = (p.timeDeltas[i + 1] ?? 0);
    if (t < fromUs || t > toUs) continue;
    windowUs += dt;
    const id = p.samples[i]!;
    const name = byId.get(id)!.callFrame.functionName;
    self.set(id, (self.get(id) ?? 0) + dt);
    // A tokenizer worker parks in Atomics.wait between jobs: that is idle too.
    if (name === '(idle)' || name === '(program)' || name === 'atomicsWaitLoop') continue;
    busyUs += dt;
    let part = 'other JS';
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      const hit = PARTS.find(([, m]) => m(f));
      if (hit) {
        part = hit[0];
        break;
      }
    }
    parts.set(part, (parts.get(part) ?? 0) + dt);
  }
  const frames = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? ` ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where}`;
    frames.set(key, (frames.get(key) ?? 0) + us);
  }
  const top = [...frames].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('atomicsWaitLoop')).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, us]) => [k, us / 1000] as [string, number]);
  const ms = new Map([...parts].map(([k, us]) => [k, us / 1000]));
  return { file: path.basename(file), kind, windowMs: windowUs / 1000, busyMs: busyUs / 1000, parts: ms, top };
}

const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '8' },
      requests: { type: 'string', default: '6' },
      tokens: { type: 'string', default: '64' },
      prompt: { type: 'string', default: '128' },
      keep: { type: 'string' },
      'no-prof': { type: 'boolean', default: false },
    },
  });
  const clients = Number(values.clients);
  const perClient = Number(values.requests);
  const maxTokens = Number(values.tokens);
  const promptLen = Number(values.prompt);
  say(`model: ${await benchModel()}`);
  say(`build: ${provenance()}`);
  const dir = values.keep ?? mkdtempSync(path.join(tmpdir(), 'inferflux-prof-'));
  // --no-prof: the same load without the profiler, to see what profiling costs.
  const server = await startServer({ nodeArgs: values['no-prof'] ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  say(`server: ${server.sizing}`);
  let seed = 1;
  const one = async (): Promise<number> => {
    const r = await streamRequest({ baseUrl: server.baseUrl, prompt: randomTokens(seed++, promptLen), maxTokens, signal: AbortSignal.timeout(60_000) });
    if (!r.ok) throw new Error(`request failed: ${r.error ?? '?'}`);
    return r.completionTokens;
  };
  let tokens = 0;
  let fromUs = 0;
  let toUs = 0;
  try {
    await Promise.all(Array.from({ length: clients }, one));
    fromUs = monoUs();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let i = 0; i < perClient; i++) {
          const n = await one();
          tokens += n;
        }
      }),
    );
    toUs = monoUs();
    const s = (performance.now() - t0) / 1000;
    say(`load: ${clients} clients x ${perClient} requests, ${promptLen}-token prompts, ${maxTokens} tokens, greedy: ${tokens} tokens in ${s.toFixed(1)} s = ${(tokens / s).toFixed(1)} tok/s`);
  } finally {
    const st = await server.stop();
    say(`server stopped: code ${st.code}, ${st.ms} ms`);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
  const reports = files.map((f) => analyse(f, fromUs, toUs)).filter((r) => r.windowMs > 0);
  // Workers that ran the load (under packed placement one worker takes every stream and the
  // other idles; averaging over it would halve every figure).
  const allEngines = reports.filter((r) => r.kind === 'engine worker');
  const engines = allEngines.filter((r) => r.busyMs >= 0.01 * r.windowMs);
  for (const r of reports.sort((a, b) => a.kind.localeCompare(b.kind))) {
    say('');
    say(`## ${r.kind} (${r.file}): busy ${r.busyMs.toFixed(0)} ms of ${r.windowMs.toFixed(0)} ms (${((100 * r.busyMs) / r.windowMs).toFixed(1)}%)`);
    say('| self ms | frame |');
    say('|---:|---|');
    for (const [k, ms] of r.top) say(`| ${ms.toFixed(0)} | \`${k}\` |`);
  }
  if (engines.length > 0) {
    // Each decode step emits one token per running sequence; prefill rides in the same steps.
    const seqs = clients / engines.length;
    const steps = tokens / engines.length / seqs;
    say('');
    const idle = allEngines.length - engines.length;
    say(
      `## Engine step split (JS thread busy time as a share of wall time; ~${steps.toFixed(0)} decode steps per worker of ${seqs} sequences` +
        `${idle > 0 ? `; ${idle} idle engine worker(s) left out` : ''})`,
    );
    const names = ['batch glue', 'sampling', 'detokenize', 'posting', 'gc', 'kv save/cache', 'other JS'];
    say(`| part | ${engines.map((_, i) => `worker ${i} ms`).join(' | ')} | mean % of wall | mean ms per step |`);
    say(`|---|${engines.map(() => '---:').join('|')}|---:|---:|`);
    const share = (part: (r: ThreadReport) => number): { pct: number; perStep: number } => {
      let pct = 0;
      let ms = 0;
      for (const r of engines) {
        pct += (100 * part(r)) / r.windowMs;
        ms += part(r);
      }
      return { pct: pct / engines.length, perStep: ms / engines.length / steps };
    };
    const row = (label: string, part: (r: ThreadReport) => number): void => {
      const { pct, perStep } = share(part);
      say(`| ${label} | ${engines.map((r) => part(r).toFixed(0)).join(' | ')} | ${pct.toFixed(2)} | ${perStep.toFixed(3)} |`);
    };
    for (const n of names) row(n, (r) => r.parts.get(n) ?? 0);
    row('**sampling + detokenize + posting**', (r) => [...STEP_PARTS].reduce((a, n) => a + (r.parts.get(n) ?? 0), 0));
    row('**all JS (busy)**', (r) => r.busyMs);
    row('step wall (window / steps)', (r) => r.windowMs);
  }
  // The engine workers' own step timers (StepTiming, logged at shutdown): wall time per step part.
  const splits = server.log.map((l) => /step split: (\d+) steps, per step ms: decode ([\d.]+), sample ([\d.]+), apply ([\d.]+), between ([\d.]+)/.exec(l)).filter((m) => m !== null);
  if (splits.length > 0) {
    say('');
    say('## Engine step wall time (step-loop timers, whole run incl. warm-up; ms per step)');
    say('| worker | steps | decode | sample | apply (detokenize, post) | between | sample + apply % of step |');
    say('|---|---:|---:|---:|---:|---:|---:|');
    splits.forEach((m, i) => {
      const [decode, sample, apply, between] = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number];
      const step = decode + sample + apply + between;
      say(`| ${i} | ${m[1]} | ${decode.toFixed(2)} | ${sample.toFixed(3)} | ${apply.toFixed(3)} | ${between.toFixed(3)} | ${((100 * (sample + apply)) / step).toFixed(2)} |`);
    });
  }
  if (values.keep === undefined) rmSync(dir, { recursive: true, force: true });
  else say(`profiles kept in ${dir}`);
  return 0;
}

runBench(main);
