/**
 * A fast fake model for runtime tests. Its logits depend only on a sequence's token history, and
 * it reads that history the way attention does: through the KV cache. `forward` first writes
 * each new token into its slot (slotMapping), then computes each logit row from the tokens found
 * at positions 0..p through the sequence's block table. So a wrong block table, slot mapping,
 * prefix-cache hit or missing copy-on-write copy changes the tokens a test sees.
 */
import { type RaggedBatch, validateBatch } from '../../runtime/batch.js';
import type { CopyOp } from '../../runtime/kv/block-manager.js';

const mix = (h: number, x: number): number => {
  h = Math.imul(h ^ x, 0x9e3779b1);
  h ^= h >>> 15;
  return Math.imul(h, 0x85ebca77) >>> 0;
};

export class FakeBackend {
  /** Token whose K/V each cache slot holds; -1 when never written. */
  readonly slots: Int32Array;
  forwards = 0;

  constructor(readonly numBlocks: number, readonly blockSize: number, readonly vocab = 64) {
    this.slots = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  /** Run copy-on-write copies (whole blocks). */
  copy(ops: readonly CopyOp[]): void {
    const bs = this.blockSize;
    for (const { src, dst } of ops) this.slots.copyWithin(dst * bs, src * bs, (src + 1) * bs);
  }

  /** Logits, one row of `vocab` per logit index. */
  forward(b: RaggedBatch): Float32Array {
    validateBatch(b, this.blockSize, this.numBlocks, this.vocab);
    this.forwards++;
    const bs = this.blockSize, V = this.vocab, M = b.maxBlocksPerSeq;
    for (let t = 0; t < b.tokens.length; t++) this.slots[b.slotMapping[t]] = b.tokens[t];
    const out = new Float32Array(b.logitIndices.length * V);
    for (let i = 0; i < b.logitIndices.length; i++) {
      const t = b.logitIndices[i];
      let s = 0;
      while (b.seqStarts[s + 1] <= t) s++;
      const p = b.positions[t];
      let h = 0x2545f491;
      for (let q = 0; q <= p; q++) {
        const tok = this.slots[b.blockTables[s * M + Math.floor(q / bs)] * bs + (q % bs)];
        if (tok < 0) throw new Error(`FakeBackend: sequence ${s} reads position ${q}, whose slot was never written`);
        h = mix(h, tok);
      }
      h = mix(h, p);
      for (let v = 0; v < V; v++) out[i * V + v] = (mix(h, v) / 4294967296) * 8 - 4;
    }
    return out;
  }
}
