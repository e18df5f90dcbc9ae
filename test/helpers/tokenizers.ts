/** Hugging Face tokenizer.json files built in tests (no hub here). */

/** GPT-2's bytes_to_unicode: printable stand-ins for every byte. */
function byteChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const out = new Array<string>(256);
  bs.forEach((b, i) => { out[b] = String.fromCodePoint(cs[i]); });
  return out;
}

/** A byte-level BPE whose byte tokens have id = byte value, plus merges and special tokens. */
export function byteLevelBpe(merges: [string, string][] = []): { json: object; config: object } {
  const ch = byteChars();
  const vocab: Record<string, number> = {};
  ch.forEach((c, b) => { vocab[c] = b; });
  const mergeList: string[] = [];
  let next = 259;
  for (const [a, b] of merges) {
    const enc = (s: string) => [...new TextEncoder().encode(s)].map((x) => ch[x]).join('');
    mergeList.push(`${enc(a)} ${enc(b)}`);
    vocab[enc(a) + enc(b)] = next++;
  }
  const special = [{ id: 256, content: '<s>' }, { id: 257, content: '</s>' }, { id: 258, content: '<pad>' }]
    .map((t) => ({ ...t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    json: {
      version: '1.0', truncation: null, padding: null, added_tokens: special, normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: mergeList },
    },
    config: { bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>' },
  };
}
