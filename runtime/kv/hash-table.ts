/**
 * BlockHashTable: the prefix cache's map from a block's 53-bit content hash to its block id, in
 * typed arrays. A JS Map boxes every number key beyond 31 bits, which made registering blocks the
 * scheduler's largest per-step cost; this table allocates once (capacity: a power of two at least
 * twice the number of blocks, and a block is in it at most once) and never again.
 * Open addressing with linear probing from the hash's low bits, backward-shift deletion (no
 * tombstones, so probe lengths stay short however many evictions happen).
 */
export class BlockHashTable {
  private readonly keys: Float64Array;
  private readonly vals: Int32Array; // -1: empty slot
  private readonly mask: number;
  size = 0;

  constructor(maxEntries: number) {
    let cap = 16;
    while (cap < 2 * maxEntries) cap *= 2;
    this.keys = new Float64Array(cap);
    this.vals = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
  }

  /** The block registered under hash h, or -1. */
  get(h: number): number {
    for (let i = (h >>> 0) & this.mask; this.vals[i] !== -1; i = (i + 1) & this.mask) if (this.keys[i] === h) return this.vals[i];
    return -1;
  }

  /** Register block v under h, which must be absent. */
  add(h: number, v: number): void {
    if (2 * (this.size + 1) > this.keys.length) throw new Error(`BlockHashTable: more than ${this.keys.length / 2} entries`);
    let i = (h >>> 0) & this.mask;
    while (this.vals[i] !== -1) i = (i + 1) & this.mask;
    this.keys[i] = h;
    this.vals[i] = v;
    this.size++;
  }

  /** Remove h; false when absent. */
  delete(h: number): boolean {
    const m = this.mask;
    let i = (h >>> 0) & m;
    while (this.vals[i] !== -1 && this.keys[i] !== h) i = (i + 1) & m;
    if (this.vals[i] === -1) return false;
    // Backward shift: move later entries of the probe run into the hole when their home allows.
    for (let j = (i + 1) & m; this.vals[j] !== -1; j = (j + 1) & m) {
      const home = (this.keys[j] >>> 0) & m;
      if (((j - home) & m) >= ((j - i) & m)) {
        this.keys[i] = this.keys[j];
        this.vals[i] = this.vals[j];
        i = j;
      }
    }
    this.vals[i] = -1;
    this.size--;
    return true;
  }

  /** Every (hash, block) pair, for invariant checks. */
  *entries(): IterableIterator<[number, number]> {
    for (let i = 0; i < this.vals.length; i++) if (this.vals[i] !== -1) yield [this.keys[i], this.vals[i]];
  }
}
