/**
 * Speculative decoding's draft side: a small model with the target's vocabulary, in its own
 * context with one sequence per target sequence, proposes the next tokens greedily; the step loop
 * then has the target check them all in one batch (step-loop.ts, `verify`).
 *
 * The draft's KV for a sequence mirrors what the target holds: the last `maxPrefill` prompt tokens
 * (its own positions from 0), then every generated token. It is brought in line lazily before
 * each proposal: whatever it holds past the common prefix with the target's tokens is trimmed
 * and the missing tokens are evaluated. A proposal can only be wrong, never harmful: the target
 * decides every token, so what the draft holds affects the acceptance rate, not the output.
 */
import type { AddonSampler, BatchContext } from '../../runtime/llama/batch-adapter.js';

export interface SpeculatorOptions {
  /** Prompt tokens (the last ones) the draft sees; older context is left out. */
  maxPrefill: number;
  /** Proposed tokens per verification chunk. */
  chunkSize: number;
  contextSize: number;
  batchSize: number;
}

/** One sequence asking for proposals: its prompt, the generated tokens in the target KV, and the next token to feed. */
export interface DraftRequest {
  seq: number;
  prompt: ArrayLike<number>;
  generated: readonly number[];
  /** Proposals wanted (at most `chunkSize`). */
  want: number;
}

export class Speculator {
  /** Tokens whose KV cells each draft sequence holds, position by position. */
  private readonly held: number[][];
  private readonly samplers: AddonSampler[];

  constructor(
    private readonly draft: BatchContext,
    sequences: number,
    readonly opts: SpeculatorOptions,
  ) {
    this.held = Array.from({ length: sequences }, () => []);
    this.samplers = Array.from({ length: sequences }, () => {
      const s = draft.createSampler();
      s.applyConfig({ temperature: 0 });
      return s;
    });
  }

  /** The draft's context for a request: the prompt's last `maxPrefill` tokens, then what was generated. */
  private known(r: DraftRequest): number[] {
    const p = Array.from(r.prompt);
    return [...p.slice(Math.max(0, p.length - this.opts.maxPrefill)), ...r.generated];
  }

  /**
   * Greedy proposals for each request (an empty array where the draft's context is full). Runs
   * between target steps only: it decodes on the draft context.
   */
  async propose(reqs: readonly DraftRequest[]): Promise<number[][]> {
    const out: number[][] = reqs.map(() => []);
    // Catch each draft sequence up with its target, leaving the last known token to feed below.
    const feed: { i: number; tokens: number[]; at: number }[] = [];
    const live: number[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      const known = this.known(r);
      const held = this.held[r.seq]!;
      // Keep at least one token to evaluate: its logits give the first proposal.
      const keep = Math.min(commonPrefix(held, known), known.length - 1);
      if (known.length + r.want > this.opts.contextSize || r.want <= 0 || keep < 0) continue;
      if (held.length > keep) {
        if (!this.draft.trimSequence(r.seq, keep)) {
          this.draft.clearSequence(r.seq);
          held.length = 0;
          feed.push({ i, tokens: known, at: 0 });
          live.push(i);
          continue;
        }
        held.length = keep;
      }
      feed.push({ i, tokens: known.slice(keep), at: keep });
      live.push(i);
    }
    // First pass: the catch-up tokens in batch-sized rounds; logits at each sequence's last token.
    let current = new Map<number, number>();
    while (feed.some((f) => f.tokens.length > 0)) {
      let budget = this.opts.batchSize;
      const items = [];
      const owners: { i: number; last: boolean }[] = [];
      for (const f of feed) {
        if (f.tokens.length === 0 || budget === 0) continue;
        const take = Math.min(f.tokens.length, budget);
        const tokens = Uint32Array.from(f.tokens.slice(0, take));
        const last = take === f.tokens.length;
        items.push({ sequenceId: reqs[f.i]!.seq, position: f.at, tokens, wantLogits: last });
        owners.push({ i: f.i, last });
        this.held[reqs[f.i]!.seq]!.push(...tokens);
        f.tokens = f.tokens.slice(take);
        f.at += take;
        budget -= take;
      }
      const idx = await this.draft.decode(items);
      await Promise.all(
        owners.map(async (o, k) => {
          if (!o.last) return;
          const t = await this.draft.sample(idx[k]!, this.samplers[reqs[o.i]!.seq]!);
          current.set(o.i, t);
        }),
      );
    }
    for (const [i, t] of current) out[i]!.push(t);
    // Then one token per round for every sequence still wanting proposals.
    for (;;) {
      const next = new Map<number, number>();
      const items = [];
      const owners: number[] = [];
      for (const i of live) {
        const r = reqs[i]!;
        const props = out[i]!;
        if (props.length === 0 || props.length >= r.want) continue;
        const held = this.held[r.seq]!;
        const tok = props[props.length - 1]!;
        items.push({ sequenceId: r.seq, position: held.length, tokens: Uint32Array.of(tok), wantLogits: true });
        held.push(tok);
        owners.push(i);
      }
      if (items.length === 0) break;
      const idx = await this.draft.decode(items);
      await Promise.all(
        owners.map(async (i, k) => {
          next.set(i, await this.draft.sample(idx[k]!, this.samplers[reqs[i]!.seq]!));
        }),
      );
      for (const [i, t] of next) out[i]!.push(t);
      current = next;
    }
    return out;
  }

  dispose(): void {
    for (const s of this.samplers) s.dispose();
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
