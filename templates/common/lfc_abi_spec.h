// lfc_abi_spec.h: the argument struct of the speculative-decoding verification kernel
// (templates/spec_verify.cu.hbs, compiler/codegen/families/spec-verify.ts), kept apart from
// lfc_abi.h. Same contract: the unit defines
//     cudaError_t <name>(const LfcSpecVerifyArgs& a, cudaStream_t stream);
// with grid = S blocks (one per speculating sequence), graph-safe (the grid depends on S only).
#pragma once
#include "lfc_abi.h"

// Verification of S sequences, runtime/spec/spec-decoder.ts SpecDecoder.verify semantics.
// Sequence s carried k_s = draft_starts[s+1] - draft_starts[s] drafts (k_s may be 0) and owns the
// k_s + 1 consecutive target logit rows logit_rows[s] .. logit_rows[s] + k_s (row j: the target's
// logits for position positions[s] + j). Drafts must be token ids in [0, V).
struct LfcSpecVerifyArgs {
  const float* logits;              // [rows, V] fp32 target logits
  const int32_t* logit_rows;        // [S] first logit row of sequence s
  const int32_t* draft_starts;      // [S+1] offsets into draft_tokens (and draft_probs rows)
  const int32_t* draft_tokens;      // [sum k_s]
  const float* draft_probs;         // [sum k_s, V] draft distributions q, or nullptr: one-hot drafts
  const int32_t* has_draft_probs;   // [S] 0 = sequence s drafted one-hot (n-gram), or nullptr: all
                                    // use draft_probs (when given)
  const float* temperature;         // [S] 0 = greedy
  const int32_t* top_k;             // [S] 0 = off
  const float* top_p;               // [S] 1 = off
  const uint64_t* seeds;            // [S] Philox key (the request's seed, int64 bits)
  const int64_t* positions;         // [S] position of the first draft (= seq.length)
  int32_t* out_accepted;            // [S] accepted drafts a_s in 0..k_s
  int32_t* out_next_tokens;         // [S] the corrected (a_s < k_s) or bonus (a_s == k_s) token
  float* out_logprobs;              // [S] or nullptr: log p(next token) under the target's final
                                    // distribution at position positions[s] + a_s
  int32_t* out_row_tokens;          // [rows] or nullptr: SpecDecoder.verify's output per row:
                                    // row logit_rows[s] + j holds draft j (j < a_s), the next token
                                    // (j == a_s), -1 (j > a_s)
  void* workspace;                  // unused
  int S, V;
};
