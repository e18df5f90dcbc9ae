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
