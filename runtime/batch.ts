/**
 * RaggedBatch: the one input of `forward` (ARCHITECTURE.md, "One forward for every kind of step").
 *
 * A flat list of T new tokens from B sequences, sequence after sequence. Prefill chunks, single
 * decode tokens and k+1-token speculative verifications all look the same:
 *
 *   tokens[T], positions[T]      the new tokens and their positions in their sequences
 *   seqStarts[B+1]               sequence b owns tokens seqStarts[b] .. seqStarts[b+1]-1
 *   contextLens[B]               tokens of sequence b in the KV cache after this step
 *                                (cached context + its new tokens)
 *   blockTables[B][maxBlocks]    KV cache blocks of sequence b (blockSize tokens each), row-major
 *   slotMapping[T]               cache slot (block * blockSize + offset) each new token's K/V goes to
 *   logitIndices[L]              token indices (into 0..T-1) whose logits are returned
 */

export interface RaggedBatch {
  tokens: Int32Array;
  positions: Int32Array;
  seqStarts: Int32Array;
  contextLens: Int32Array;
  /** B × maxBlocksPerSeq, unused entries -1. */
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
  slotMapping: Int32Array;
  logitIndices: Int32Array;
}

export const numTokens = (b: RaggedBatch): number => b.tokens.length;
export const numSeqs = (b: RaggedBatch): number => b.seqStarts.length - 1;

/**
 * Check a batch's internal consistency against a cache of `numBlocks` blocks of `blockSize`;
 * throws naming the first field that is wrong. Backends call it before running.
 */
export function validateBatch(b: RaggedBatch, blockSize: number, numBlocks: number, vocab?: number): void {
  const T = b.tokens.length, B = b.seqStarts.length - 1;
  const fail = (m: string): never => { throw new Error(`RaggedBatch: ${m}`); };
  if (B < 0) fail('seqStarts must have B+1 entries');
  if (b.positions.length !== T) fail(`positions has ${b.positions.length} entries, tokens ${T}`);
  if (b.slotMapping.length !== T) fail(`slotMapping has ${b.slotMapping.length} entries, tokens ${T}`);
  if (b.contextLens.length !== B) fail(`contextLens has ${b.contextLens.length} entries, sequences ${B}`);
  if (b.blockTables.length !== B * b.maxBlocksPerSeq) fail(`blockTables has ${b.blockTables.length} entries, expected ${B}×${b.maxBlocksPerSeq}`);
  if (b.seqStarts[0] !== 0 || b.seqStarts[B] !== T) fail(`seqStarts must run from 0 to ${T}`);
  for (let s = 0; s < B; s++) {
    const n = b.seqStarts[s + 1] - b.seqStarts[s];
    if (n < 0) fail(`seqStarts decreases at sequence ${s}`);
    const ctx = b.contextLens[s];
    if (ctx < n) fail(`sequence ${s}: contextLens ${ctx} < its ${n} new tokens`);
    if (Math.ceil(ctx / blockSize) > b.maxBlocksPerSeq) fail(`sequence ${s}: context ${ctx} needs more than ${b.maxBlocksPerSeq} blocks`);
    for (let j = 0; j < Math.ceil(ctx / blockSize); j++) {
      const blk = b.blockTables[s * b.maxBlocksPerSeq + j];
      if (blk < 0 || blk >= numBlocks) fail(`sequence ${s}: block table entry ${j} is ${blk}, cache has ${numBlocks} blocks`);
    }
    for (let t = b.seqStarts[s]; t < b.seqStarts[s + 1]; t++) {
      const pos = ctx - n + (t - b.seqStarts[s]);
      if (b.positions[t] !== pos) fail(`token ${t}: position ${b.positions[t]}, expected ${pos} (context ${ctx}, ${n} new)`);
      const want = b.blockTables[s * b.maxBlocksPerSeq + Math.floor(pos / blockSize)] * blockSize + (pos % blockSize);
      if (b.slotMapping[t] !== want) fail(`token ${t}: slot ${b.slotMapping[t]}, block table says ${want}`);
      if (vocab !== undefined && (b.tokens[t] < 0 || b.tokens[t] >= vocab)) fail(`token ${t}: id ${b.tokens[t]} is outside the vocabulary 0..${vocab - 1}`);
    }
  }
  for (const i of b.logitIndices) if (i < 0 || i >= T) fail(`logit index ${i} outside 0..${T - 1}`);
}
