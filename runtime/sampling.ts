/**
 * Sampling: one row of logits → one token, with per-request parameters (the reference the GPU
 * sampling kernel will be checked against). Fields are named as in the OpenAI / vLLM APIs, so a
 * validation error names the field a client sent ("top_p must be in (0, 1], got 1.5").
 *
 * Order, as vLLM's V1 sampler:
 *   1. penalties on the logits: repetition (HF/vLLM: over prompt + generated tokens, a positive
 *      logit is divided by it, a negative one multiplied), then presence and frequency (OpenAI:
 *      over generated tokens, logit -= frequency·count + presence·[count > 0]);
 *   2. temperature 0 → greedy argmax (ties: lowest id); otherwise logits / temperature → softmax;
 *   3. min_p: drop tokens whose probability is below min_p × the top probability;
 *   4. top_k: keep the k most probable; 5. top_p: keep the smallest most-probable set whose mass
 *      reaches top_p (always at least one token); renormalise: the "final distribution".
 * The draw: u ∈ [0, 1) from Philox-4x32-10 keyed by the request's seed with counter = the position
 * of the token being sampled, then the inverse CDF in token-id order. So a request's tokens depend
 * only on its seed and its own logits: not on batch composition, batch row, or preemption.
 * Logprobs are of the final distribution (for greedy: softmax of the penalised logits).
 */

export interface SamplingParams {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** -1 or 0 = off. */
  top_k?: number;
  /** In (0, 1]; default 1 (off). */
  top_p?: number;
  /** In [0, 1]; default 0 (off). */
  min_p?: number;
  /** > 0; default 1 (off). */
  repetition_penalty?: number;
  /** In [-2, 2]; default 0. */
  presence_penalty?: number;
  /** In [-2, 2]; default 0. */
  frequency_penalty?: number;
  /** Any safe integer; default: drawn at random when the params are resolved. */
  seed?: number;
  /** Return the top-n log-probabilities (0..20) besides the chosen token's. Default: none. */
  logprobs?: number;
}

/** Validated parameters with every default filled in. */
export interface ResolvedSampling {
  temperature: number; topK: number; topP: number; minP: number;
  repetitionPenalty: number; presencePenalty: number; frequencyPenalty: number;
  seed: number; logprobs: number; // -1: none
}

/** A request's tokens: prompt = tokens[0..promptLen), generated = tokens[promptLen..length). */
export interface TokenHistory { tokens: ArrayLike<number>; promptLen: number; length: number }

export interface SampleResult {
  token: number;
  /** Log-probability of `token` under the final distribution. */
  logprob: number;
  /** Top-n tokens of the final distribution, most probable first (when logprobs was asked). */
  top?: { token: number; logprob: number }[];
}

export const MAX_LOGPROBS = 20;
const KNOWN = new Set(['temperature', 'top_k', 'top_p', 'min_p', 'repetition_penalty', 'presence_penalty', 'frequency_penalty', 'seed', 'logprobs']);

/** Check `p` and fill in defaults; throws naming the first bad field. */
export function resolveSamplingParams(p: SamplingParams = {}): ResolvedSampling {
  for (const k of Object.keys(p)) if (!KNOWN.has(k)) throw new Error(`unknown sampling parameter '${k}' (known: ${[...KNOWN].join(', ')})`);
  const num = (name: keyof SamplingParams, def: number, ok: (x: number) => boolean, range: string): number => {
    const x = p[name];
    if (x === undefined) return def;
    if (typeof x !== 'number' || Number.isNaN(x)) throw new Error(`${name} must be a number, got ${typeof x === 'number' ? x : typeof x}`);
    if (!ok(x)) throw new Error(`${name} must be ${range}, got ${x}`);
    return x;
  };
  const topK = num('top_k', 0, (x) => Number.isInteger(x) && x >= -1, '-1 or 0 (off) or a positive integer');
  return {
    temperature: num('temperature', 1, (x) => x >= 0 && Number.isFinite(x), '>= 0 and finite'),
    topK: topK <= 0 ? 0 : topK,
    topP: num('top_p', 1, (x) => x > 0 && x <= 1, 'in (0, 1]'),
    minP: num('min_p', 0, (x) => x >= 0 && x <= 1, 'in [0, 1]'),
    repetitionPenalty: num('repetition_penalty', 1, (x) => x > 0 && Number.isFinite(x), '> 0 and finite'),
    presencePenalty: num('presence_penalty', 0, (x) => x >= -2 && x <= 2, 'in [-2, 2]'),
    frequencyPenalty: num('frequency_penalty', 0, (x) => x >= -2 && x <= 2, 'in [-2, 2]'),
    seed: num('seed', Math.floor(Math.random() * 2 ** 52), Number.isSafeInteger, 'a safe integer'),
    logprobs: num('logprobs', -1, (x) => Number.isInteger(x) && x >= 0 && x <= MAX_LOGPROBS, `an integer in [0, ${MAX_LOGPROBS}]`),
  };
}

// ---- Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) ----

function mulhi32(a: number, b: number): number {
  const ah = a >>> 16, al = a & 0xffff, bh = b >>> 16, bl = b & 0xffff;
  const ll = al * bl, lh = al * bh, hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox-4x32 with 10 rounds: counter (4 words) and key (2 words) → 4 random words. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number): [number, number, number, number] {
  c0 >>>= 0; c1 >>>= 0; c2 >>>= 0; c3 >>>= 0; k0 >>>= 0; k1 >>>= 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(0xd2511f53, c0), lo0 = Math.imul(0xd2511f53, c0) >>> 0;
    const hi1 = mulhi32(0xcd9e8d57, c2), lo1 = Math.imul(0xcd9e8d57, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0; c1 = lo1; c2 = (hi0 ^ c3 ^ k1) >>> 0; c3 = lo0;
    k0 = (k0 + 0x9e3779b9) >>> 0; k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** Uniform double in [0, 1) (53 bits) for (seed, counter, stream): a pure function, no state. */
export function uniform(seed: number, counter: number, stream = 0): number {
  const [w0, w1] = philox4x32(counter >>> 0, Math.floor(counter / 4294967296), stream, 0, seed >>> 0, Math.floor(seed / 4294967296));
  return ((w0 >>> 5) * 67108864 + (w1 >>> 6)) / 9007199254740992;
}

/** Holds scratch arrays for one vocabulary size; not reentrant. */
export class Sampler {
  private readonly x: Float64Array;
  private readonly counts: Int32Array;
  private readonly order: Int32Array;
  private readonly kept: Float64Array;

  constructor(readonly vocab: number) {
    this.x = new Float64Array(vocab);
    this.counts = new Int32Array(vocab);
    this.order = new Int32Array(vocab);
    this.kept = new Float64Array(vocab);
  }

  /**
   * The final distribution (probabilities over the vocabulary, masked tokens 0) for `logits`.
   * For temperature 0 it is softmax of the penalised logits. Returns a scratch array, valid until
   * the next call.
   */
  distribution(logits: ArrayLike<number>, p: ResolvedSampling, h: TokenHistory): Float64Array {
    const V = this.vocab, x = this.x;
    if (logits.length !== V) throw new Error(`Sampler: logits row has ${logits.length} entries, vocabulary ${V}`);
    for (let i = 0; i < V; i++) x[i] = logits[i];
    this.applyPenalties(p, h);
    const greedy = p.temperature === 0, invT = greedy ? 1 : 1 / p.temperature;
    let m = -Infinity;
    for (let i = 0; i < V; i++) if (x[i] > m) m = x[i];
    if (m === -Infinity || Number.isNaN(m)) throw new Error(`Sampler: logits row has no finite maximum (${m})`);
    for (let i = 0; i < V; i++) x[i] = Math.exp((x[i] - m) * invT); // top token has 1
    if (!greedy) {
      if (p.minP > 0) for (let i = 0; i < V; i++) if (x[i] < p.minP) x[i] = 0;
      if ((p.topK > 0 && p.topK < V) || p.topP < 1) this.topKTopP(p);
    }
    let sum = 0;
    for (let i = 0; i < V; i++) sum += x[i];
    if (Number.isNaN(sum)) throw new Error('Sampler: logits row contains NaN');
    for (let i = 0; i < V; i++) x[i] /= sum;
    return x;
  }

  /** Sample the token at position `position` of the request (the RNG counter). */
  sample(logits: ArrayLike<number>, p: ResolvedSampling, h: TokenHistory, position: number): SampleResult {
    const f = this.distribution(logits, p, h), V = this.vocab;
    let token = 0;
    if (p.temperature === 0) {
      for (let i = 1; i < V; i++) if (f[i] > f[token]) token = i;
    } else {
      const u = uniform(p.seed, position);
      let acc = 0;
      token = -1;
      for (let i = 0; i < V; i++) {
        if (f[i] === 0) continue;
        acc += f[i];
        token = i;
        if (u < acc) break;
      }
    }
    const out: SampleResult = { token, logprob: Math.log(f[token]) };
    if (p.logprobs >= 0) out.top = this.topN(f, p.logprobs);
    return out;
  }

  private applyPenalties(p: ResolvedSampling, h: TokenHistory): void {
    const x = this.x, c = this.counts, t = h.tokens, V = this.vocab;
    const rep = p.repetitionPenalty, pres = p.presencePenalty, freq = p.frequencyPenalty;
    if (rep !== 1) {
      for (let i = 0; i < h.length; i++) if (t[i] >= 0 && t[i] < V && c[t[i]] === 0) {
        c[t[i]] = 1;
        x[t[i]] = x[t[i]] > 0 ? x[t[i]] / rep : x[t[i]] * rep;
      }
      for (let i = 0; i < h.length; i++) if (t[i] >= 0 && t[i] < V) c[t[i]] = 0;
    }
    if (pres !== 0 || freq !== 0) {
      for (let i = h.promptLen; i < h.length; i++) if (t[i] >= 0 && t[i] < V) c[t[i]]++;
      for (let i = h.promptLen; i < h.length; i++) {
        const k = t[i];
        if (k >= 0 && k < V && c[k] > 0) { x[k] -= freq * c[k] + pres; c[k] = 0; }
      }
    }
  }

  /**
   * Mask x (unnormalised probabilities, top = 1) to the top_k most probable, then to the top_p
   * mass. Only candidates ≥ a threshold are sorted: with top_k, the k-th largest probability (a
   * size-k heap); for top_p alone, a threshold that falls by 16× until the candidates' mass
   * reaches top_p. So a peaked 32k-token distribution sorts tens of tokens, not all of them.
   */
  private topKTopP(p: ResolvedSampling): void {
    const x = this.x, o = this.order, V = this.vocab;
    let total = 0;
    for (let i = 0; i < V; i++) total += x[i];
    let n = 0, mass = 0;
    for (let t = p.topK > 0 ? this.kthLargest(p.topK) : 0.25; ; t = t < 1e-30 ? 0 : t / 16) {
      n = 0; mass = 0;
      for (let i = 0; i < V; i++) if (x[i] >= t && x[i] > 0) { o[n++] = i; mass += x[i]; }
      if ((p.topK > 0 ? n >= p.topK : mass >= p.topP * total) || t === 0) break;
    }
    const kept = o.subarray(0, n).sort((a, b) => x[b] - x[a] || a - b);
    let keep = p.topK > 0 ? Math.min(p.topK, n) : n;
    if (p.topP < 1) {
      let m = 0;
      for (let j = 0; j < keep; j++) m += x[kept[j]];
      if (p.topK === 0) m = total;
      let before = 0, j = 0;
      while (j < keep && (j === 0 || before < p.topP * m)) before += x[kept[j++]];
      keep = j;
    }
    const vals = this.kept;
    for (let j = 0; j < keep; j++) vals[j] = x[kept[j]];
    x.fill(0);
    for (let j = 0; j < keep; j++) x[kept[j]] = vals[j];
  }

  /** The k-th largest positive entry of x (the smallest positive one when fewer), by a min-heap. */
  private kthLargest(k: number): number {
    const x = this.x, h = this.kept;
    let size = 0, smallest = Infinity;
    for (let i = 0; i < this.vocab; i++) {
      const v = x[i];
      if (!(v > 0)) continue;
      if (v < smallest) smallest = v;
      if (size < k) {
        let j = size++;
        while (j > 0 && h[(j - 1) >> 1] > v) { h[j] = h[(j - 1) >> 1]; j = (j - 1) >> 1; }
        h[j] = v;
      } else if (v > h[0]) {
        let j = 0;
        for (;;) {
          const l = 2 * j + 1, r = l + 1;
          let m = j, mv = v;
          if (l < k && h[l] < mv) { m = l; mv = h[l]; }
          if (r < k && h[r] < mv) { m = r; mv = h[r]; }
          if (m === j) break;
          h[j] = mv;
          j = m;
        }
        h[j] = v;
      }
    }
    return size < k ? smallest : h[0];
  }

  private topN(f: Float64Array, n: number): { token: number; logprob: number }[] {
    const best: number[] = [];
    if (n === 0) return [];
    for (let i = 0; i < this.vocab; i++) {
      if (best.length === n && !(f[i] > f[best[n - 1]])) continue;
      let j = best.length < n ? best.length : n - 1;
      if (best.length < n) best.push(i);
      while (j > 0 && f[best[j - 1]] < f[i]) { best[j] = best[j - 1]; j--; }
      best[j] = i;
    }
    return best.map((token) => ({ token, logprob: Math.log(f[token]) }));
  }
}
