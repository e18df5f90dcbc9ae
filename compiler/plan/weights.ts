/**
 * The weights table of a plan: named fp32 tensors packed into weights.bin at 64-byte aligned
 * offsets. Identical tensors are stored once (tied embeddings: the lm_head is the transposed
 * embedding table, which lowering transposes back to the same bytes).
 */
import { writeFileSync } from 'node:fs';
import { Tensor } from '../../runtime/tensor.js';
import { storeRounder, type StorageDType } from '../../runtime/kernels/common.js';
import type { WeightEntry } from '../../runtime/plan.js';

const ALIGN = 64;

function fingerprint(t: Tensor): string {
  let h = 2166136261 >>> 0;
  const u = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength >> 2);
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 16777619) >>> 0;
  return `${t.shape.join('x')}:${h.toString(16)}`;
}

export class WeightTable {
  private readonly byName = new Map<string, { entry: WeightEntry; t: Tensor }>();
  private readonly byPrint = new Map<string, string>();
  private bytes = 0;

  /** Add a tensor (converted to fp32 storage); returns the name to refer to it by. */
  add(name: string, source: string, t: Tensor): string {
    const fp = fingerprint(t);
    const same = this.byPrint.get(fp);
    if (same && equal(this.byName.get(same)!.t, t)) return same;
    let n = name.replace(/^\/+/, '');
    for (let i = 1; this.byName.has(n); i++) n = `${name}_${i}`;
    const offset = Math.ceil(this.bytes / ALIGN) * ALIGN;
    const bytes = t.size * 4;
    this.bytes = offset + bytes;
    this.byName.set(n, { entry: { name: n, source, dtype: 'float32', shape: [...t.shape], offset, bytes }, t });
    this.byPrint.set(fp, n);
    return n;
  }

  /** Add under a fixed name shared by several steps (e.g. the rope tables); must agree if present. */
  addShared(name: string, source: string, t: Tensor): string {
    const have = this.byName.get(name);
    if (have) {
      if (!equal(have.t, t)) throw new Error(`weight '${name}' differs between its uses (from ${have.entry.source} and ${source})`);
      return name;
    }
    const offset = Math.ceil(this.bytes / ALIGN) * ALIGN;
    this.bytes = offset + t.size * 4;
    this.byName.set(name, { entry: { name, source, dtype: 'float32', shape: [...t.shape], offset, bytes: t.size * 4 }, t });
    return name;
  }

  /**
   * Replace weight `name` by a copy rounded to `dtype` (values stay fp32 in weights.bin). The CUDA
   * artifact stores matrices in the activation dtype; rounding them in the plan gives every backend
   * the same numbers.
   */
  roundTo(name: string, dtype: StorageDType): void {
    const w = this.byName.get(name);
    if (!w) throw new Error(`unknown weight '${name}'`);
    const r = storeRounder(dtype);
    if (!r) return;
    w.t = Tensor.from('float32', w.t.shape, Array.from(w.t.data as ArrayLike<number>, (x) => r(x)));
  }

  entries(): WeightEntry[] { return [...this.byName.values()].map((w) => w.entry); }
  get totalBytes(): number { return this.bytes; }

  tensor(name: string): Tensor {
    const w = this.byName.get(name);
    if (!w) throw new Error(`unknown weight '${name}'`);
    return w.t;
  }

  /** The packed bytes of weights.bin. */
  pack(): Uint8Array {
    const out = new Uint8Array(Math.ceil(this.bytes / ALIGN) * ALIGN);
    const dv = new DataView(out.buffer);
    for (const { entry, t } of this.byName.values()) {
      for (let i = 0; i < t.size; i++) dv.setFloat32(entry.offset + 4 * i, t.data[i], true);
    }
    return out;
  }

  write(path: string): void { writeFileSync(path, this.pack()); }
}

function equal(a: Tensor, b: Tensor): boolean {
  if (a.size !== b.size || a.shape.join() !== b.shape.join()) return false;
  for (let i = 0; i < a.size; i++) if (Math.fround(a.data[i]) !== Math.fround(b.data[i])) return false;
  return true;
}
