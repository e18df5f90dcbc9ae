/**
 * Activation memory planning. Every buffer holds `features` values per token; the arena is laid
 * out as columns of maxTokens rows: a buffer at column c occupies elements
 * [c·maxTokens, (c + features)·maxTokens), so for any T ≤ maxTokens its [T, features] rows are
 * contiguous at the start of its region. Buffers whose lifetimes (first write .. last read, in
 * step order) do not overlap share columns; placement is greedy first-fit by decreasing size,
 * which is within a few percent of optimal for the chain-shaped lifetimes of a decoder.
 * Returns the arena width in features; peak activation bytes = width · maxTokens · bytes.
 */
import type { BufferEntry, Step } from '../../runtime/plan.js';

export function bufferFields(s: Step): { reads: string[]; writes: string[] } {
  switch (s.kind) {
    case 'embedding': return { reads: [], writes: [s.out] };
    case 'add': return { reads: [s.a, s.b], writes: [s.out] };
    case 'add_norm': return { reads: [s.x, ...(s.residual ? [s.residual] : [])], writes: [s.out, ...(s.sumOut ? [s.sumOut] : [])] };
    case 'linear': return { reads: [s.x, ...(s.residual ? [s.residual] : [])], writes: s.outs.map((o) => o.buffer) };
    case 'gated_act': return { reads: [s.gate, s.up], writes: [s.out] };
    case 'activation': return { reads: [s.x], writes: [s.out] };
    case 'rope': return { reads: [s.x], writes: [s.out] };
    case 'cache_write': return { reads: [s.k, s.v], writes: [] };
    case 'attention': return { reads: [s.q], writes: [s.out] };
    case 'logits': return { reads: [s.x], writes: [] };
  }
}

export function planMemory(steps: readonly Step[], buffers: BufferEntry[]): number {
  const first = new Map<string, number>(), last = new Map<string, number>();
  steps.forEach((s, i) => {
    const { reads, writes } = bufferFields(s);
    for (const w of writes) { if (!first.has(w)) first.set(w, i); if (!last.has(w)) last.set(w, i); }
    for (const r of reads) last.set(r, Math.max(last.get(r) ?? i, i));
  });
  const placed: { start: number; end: number; col: number; width: number }[] = [];
  let width = 0;
  const order = [...buffers].sort((a, b) => b.features - a.features || a.name.localeCompare(b.name));
  for (const b of order) {
    const start = first.get(b.name) ?? 0, end = last.get(b.name) ?? start;
    const busy = placed.filter((p) => p.start <= end && start <= p.end).sort((x, y) => x.col - y.col);
    let col = 0;
    for (const p of busy) {
      if (col + b.features <= p.col) break;
      col = Math.max(col, p.col + p.width);
    }
    b.column = col;
    placed.push({ start, end, col, width: b.features });
    width = Math.max(width, col + b.features);
  }
  return width;
}
