// lfc_abi.h: the contract between generated kernels (templates/*.cu.hbs) and the generated launcher.
//
// Every kernel translation unit defines one or more host launch functions
//     cudaError_t <name>(const Lfc<Family>Args& a, cudaStream_t stream);
// that pick grid/block from the arguments, launch with LFC_LAUNCH and return cudaGetLastError()
// (cudaSuccess when nothing failed). <name> is given by the renderer (RenderedKernel.name in
// compiler/codegen/kernel.ts). Pointers are device pointers; on the CPU emulator build they are
// host pointers. Compile-time choices (activation storage dtype, head dim, norm kind, tiles, ...)
// are baked into the kernel by its template; everything here is run-time.
//
// Activation storage: one dtype per artifact (`lfc_act_t`: __nv_bfloat16 or __half), row-major
// [T, features] per buffer, contiguous (row stride = features). Matrices of linear / embedding /
// logits are stored in lfc_act_t; small vectors (bias, norm gamma/beta, rope cos/sin, quant scales)
// stay fp32. KV cache: lfc_act_t [numBlocks, blockSize, kvHeads, headDim] per layer, K and V apart.
//
// Graph safety: launch functions may be captured into a CUDA graph and replayed with new data in
// the same buffers, so grids depend only on the scalar fields (never on device data); data-dependent
// work (context lengths, slots) is read on the device. Padding rows of a bucketed batch carry
// slot_mapping -1 (cache_write skips them) and context_lens 0 (attention writes zeros).
#pragma once
#include <cstdint>
#include <cstddef>
#if defined(__CUDACC__)
#include <cuda_runtime.h>
#else
#include <cuda_runtime_api.h>  // declarations only; the emulator build defines them (templates/emu)
#endif

// The ragged batch on the device (runtime/batch.ts), padded for graph buckets as said above.
struct LfcBatch {
  const int32_t* tokens;        // [T]
  const int32_t* positions;     // [T]
  const int32_t* seq_starts;    // [B+1]
  const int32_t* context_lens;  // [B]
  const int32_t* block_tables;  // [B, max_blocks_per_seq], unused entries -1
  const int32_t* slot_mapping;  // [T], -1 = padding (no cache write)
  const int32_t* logit_indices; // [L]
  int T, B, L;
  int max_blocks_per_seq;
  int max_new_tokens;  // upper bound on seq_starts[b+1]-seq_starts[b] over b (grid sizing only)
  int max_context;     // upper bound on context_lens[b] (grid sizing only)
};

// out[t, :] = table[indices[t], :]
struct LfcEmbeddingArgs {
  const int32_t* indices;  // [T] token ids or positions
  const void* table;       // lfc_act_t [V, H]
  void* out;               // lfc_act_t [T, H]
  int T, V, H;
};

// out = a + b, n elements
struct LfcAddArgs {
  const void* a;
  const void* b;
  void* out;
  int64_t n;
};

// s = x (+ residual); sum_out = s (optional); out = norm(s) * gamma (+ beta). fp32 accumulation.
struct LfcAddNormArgs {
  const void* x;         // [T, H]
  const void* residual;  // [T, H] or nullptr
  void* out;             // [T, H]
  void* sum_out;         // [T, H] or nullptr
  const float* gamma;    // [H]
  const float* beta;     // [H] or nullptr (layer norm only)
  float eps;
  int T, H;
};

// One destination of a linear's output columns [start, end) (QKV split, gate/up split).
struct LfcLinearOut {
  void* ptr;  // [T, end-start]
  int start, end;
};
// y = act(x·Wᵀ + bias) + residual, columns scattered to outs. W: [N, K] row-major.
// Quantized formats (plan LinearFormat) use w as the packed weight and the fields below.
struct LfcLinearArgs {
  const void* x;         // [T, K]
  const void* w;         // lfc_act_t [N, K]; int8 [N, K]; uint8 [N, K/2] (int4, low nibble first)
  const float* bias;     // [N] or nullptr
  const void* residual;  // [T, N] or nullptr
  LfcLinearOut outs[4];
  int n_outs;
  int T, K, N;
  const float* scale;    // quant: [N] (int8_channel) or [N, K/group] (int4_group)
  const uint8_t* zero;   // int4_group: [N, K/group] or nullptr (zero point 8)
  const float* smooth;   // [K] or nullptr: x * smooth before the GEMM
  void* workspace;       // scratch of lfc_linear_workspace_bytes (split-K, activation quant)
};

// out = act(gate) * up, n elements
struct LfcGatedActArgs {
  const void* gate;
  const void* up;
  void* out;
  int64_t n;
};

// out = act(x), n elements
struct LfcActivationArgs {
  const void* x;
  void* out;
  int64_t n;
};

// out = rope(x) for x [T, heads, head_dim]; cos/sin fp32 [P, rotary_dim/2] indexed by position.
struct LfcRopeArgs {
  const void* x;
  void* out;
  const int32_t* positions;  // [T]
  const float* cos;
  const float* sin;
  int T, heads, head_dim, rotary_dim, table_rows;
};

// k_cache[slot], v_cache[slot] = k[t], v[t] for slot = slot_mapping[t] >= 0.
struct LfcCacheWriteArgs {
  const void* k;  // [T, kv_heads, head_dim]
  const void* v;
  void* k_cache;  // [num_blocks, block_size, kv_heads, head_dim]
  void* v_cache;
  const int32_t* slot_mapping;
  int T, kv_heads, head_dim, block_size, num_blocks;
};

// Paged attention over the batch (prefill, chunked prefill, decode, multi-token verification).
struct LfcAttentionArgs {
  const void* q;  // [T, heads, head_dim]
  void* out;      // [T, heads, head_dim]
  const void* k_cache;
  const void* v_cache;
  LfcBatch batch;
  int heads, kv_heads, head_dim, block_size, num_blocks;
  float scale;
  void* workspace;        // split-KV partials; lfc_attention_workspace_bytes tells the size
  size_t workspace_bytes;
  int num_sms;            // of the device (split-KV heuristics)
};

// logits[l, :] = x[logit_indices[l], :] · Wᵀ (+ bias), fp32 out.
struct LfcLogitsArgs {
  const void* x;  // [T, H]
  const int32_t* logit_indices;
  const void* w;  // lfc_act_t [V, H]
  const float* bias;
  float* out;     // [L, V]
  int L, H, V;
};

// Per-row sampling of fp32 logits (runtime/sampling.ts semantics: temperature 0 = argmax with
// lowest-id ties; else softmax(logits/temperature), top_k, top_p, then u = Philox(seed, counter)
// and the inverse CDF in token-id order).
struct LfcSampleArgs {
  const float* logits;        // [L, V]
  const float* temperature;   // [L]
  const int32_t* top_k;       // [L], 0 = off
  const float* top_p;         // [L], 1 = off
  const uint64_t* seeds;      // [L]
  const int64_t* counters;    // [L] Philox counter (position of the sampled token)
  int32_t* out_tokens;        // [L]
  float* out_logprobs;        // [L] or nullptr
  void* workspace;
  int L, V;
};
