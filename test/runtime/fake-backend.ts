/**
 * A fast fake model for runtime tests. Its logits depend only on a sequence's token history, and
 * it reads that history the way attention does: through the KV cache. Like real K/V, a slot's
 * content depends on the whole prefix: `forward` writes, for each new token at position p, the
 * value mix(value at p-1, token, p) into its slot (slotMapping), reading p-1 through the block
 * table; each logit row then folds the values at positions 0..p read through the block table.
 * So a wrong block table, slot mapping, prefix-cache hit (even one with the right tokens behind a
 * different prefix) or missing copy-on-write copy changes the tokens a test sees.
 */
import { type RaggedBatch, validateBatch } from '../../runtime/batch.js';
import type { CopyOp } from '../../runtime/kv/block-manager.js';

const mix = (h: number, x: number): number => {
  h = Math.imul(h ^ x, 0x9e3779b1);
  h ^= h >>> 15;
  return Math.imul(h, 0x85ebca77) >>> 0;
};

export class FakeBackend {
  /** The "K/V" each cache slot holds, and whether it was ever written. */
  readonly slots: Uint32Array;
  readonly written: Uint8Array;
  forwards = 0;

  constructor(readonly numBlocks: number, readonly blockSize: number, readonly vocab = 64) {
    this.slots = new Uint32Array(numBlocks * blockSize);
    this.written = new Uint8Array(numBlocks * blockSize);
  }

  /** Run copy-on-write copies (whole blocks). */
  copy(ops: readonly CopyOp[]): void {
    const bs = this.blockSize;
    for (const { src, dst } of ops) {
      this.slots.copyWithin(dst * bs, src * bs, (src + 1) * bs);
      this.written.copyWithin(dst * bs, src * bs, (src + 1) * bs);
    }
  }

  /** Logits, one row of `vocab` per logit index. */
  forward(b: RaggedBatch): Float32Array {
    validateBatch(b, this.blockSize, this.numBlocks, this.vocab);
    this.forwards++;
    const bs = this.blockSize, V = this.vocab, M = b.maxBlocksPerSeq;
    const read = (s: number, q: number): number => {
      const slot = b.blockTables[s * M + Math.floor(q / bs)] * bs + (q % bs);
      if (!this.written[slot]) throw new Error(`FakeBackend: sequence ${s} reads position ${q}, whose slot ${slot} was never written`);
      return this.slots[slot];
    };
    for (let s = 0; s + 1 < b.seqStarts.length; s++) {
      for (let t = b.seqStarts[s]; t < b.seqStarts[s + 1]; t++) {
        const p = b.positions[t], prev = p === 0 ? 0x2545f491 : read(s, p - 1);
        this.slots[b.slotMapping[t]] = mix(mix(prev, b.tokens[t]), p);
        this.written[b.slotMapping[t]] = 1;
      }
    }
    const out = new Float32Array(b.logitIndices.length * V);
    for (let i = 0; i < b.logitIndices.length; i++) {
      const t = b.logitIndices[i];
      let s = 0;
      while (b.seqStarts[s + 1] <= t) s++;
      const p = b.positions[t];
      let h = 0x2545f491;
      for (let q = 0; q <= p; q++) h = mix(h, read(s, q));
      h = mix(h, p);
      for (let v = 0; v < V; v++) out[i * V + v] = (mix(h, v) / 4294967296) * 8 - 4;
    }
    return out;
  }
}
