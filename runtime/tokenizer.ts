import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTkImpl } from '@huggingface/tokenizers';

/**
 * Tokenizers the runtime ships. The shipped models use a byte-level vocabulary: ids 0..255 are
 * bytes, then BOS, EOS and PAD. Text deltas are decoded incrementally, so a multi-byte UTF-8
 * character split across tokens is emitted whole once complete.
 */

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;
  encode(text: string): number[];
  /** A fresh incremental decoder: push token ids, get the text they complete. */
  decoder(): { push(tokens: ArrayLike<number>): string; flush(): string };
}

export class ByteTokenizer implements Tokenizer {
  constructor(readonly vocabSize = 259, readonly bos = 256, readonly eos = 257) {}

  encode(text: string): number[] {
    return [this.bos, ...new TextEncoder().encode(text)];
  }

  decoder(): { push(tokens: ArrayLike<number>): string; flush(): string } {
    const td = new TextDecoder('utf-8', { fatal: false });
    return {
      push: (tokens) => {
        const bytes: number[] = [];
        for (let i = 0; i < tokens.length; i++) if (tokens[i] < 256) bytes.push(tokens[i]);
        return td.decode(Uint8Array.from(bytes), { stream: true });
      },
      flush: () => td.decode(),
    };
  }
}

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json, the files every Hub model and
 * Optimum export ships), run by @huggingface/tokenizers: the maintained pure-JS port of the Rust
 * `tokenizers` crate (no native code, no dependencies). Streaming decode re-decodes the tokens
 * since the last emitted boundary and holds back text that ends in an incomplete character, so
 * byte-fallback and multi-token characters come out whole.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;

  private constructor(private readonly tk: HfTk, cfg: Record<string, unknown>, vocabSize?: number) {
    const id = (field: string): number | undefined => {
      const v = cfg[field];
      const name = typeof v === 'string' ? v : (v as { content?: string } | undefined)?.content;
      return name === undefined ? undefined : tk.token_to_id(name);
    };
    this.bos = id('bos_token');
    this.eos = id('eos_token');
    this.vocabSize = vocabSize ?? tk.get_vocab().size;
  }

  /** From the parsed files. `vocabSize` (the model's) may exceed the tokenizer's padded vocabulary. */
  static create(tokenizerJson: object, tokenizerConfig: object = {}, vocabSize?: number): HfTokenizer {
    return new HfTokenizer(new HfTkImpl(tokenizerJson, tokenizerConfig) as unknown as HfTk, tokenizerConfig as Record<string, unknown>, vocabSize);
  }

  /** tokenizer.json (+ tokenizer_config.json when present) from a folder, or undefined if absent. */
  static fromDir(dir: string, vocabSize?: number): HfTokenizer | undefined {
    const json = join(dir, 'tokenizer.json');
    if (!existsSync(json)) return undefined;
    const read = (p: string): object => {
      try { return JSON.parse(readFileSync(p, 'utf8')) as object; } catch (e) { throw new Error(`${p}: ${(e as Error).message}`); }
    };
    const cfgPath = join(dir, 'tokenizer_config.json');
    return HfTokenizer.create(read(json), existsSync(cfgPath) ? read(cfgPath) : {}, vocabSize);
  }

  encode(text: string): number[] {
    return this.tk.encode(text).ids;
  }

  decoder(): { push(tokens: ArrayLike<number>): string; flush(): string } {
    // As transformers' TextStreamer: decode everything since the last line break and emit the new
    // suffix (decoders such as SentencePiece's depend on the preceding tokens), holding back text
    // that ends in an incomplete character.
    let line: number[] = [];
    let emitted = 0;
    const decode = () => (line.length ? this.tk.decode(line, { skip_special_tokens: true }) : '');
    return {
      push: (tokens) => {
        for (let i = 0; i < tokens.length; i++) line.push(tokens[i]);
        const text = decode();
        if (text.endsWith('\uFFFD')) return '';
        const out = text.slice(emitted);
        if (text.endsWith('\n')) { line = []; emitted = 0; } else emitted = text.length;
        return out;
      },
      flush: () => {
        const out = decode().slice(emitted);
        line = []; emitted = 0;
        return out;
      },
    };
  }
}

/** The part of @huggingface/tokenizers' Tokenizer this runtime uses. */
interface HfTk {
  encode(text: string): { ids: number[] };
  decode(ids: number[], opts?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
  get_vocab(): Map<string, number>;
}
