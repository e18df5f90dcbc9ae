// lfc_common.cuh: device helpers every kernel template shares (both builds: nvcc and g++ -DLFC_EMU).
//   to_f32(x) / from_f32<T>(f)      storage <-> fp32 (round to nearest even, as runtime/floats.ts)
//   Vec16<T>                        16 bytes of T for vectorised loads/stores (8 halves / 4 floats)
//   act_relu/silu/gelu_tanh/gelu_erf  fp32 activations (runtime/kernels/activation.ts)
//   warp_sum/warp_max, block_sum/block_max (blockDim.x a multiple of 32, <= 1024)
//   philox4x32_10 / philox_uniform  the sampler's RNG (runtime/sampling.ts), bit-identical
#pragma once
#include "lfc_intrinsics.cuh"
#include <cmath>
#include <cstdint>

namespace lfc {

LFC_DEV float to_f32(float x) { return x; }
LFC_DEV float to_f32(__half x) { return __half2float(x); }
LFC_DEV float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> LFC_DEV T from_f32(float f);
template <> LFC_DEV float from_f32<float>(float f) { return f; }
template <> LFC_DEV __half from_f32<__half>(float f) { return __float2half_rn(f); }
template <> LFC_DEV __nv_bfloat16 from_f32<__nv_bfloat16>(float f) { return __float2bfloat16_rn(f); }

template <class T>
struct alignas(16) Vec16 {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

LFC_DEV float act_relu(float x) { return x > 0.f || x != x ? x : 0.f; }
LFC_DEV float act_silu(float x) { return x / (1.f + expf(-x)); }
LFC_DEV float act_gelu_tanh(float x) { return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))); }
LFC_DEV float act_gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.7071067811865476f)); }

LFC_DEV float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
LFC_DEV float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide reductions; `scratch` is __shared__ float[32]. Every thread gets the result.
// Ends with a __syncthreads so scratch may be reused at once.
LFC_DEV float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  if (lane_id() == 0) scratch[warp_id()] = v;
  __syncthreads();
  unsigned nw = (blockDim.x * blockDim.y * blockDim.z + 31) / 32;
  float t = lane_id() < nw ? scratch[lane_id()] : 0.f;
  t = warp_sum(t);
  __syncthreads();
  return t;
}
LFC_DEV float block_max(float v, float* scratch) {
  v = warp_max(v);
  if (lane_id() == 0) scratch[warp_id()] = v;
  __syncthreads();
  unsigned nw = (blockDim.x * blockDim.y * blockDim.z + 31) / 32;
  float t = lane_id() < nw ? scratch[lane_id()] : -INFINITY;
  t = warp_max(t);
  __syncthreads();
  return t;
}

// Philox-4x32-10, as runtime/sampling.ts philox4x32 (Salmon et al., SC'11).
LFC_DEV void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(0xd2511f53u) * c[0], p1 = uint64_t(0xcd9e8d57u) * c[2];
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0), hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
    k0 += 0x9e3779b9u; k1 += 0xbb67ae85u;
  }
}
// Uniform double in [0, 1) with 53 bits, as runtime/sampling.ts uniform(seed, counter, stream).
LFC_DEV double philox_uniform(uint64_t seed, uint64_t counter, uint32_t stream = 0) {
  uint32_t c[4] = {uint32_t(counter), uint32_t(counter >> 32), stream, 0};
  philox4x32_10(c, uint32_t(seed), uint32_t(seed >> 32));
  return (double(c[0] >> 5) * 67108864.0 + double(c[1] >> 6)) / 9007199254740992.0;
}

}  // namespace lfc
