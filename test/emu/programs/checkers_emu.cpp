// Planted bugs for the emulator's checkers (test/emu/checkers.test.ts). Each case is one process:
//   ./checkers CASE   runs it; correct variants print "OK <case>", bugs must be stopped by the emulator.
#include "lfc_intrinsics.cuh"
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// Warp 0 stages a 16x16 fp16 tile with cp.async; warp 1 reads it with ldmatrix. The barrier
// between them is what makes it correct.
template <bool Sync>
__global__ void stage_then_ldmatrix(const __half* src, uint32_t* out) {
  LFC_DYNAMIC_SMEM(__half, tile);
  unsigned lane = lfc::lane_id(), warp = lfc::warp_id();
  if (warp == 0) {
    lfc::cp_async<16>(tile + lane * 8, src + lane * 8);
    lfc::cp_async_commit();
    lfc::cp_async_wait<0>();
  }
  if (Sync) __syncthreads();
  if (warp == 1) {
    uint32_t r[4];
    lfc::ldmatrix_x4(r, tile + (lane % 16) * 16 + (lane / 16) * 8);
    for (int i = 0; i < 4; ++i) out[lane * 4 + i] = r[i];
  }
}

// Both warps write the same shared word in one epoch.
__global__ void two_warps_write(int* out) {
  LFC_DYNAMIC_SMEM(int, s);
  if (lfc::lane_id() == 0) s[0] = 100 + int(lfc::warp_id());
  __syncthreads();
  if (threadIdx.x == 0) *out = s[0];
}

// A wild store (a null pointer plus an offset), not next to any allocation.
__global__ void wild_store(float* out) { if (threadIdx.x == 5) out[threadIdx.x + 1000] = 1.f; }

// Thread t writes out[t + shift]: shift 1 overruns the allocation by one element.
__global__ void shifted_store(float* out, int shift) { out[threadIdx.x + shift] = 1.f; }

// Sum through shared memory with the barrier optional: the order fibers run in decides the result.
template <bool Sync>
__global__ void neighbour_sum(const int* in, int* out) {
  LFC_DYNAMIC_SMEM(int, s);
  unsigned t = threadIdx.x;
  s[t] = in[t];
  if (Sync) __syncthreads();
  out[t] = s[t] + s[(t + 1) % blockDim.x];
}

int main(int argc, char** argv) {
  std::string c = argc > 1 ? argv[1] : "";
  if (c == "ldmatrix-sync" || c == "ldmatrix-nosync") {
    __half* src;
    uint32_t* out;
    cudaMalloc(reinterpret_cast<void**>(&src), 256 * sizeof(__half));
    cudaMalloc(reinterpret_cast<void**>(&out), 128 * 4);
    for (int i = 0; i < 256; ++i) src[i] = __float2half(float(i % 17));
    if (c == "ldmatrix-sync") LFC_LAUNCH(stage_then_ldmatrix<true>, dim3(1), dim3(64), 512, src, out);
    else LFC_LAUNCH(stage_then_ldmatrix<false>, dim3(1), dim3(64), 512, src, out);
    std::printf("OK %s\n", c.c_str());
  } else if (c == "write-write") {
    int* out;
    cudaMalloc(reinterpret_cast<void**>(&out), 4);
    LFC_LAUNCH(two_warps_write, dim3(1), dim3(64), 16, out);
    std::printf("OK %s\n", c.c_str());
  } else if (c == "oob-0" || c == "oob-1") {
    float* out;
    cudaMalloc(reinterpret_cast<void**>(&out), 64 * sizeof(float));
    LFC_LAUNCH(shifted_store, dim3(1), dim3(64), 0, out, c == "oob-1" ? 1 : 0);
    std::printf("OK %s\n", c.c_str());
  } else if (c == "wild") {
    LFC_LAUNCH(wild_store, dim3(1), dim3(32), 0, static_cast<float*>(nullptr));
    std::printf("OK %s\n", c.c_str());
  } else if (c == "neighbour-sync" || c == "neighbour-nosync") {
    int *in, *out;
    cudaMalloc(reinterpret_cast<void**>(&in), 64 * 4);
    cudaMalloc(reinterpret_cast<void**>(&out), 64 * 4);
    for (int i = 0; i < 64; ++i) in[i] = i * i;
    if (c == "neighbour-sync") LFC_LAUNCH(neighbour_sum<true>, dim3(1), dim3(64), 256, in, out);
    else LFC_LAUNCH(neighbour_sum<false>, dim3(1), dim3(64), 256, in, out);
    long sum = 0;
    for (int i = 0; i < 64; ++i) sum = sum * 31 + out[i];
    std::printf("OK %s %ld\n", c.c_str(), sum);
  } else {
    std::printf("unknown case\n");
    return 2;
  }
  return 0;
}
