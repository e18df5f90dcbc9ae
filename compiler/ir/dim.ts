/**
 * Symbolic dimensions.
 *
 * A dim is a number or a polynomial over named symbols with integer coefficients, kept in a
 * canonical form so that equal expressions compare equal:
 *
 *     past_sequence_length + sequence_length      terms {past_sequence_length:1, sequence_length:1}
 *     batch_size*num_heads                         terms {batch_size*num_heads:1}
 *
 * ONNX dim_params become symbols. Operations that leave polynomials (division that is not exact,
 * min/max of unrelated symbols, modulo) produce an opaque atom, printed like `floor(s/2)`, which
 * is itself treated as a symbol: sound, and still comparable by its text.
 */

export type Dim = number | SymDim;

/** Joins the symbols of a monomial key; printed as '*'. Atoms' text may hold '*' themselves. */
const SEP = '\u0001';

export class SymDim {
  /** monomial (symbols sorted, joined by SEP; '' for the constant) → coefficient, never 0. */
  readonly terms: ReadonlyMap<string, number>;
  private constructor(terms: Map<string, number>) { this.terms = terms; }

  static symbol(name: string): SymDim { return new SymDim(new Map([[name, 1]])); }

  /** Canonicalise: drop zero terms, collapse to a number when constant. */
  static of(terms: Map<string, number>): Dim {
    for (const [k, v] of terms) if (v === 0) terms.delete(k);
    if (terms.size === 0) return 0;
    if (terms.size === 1 && terms.has('')) return terms.get('')!;
    return new SymDim(new Map([...terms].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  }

  get constant(): number { return this.terms.get('') ?? 0; }

  toString(): string {
    const parts: string[] = [];
    for (const [m, c] of this.terms) {
      if (m === '') continue;
      const name = m.split(SEP).join('*');
      parts.push(c === 1 ? name : c === -1 ? `-${name}` : `${c}*${name}`);
    }
    const k = this.constant;
    if (k !== 0) parts.push(String(k));
    return parts.join(' + ').replace(/\+ -/g, '- ');
  }
}

export const isSym = (d: Dim): d is SymDim => typeof d !== 'number';
export const dimStr = (d: Dim): string => (typeof d === 'number' ? String(d) : d.toString());
export const shapeStr = (s: readonly Dim[]): string => `[${s.map(dimStr).join(', ')}]`;

function termsOf(d: Dim): Map<string, number> {
  return typeof d === 'number' ? new Map(d === 0 ? [] : [['', d]]) : new Map(d.terms);
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const t = termsOf(a);
  for (const [m, c] of termsOf(b)) t.set(m, (t.get(m) ?? 0) + c);
  return SymDim.of(t);
}

export function dimNeg(a: Dim): Dim {
  if (typeof a === 'number') return -a;
  return SymDim.of(new Map([...a.terms].map(([m, c]) => [m, -c])));
}

export const dimSub = (a: Dim, b: Dim): Dim => dimAdd(a, dimNeg(b));

function mulMonomial(a: string, b: string): string {
  if (a === '') return b;
  if (b === '') return a;
  return [...a.split(SEP), ...b.split(SEP)].sort().join(SEP);
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  const t = new Map<string, number>();
  for (const [ma, ca] of termsOf(a)) {
    for (const [mb, cb] of termsOf(b)) {
      const m = mulMonomial(ma, mb);
      t.set(m, (t.get(m) ?? 0) + ca * cb);
    }
  }
  return SymDim.of(t);
}

/** An opaque atom standing for an expression lfc does not simplify. */
function atom(text: string): Dim { return SymDim.symbol(text); }

const paren = (d: Dim): string => {
  const s = dimStr(d);
  return /^[\w.:]+$/.test(s) ? s : `(${s})`;
};

/** Floor division, as ONNX Div on int64 (truncation agrees with floor for the non-negative dims). */
export function dimFloorDiv(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') {
    if (b === 0) throw new Error('division by zero in shape arithmetic');
    return Math.trunc(a / b);
  }
  if (typeof b === 'number') {
    if (b === 1) return a;
    const t = termsOf(a);
    if ([...t.values()].every((c) => c % b === 0)) {
      return SymDim.of(new Map([...t].map(([m, c]) => [m, c / b])));
    }
  } else if (dimEq(a, b)) {
    return 1;
  } else if (typeof a !== 'number') {
    // a = b * k exactly, where b is a single monomial dividing every term of a
    const q = exactDivByMonomial(a, b);
    if (q !== undefined) return q;
  }
  return atom(`floor(${paren(a)}/${paren(b)})`);
}

function exactDivByMonomial(a: SymDim, b: SymDim): Dim | undefined {
  if (b.terms.size !== 1) return undefined;
  const [[mb, cb]] = [...b.terms];
  if (mb === '') return undefined;
  const syms = mb.split(SEP);
  const out = new Map<string, number>();
  for (const [m, c] of a.terms) {
    const rest = m === '' ? [] : m.split(SEP);
    for (const s of syms) {
      const i = rest.indexOf(s);
      if (i < 0) return undefined;
      rest.splice(i, 1);
    }
    if (c % cb !== 0) return undefined;
    out.set(rest.join(SEP), c / cb);
  }
  return SymDim.of(out);
}

export function dimMod(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a % b;
  if (typeof b === 'number' && [...termsOf(a)].every(([m, c]) => m === '' || c % b === 0)) {
    return ((typeof a === 'number' ? a : a.constant) % b);
  }
  return atom(`mod(${paren(a)},${paren(b)})`);
}

export function dimMin(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return Math.min(a, b);
  const diff = dimSub(a, b);
  if (typeof diff === 'number') return diff <= 0 ? a : b;
  return atom(`min(${dimStr(a)},${dimStr(b)})`);
}

export function dimMax(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return Math.max(a, b);
  const diff = dimSub(a, b);
  if (typeof diff === 'number') return diff >= 0 ? a : b;
  return atom(`max(${dimStr(a)},${dimStr(b)})`);
}

export function dimEq(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  return a.toString() === b.toString();
}

export const shapeEq = (a: readonly Dim[], b: readonly Dim[]): boolean =>
  a.length === b.length && a.every((d, i) => dimEq(d, b[i]));

/** Product of dims (element count). */
export const dimProduct = (dims: readonly Dim[]): Dim => dims.reduce<Dim>((acc, d) => dimMul(acc, d), 1);

/** Evaluate under a binding of symbols to numbers; throws naming the first unbound symbol. */
export function evalDim(d: Dim, env: ReadonlyMap<string, number>): number {
  if (typeof d === 'number') return d;
  let v = 0;
  for (const [m, c] of d.terms) {
    let p = c;
    if (m !== '') {
      for (const s of m.split(SEP)) {
        const x = env.get(s);
        if (x === undefined) throw new Error(`symbolic dim '${s}' is not bound`);
        p *= x;
      }
    }
    v += p;
  }
  return v;
}

/**
 * Whether `d` is known to be ≥ 0 for any non-negative binding: true when every coefficient is
 * non-negative (all symbols are sizes).
 */
export const dimNonNegative = (d: Dim): boolean =>
  typeof d === 'number' ? d >= 0 : [...d.terms.values()].every((c) => c >= 0);

/** Replace symbols by expressions (e.g. total_sequence_length → past_sequence_length + sequence_length). */
export function substituteDim(d: Dim, subst: ReadonlyMap<string, Dim>): Dim {
  if (typeof d === 'number' || subst.size === 0) return d;
  let hit = false;
  for (const m of d.terms.keys()) {
    if (m === '') continue;
    for (const s of m.split(SEP)) if (subst.has(s)) { hit = true; break; }
    if (hit) break;
  }
  if (!hit) return d;
  let out: Dim = 0;
  let changed = false;
  for (const [m, c] of d.terms) {
    let term: Dim = c;
    if (m !== '') {
      for (const s of m.split(SEP)) {
        const r = subst.get(s);
        if (r !== undefined) changed = true;
        term = dimMul(term, r ?? SymDim.symbol(s));
      }
    }
    out = dimAdd(out, term);
  }
  return changed ? out : d;
}

/** The symbol name when `d` is exactly one symbol with coefficient 1. */
export function bareSymbol(d: Dim): string | undefined {
  if (typeof d === 'number' || d.terms.size !== 1) return undefined;
  const [[m, c]] = [...d.terms];
  return c === 1 && m !== '' && !m.includes(SEP) ? m : undefined;
}
