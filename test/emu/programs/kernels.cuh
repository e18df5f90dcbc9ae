// Small real kernels written against lfc_intrinsics.cuh: compiled by nvcc (sm_80, sm_90a) and
// by g++ -DLFC_EMU. Used by test/emu/kernels.test.ts.
#pragma once
#include "lfc_intrinsics.cuh"

// Sum of n floats per block: warp shuffles, then shared memory across warps, atomicAdd to *out.
__global__ void block_reduce_sum(const float* x, int n, float* out) {
  __shared__ float partial[32];
  float s = 0.f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += x[i];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lfc::lane_id() == 0) partial[lfc::warp_id()] = s;
#ifndef LFC_PLANTED_MISSING_SYNC
  __syncthreads();
#endif
  if (lfc::warp_id() == 0) {
    float v = lfc::lane_id() < (blockDim.x + 31) / 32 ? partial[lfc::lane_id()] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lfc::lane_id() == 0) atomicAdd(out, v);
  }
#ifdef LFC_PLANTED_MISSING_SYNC
  __syncthreads();
#endif
}

// C[16x8] = A[16x16] (row-major fp16) * B[16x8] (given as B^T, 8x16 row-major fp16), one warp:
// cp.async to shared, ldmatrix x4 (A) and x2 (B^T rows = B columns), one mma.sync.
__global__ void tile_gemm_16x8x16(const __half* A, const __half* Bt, float* C) {
  __shared__ __align__(16) __half sA[16 * 16];
  __shared__ __align__(16) __half sB[8 * 16];
  unsigned lane = lfc::lane_id();
  lfc::cp_async<16>(sA + lane * 8, A + lane * 8);  // 32 lanes x 8 halves = 256
  if (lane < 16) lfc::cp_async<16>(sB + lane * 8, Bt + lane * 8);
  lfc::cp_async_commit();
  lfc::cp_async_wait<0>();
  __syncthreads();
  uint32_t a[4], b[2];
  // x4 matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
  lfc::ldmatrix_x4(a, sA + (lane % 16) * 16 + (lane / 16) * 8);
  // x2 matrices over B^T: (n 0-7, k 0-7), (n 0-7, k 8-15)
  lfc::ldmatrix_x2(b, sB + (lane % 8) * 16 + ((lane / 8) % 2) * 8);
  float c[4] = {0, 0, 0, 0}, d[4];
  lfc::mma_m16n8k16_f16(d, a, b, c);
  unsigned g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
}
