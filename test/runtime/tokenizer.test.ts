/**
 * Tokenizers: the byte-level one of the shipped models, and Hugging Face tokenizer.json files
 * (a byte-level BPE built here, as GPT-2/LLaMA-3/Qwen ship), including streaming decode of
 * characters split across tokens and an engine loading one from its artifact folder.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteTokenizer, HfTokenizer } from '../../runtime/tokenizer.js';
import { byteLevelBpe } from '../helpers/tokenizers.js';

const streamed = (tk: { decoder(): { push(t: ArrayLike<number>): string; flush(): string } }, ids: number[]) => {
  const d = tk.decoder();
  return ids.map((t) => d.push([t])).join('') + d.flush();
};

describe('ByteTokenizer', () => {
  it('encodes BOS + UTF-8 bytes and streams characters whole', () => {
    const tk = new ByteTokenizer();
    const ids = tk.encode('é→x');
    expect(ids).toEqual([256, 0xc3, 0xa9, 0xe2, 0x86, 0x92, 0x78]);
    const d = tk.decoder();
    expect(d.push([0xc3])).toBe('');
    expect(d.push([0xa9])).toBe('é');
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => { expect(streamed(tk, tk.encode(s).slice(1))).toBe(s); }));
  });
});

describe('HfTokenizer (tokenizer.json)', () => {
  const { json, config } = byteLevelBpe([['d', 'e'], ['de', 'f'], [' ', 'f']]);
  const tk = HfTokenizer.create(json, config);

  it('applies BPE merges and finds BOS/EOS from tokenizer_config.json', () => {
    const ids = tk.encode('def foo');
    expect(ids).toEqual([260, 261, 111, 111]); // "def", " f", "o", "o"
    expect(tk.bos).toBe(256);
    expect(tk.eos).toBe(257);
  });

  it('decodes what it encodes, also streamed token by token (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      const ids = tk.encode(s);
      expect(tk.decoder().push(ids)).toBe(s);
      expect(streamed(tk, ids)).toBe(s);
    }), { numRuns: 200 });
  });

  it('holds back a character split across byte tokens', () => {
    const d = tk.decoder();
    expect(d.push([0xe2])).toBe('');
    expect(d.push([0x86])).toBe('');
    expect(d.push([0x92])).toBe('→');
  });

  it('loads from a folder, and is absent without tokenizer.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-tk-'));
    expect(HfTokenizer.fromDir(dir)).toBeUndefined();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    expect(HfTokenizer.fromDir(dir)!.encode('def')).toEqual([260]);
    writeFileSync(join(dir, 'tokenizer_config.json'), '{');
    expect(() => HfTokenizer.fromDir(dir)).toThrow(/tokenizer_config.json: .*JSON/);
  });
});
