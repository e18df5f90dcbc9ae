/**
 * SpecDecoder: speculative decoding inside the engine's ordinary step (ARCHITECTURE.md).
 *
 *   (a) before schedule(): `prepare` asks the proposer for k drafts per decoding sequence and hands
 *       them to the scheduler (Scheduler.setDraft), so each decode row carries 1 + k tokens;
 *   (b) after forward(): `verify` turns the k + 1 logit rows of one sequence into the tokens the
 *       scheduler's postprocess should see: the drafts for accepted positions, then the corrected
 *       (or bonus) token. postprocess accepts while sampled[li+j] === draft[j] and rolls back the KV
 *       of the rest.
 *
 * Acceptance keeps the target distribution exactly:
 *   greedy (temperature 0)  accept while the target argmax equals the draft;
 *   sampled                 accept d with probability min(1, p(d)/q(d)), p = Sampler.distribution
 *                           at that position (penalties, temperature, min_p, top_k, top_p), q = the
 *                           draft model's recorded distribution (one-hot for n-gram: accept with
 *                           p(d)); at the first rejection sample from normalise(max(0, p − q));
 *                           when all are accepted, the bonus token is sampled from p as usual.
 * Draws: Philox uniform(seed, position, stream): stream 0 is the sampler's own (bonus token),
 * ACCEPT_STREAM the acceptance test, RESIDUAL_STREAM the residual draw, so a request's tokens
 * depend only on its seed, its logits and its k schedule. Greedy output never depends on k; a
 * sampled request's tokens do (the distribution is exact either way): a position verified against
 * a draft uses streams 2/3, a plainly sampled one stream 0, and the batch-token threshold can turn
 * drafts off, so a sampled speculative request can differ between batch compositions.
 * Requests asking for logprobs do not speculate (per-draft logprobs are not tracked).
 *
 * Adaptivity: k per sequence = clamp(round(1.5 · EMA of accepted drafts per step), 1, maxK),
 * starting at maxK; no speculation in a step whose estimated batch (prefill chunks + decodes)
 * exceeds `maxBatchTokens` (default 64): on the CPU reference a forward's cost grows with its
 * tokens, so speculation only pays at small batches. On a GPU the artifact's cost model would set
 * that threshold (memory- vs compute-bound step; issue 12).
 */
import type { Sequence } from '../scheduler.js';
import { Sampler, uniform, type ResolvedSampling } from '../sampling.js';
import type { Proposer } from './proposer.js';

export const ACCEPT_STREAM = 2;
export const RESIDUAL_STREAM = 3;

export interface SpecOptions {
  proposer: Proposer;
  /** Most drafts per sequence per step (default 4). */
  maxK?: number;
  /** No speculation when a step's estimated tokens exceed this (default 64). */
  maxBatchTokens?: number;
  /** Adapt k to the acceptance rate (default true). */
  adaptive?: boolean;
}

export interface SpecMetrics {
  /** Verification rows (target forwards' speculative rows). */
  numSpecRows: number;
  numDraftTokens: number;
  numAcceptedTokens: number;
  /** Emitted tokens by speculative rows (accepted + 1 each, before stop/max truncation). */
  numEmittedTokens: number;
  /** Per draft position j: drafts proposed there, and accepted. */
  proposedPerPos: number[];
  acceptedPerPos: number[];
}

export interface SpecSeq { seq: Sequence; params: ResolvedSampling }

export class SpecDecoder {
  readonly proposer: Proposer;
  readonly maxK: number;
  readonly maxBatchTokens: number;
  readonly adaptive: boolean;
  readonly metrics: SpecMetrics;
  private readonly ema = new Map<number | string, number>();
  private readonly sampler: Sampler;
  private readonly resid: Float64Array;
  private hist = new Int32Array(0);

  constructor(opts: SpecOptions, readonly vocab: number) {
    this.proposer = opts.proposer;
    this.maxK = opts.maxK ?? 4;
    this.maxBatchTokens = opts.maxBatchTokens ?? 64;
    this.adaptive = opts.adaptive ?? true;
    if (!Number.isInteger(this.maxK) || this.maxK < 1) throw new Error(`SpecDecoder: maxK must be a positive integer, got ${this.maxK}`);
    const pv = (this.proposer as { vocab?: number }).vocab;
    if (pv !== undefined && pv !== vocab) throw new Error(`SpecDecoder: the draft model's vocabulary has ${pv} tokens, the target's ${vocab}`);
    this.sampler = new Sampler(vocab);
    this.resid = new Float64Array(vocab);
    this.metrics = { numSpecRows: 0, numDraftTokens: 0, numAcceptedTokens: 0, numEmittedTokens: 0, proposedPerPos: new Array(this.maxK).fill(0), acceptedPerPos: new Array(this.maxK).fill(0) };
  }

  /** The k this sequence would get now. */
  kFor(id: number | string): number {
    if (!this.adaptive) return this.maxK;
    const e = this.ema.get(id);
    return e === undefined ? this.maxK : Math.max(1, Math.min(this.maxK, Math.round(1.5 * e)));
  }

  /**
   * Set drafts on the decoding sequences among `seqs` (the engine's live requests that opted in).
   * `pendingTokens`: tokens of prefills and other work the step will also carry.
   */
  prepare(seqs: readonly SpecSeq[], pendingTokens: number, setDraft: (id: number | string, d: Int32Array) => void): void {
    const dec = seqs.filter(({ seq }) => seq.status === 'running' && seq.length - seq.numComputed === 1 && seq.numSpeculativeTokens > 0);
    let budget = this.maxBatchTokens - pendingTokens - dec.length;
    if (budget <= 0 || dec.length === 0) return;
    const ks: number[] = [];
    for (const { seq } of dec) {
      let k = Math.min(this.kFor(seq.id), seq.numSpeculativeTokens, seq.maxTokens - seq.numOutput - 1, budget);
      k = Math.max(0, k);
      budget -= k;
      ks.push(k);
    }
    const use = dec.map((_, i) => i).filter((i) => ks[i] > 0);
    if (use.length === 0) return;
    const drafts = this.proposer.propose(use.map((i) => ({ id: dec[i].seq.id, tokens: dec[i].seq.tokens, length: dec[i].seq.length, promptLen: dec[i].seq.promptLen, params: dec[i].params })), use.map((i) => ks[i]));
    use.forEach((i, j) => { if (drafts[j].length > 0) setDraft(dec[i].seq.id, drafts[j]); });
  }

  /**
   * Tokens for one speculative row: `logits` holds n = drafts + 1 rows of the vocabulary for
   * positions seq.length .. seq.length + drafts; `draft` the drafts the row carried. Returns n
   * tokens for postprocess (drafts where accepted, then the corrected or bonus token).
   */
  verify(seq: Sequence, params: ResolvedSampling, draft: Int32Array, logits: Float32Array): Int32Array {
    const V = this.vocab, n = draft.length + 1, out = new Int32Array(n);
    if (this.hist.length < seq.length + n) this.hist = new Int32Array(seq.length + n + 64);
    const h = this.hist;
    h.set(seq.tokens.subarray(0, seq.length));
    const q = this.proposer.draftProbs?.(seq.id);
    const m = this.metrics;
    let a = 0;
    for (; a < draft.length; a++) {
      const pos = seq.length + a, d = draft[a];
      const row = logits.subarray(a * V, (a + 1) * V);
      const p = this.sampler.distribution(row, params, { tokens: h, promptLen: seq.promptLen, length: pos });
      let ok: boolean, fix = -1;
      if (params.temperature === 0) {
        let best = 0;
        for (let v = 1; v < V; v++) if (p[v] > p[best]) best = v;
        ok = best === d;
        fix = best;
      } else {
        const qa = q?.[a];
        const qd = qa ? qa[d] : 1;
        ok = uniform(params.seed, pos, ACCEPT_STREAM) < Math.min(1, qd > 0 ? p[d] / qd : 1);
        if (!ok) fix = this.residual(p, qa, d, params.seed, pos);
      }
      m.proposedPerPos[a]++;
      if (!ok) { out[a] = fix; break; }
      m.acceptedPerPos[a]++;
      out[a] = d;
      h[pos] = d;
    }
    if (a === draft.length) {
      const pos = seq.length + a;
      out[a] = this.sampler.sample(logits.subarray(a * V, (a + 1) * V), params, { tokens: h, promptLen: seq.promptLen, length: pos }, pos).token;
    }
    for (let j = a + 1; j < n; j++) out[j] = -1;
    this.record(seq.id, draft.length, a, false);
    return out;
  }

  /**
   * The bookkeeping of one verified sequence (metrics, acceptance EMA, proposer feedback): done by
   * `verify`, and by the engine when the backend verified on the device (perPosition: also count
   * the per-position metrics, which `verify` counts as it goes).
   */
  record(id: number | string, proposed: number, accepted: number, perPosition = true): void {
    const m = this.metrics;
    if (perPosition) {
      for (let j = 0; j < Math.min(proposed, accepted + 1); j++) m.proposedPerPos[j]++;
      for (let j = 0; j < accepted; j++) m.acceptedPerPos[j]++;
    }
    m.numSpecRows++;
    m.numDraftTokens += proposed;
    m.numAcceptedTokens += accepted;
    m.numEmittedTokens += accepted + 1;
    const e = this.ema.get(id);
    this.ema.set(id, e === undefined ? accepted : 0.7 * e + 0.3 * accepted);
    this.proposer.onAccepted?.(id, accepted, proposed);
  }

  /** A draw from normalise(max(0, p − q)) (q one-hot at d when undefined); never returns d. */
  private residual(p: Float64Array, q: Float64Array | undefined, d: number, seed: number, pos: number): number {
    const V = this.vocab, r = this.resid;
    let sum = 0;
    for (let v = 0; v < V; v++) { const x = q ? Math.max(0, p[v] - q[v]) : v === d ? 0 : p[v]; r[v] = x; sum += x; }
    r[d] = 0;
    if (!(sum > 0)) { sum = 0; for (let v = 0; v < V; v++) { r[v] = v === d ? 0 : p[v]; sum += r[v]; } }
    if (!(sum > 0)) return d === 0 ? 1 : 0; // p is one-hot at d yet d was rejected: cannot happen
    const u = uniform(seed, pos, RESIDUAL_STREAM) * sum;
    let acc = 0, tok = -1;
    for (let v = 0; v < V; v++) { if (r[v] === 0) continue; acc += r[v]; tok = v; if (u < acc) break; }
    return tok;
  }

  release(id: number | string): void {
    this.ema.delete(id);
    this.proposer.release?.(id);
  }

}
