// Each intrinsic of lfc_intrinsics.cuh on the emulator against a scalar model of its PTX ISA
// semantics. `intrinsics_emu` runs every check (PASS/FAIL lines, exit 1 on any FAIL);
// `intrinsics_emu planted-deadlock|planted-smem-oob` run kernels with planted bugs that the
// emulator must stop with exit code 3.
#include "lfc_intrinsics.cuh"
#include <cmath>
#include <random>
#include <string>

static int failures = 0;
static void check(bool ok, const std::string& name) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", name.c_str());
  if (!ok) ++failures;
}
static std::mt19937 rng(1234);

// ---- mma.sync: fragments packed from the ISA's per-element formulas (a_i, b_i, c_i), which the
// emulator does not share: for .f16/.bf16 m16n8k16 (g = lane>>2, t = lane%4)
//   a_i: row = g for i in {0,1,4,5}, else g+8; col = 2t + (i&1) for i<4, else 2t + 8 + (i&1)
//   b_i: row = 2t + (i&1) for i<2, else 2t + 8 + (i&1); col = g
//   c_i: row = g for i<2, else g+8; col = 2t + (i&1)
// and for .s8 m16n8k32:
//   a_i: row = g for i<4 or 8<=i<12, else g+8; col = 4t + (i&3) for i<8, else 4t + 16 + (i&3)
//   b_i: row = 4t + (i&3) for i<4, else 4t + 16 + (i&3); col = g
template <bool BF16>
__global__ void mma16_kernel(const float* A, const float* B, const float* C, float* D) {
  unsigned lane = lfc::lane_id(), g = lane >> 2, t = lane & 3;
  auto bits = [](float v) -> uint16_t {
    if (BF16) { __nv_bfloat16 h = __float2bfloat16(v); return __nv_bfloat16_raw(h).x; }
    __half h = __float2half(v); return __half_raw(h).x;
  };
  uint16_t ae[8], be[4];
  for (int i = 0; i < 8; ++i) {
    unsigned row = (i == 0 || i == 1 || i == 4 || i == 5) ? g : g + 8;
    unsigned col = i < 4 ? 2 * t + (i & 1) : 2 * t + 8 + (i & 1);
    ae[i] = bits(A[row * 16 + col]);
  }
  for (int i = 0; i < 4; ++i) {
    unsigned row = i < 2 ? 2 * t + (i & 1) : 2 * t + 8 + (i & 1);
    be[i] = bits(B[row * 8 + g]);
  }
  uint32_t a[4], b[2];
  for (int r = 0; r < 4; ++r) a[r] = ae[2 * r] | (uint32_t(ae[2 * r + 1]) << 16);
  for (int r = 0; r < 2; ++r) b[r] = be[2 * r] | (uint32_t(be[2 * r + 1]) << 16);
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(i < 2 ? g : g + 8) * 8 + 2 * t + (i & 1)];
  if (BF16) lfc::mma_m16n8k16_bf16(d, a, b, c); else lfc::mma_m16n8k16_f16(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(i < 2 ? g : g + 8) * 8 + 2 * t + (i & 1)] = d[i];
}

template <bool BF16>
void test_mma16() {
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  std::vector<float> A(256), B(128), C(128), D(128, NAN);
  auto round = [](float v) { return BF16 ? __bfloat162float(__float2bfloat16(v)) : __half2float(__float2half(v)); };
  for (auto& v : A) v = round(U(rng));
  for (auto& v : B) v = round(U(rng));
  for (auto& v : C) v = U(rng);
  LFC_LAUNCH(mma16_kernel<BF16>, dim3(1), dim3(32), 0, A.data(), B.data(), C.data(), D.data());
  double maxerr = 0;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double ref = C[m * 8 + n];
      for (int k = 0; k < 16; ++k) ref += double(A[m * 16 + k]) * B[k * 8 + n];
      maxerr = std::fmax(maxerr, std::fabs(ref - D[m * 8 + n]));  // NaN (unwritten) fails
    }
  check(maxerr < 1e-4, BF16 ? "mma_m16n8k16_bf16 all lanes/registers vs matrix product" : "mma_m16n8k16_f16 all lanes/registers vs matrix product");
}

__global__ void mma_s8_kernel(const int8_t* A, const int8_t* B, const int32_t* C, int32_t* D) {
  unsigned lane = lfc::lane_id(), g = lane >> 2, t = lane & 3;
  uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  for (int i = 0; i < 16; ++i) {
    unsigned row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
    unsigned col = i < 8 ? 4 * t + (i & 3) : 4 * t + 16 + (i & 3);
    a[i / 4] |= uint32_t(uint8_t(A[row * 32 + col])) << (8 * (i % 4));
  }
  for (int i = 0; i < 8; ++i) {
    unsigned row = i < 4 ? 4 * t + (i & 3) : 4 * t + 16 + (i & 3);
    b[i / 4] |= uint32_t(uint8_t(B[row * 8 + g])) << (8 * (i % 4));
  }
  int32_t c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(i < 2 ? g : g + 8) * 8 + 2 * t + (i & 1)];
  lfc::mma_m16n8k32_s8(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(i < 2 ? g : g + 8) * 8 + 2 * t + (i & 1)] = d[i];
}

void test_mma_s8() {
  std::uniform_int_distribution<int> U(-128, 127);
  std::vector<int8_t> A(16 * 32), B(32 * 8);
  std::vector<int32_t> C(128), D(128, INT32_MIN);
  for (auto& v : A) v = int8_t(U(rng));
  for (auto& v : B) v = int8_t(U(rng));
  for (auto& v : C) v = U(rng) * 1000;
  LFC_LAUNCH(mma_s8_kernel, dim3(1), dim3(32), 0, A.data(), B.data(), C.data(), D.data());
  bool ok = true;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      int32_t ref = C[m * 8 + n];
      for (int k = 0; k < 32; ++k) ref += int32_t(A[m * 32 + k]) * B[k * 8 + n];
      ok &= ref == D[m * 8 + n];
    }
  check(ok, "mma_m16n8k32_s8 all lanes/registers vs matrix product (exact)");
}

// ---- shuffles and votes (2 warps, so rendezvous are per warp)
__global__ void shuffle_kernel(int* out) {
  unsigned lane = lfc::lane_id(), w = lfc::warp_id();
  int v = int(100 * w + lane);
  int* o = out + (w * 32 + lane) * 8;
  o[0] = __shfl_sync(0xffffffffu, v, 5);
  o[1] = __shfl_sync(0xffffffffu, v, 3, 8);
  o[2] = __shfl_up_sync(0xffffffffu, v, 3);
  o[3] = __shfl_down_sync(0xffffffffu, v, 3, 16);
  o[4] = __shfl_xor_sync(0xffffffffu, v, 9);
  o[5] = int(__ballot_sync(0xffffffffu, lane % 3 == 0 || w == 1));
  o[6] = __any_sync(0xffffffffu, lane == 31 && w == 0);
  o[7] = __all_sync(0xffffffffu, lane < 31);
}
void test_shuffles() {
  std::vector<int> out(64 * 8, -1);
  LFC_LAUNCH(shuffle_kernel, dim3(1), dim3(64), 0, out.data());
  bool idx = true, idxw = true, up = true, down = true, xr = true, vote = true;
  unsigned ballot0 = 0;
  for (unsigned l = 0; l < 32; ++l) if (l % 3 == 0) ballot0 |= 1u << l;
  for (unsigned w = 0; w < 2; ++w)
    for (unsigned l = 0; l < 32; ++l) {
      const int* o = out.data() + (w * 32 + l) * 8;
      auto v = [&](unsigned src) { return int(100 * w + src); };
      idx &= o[0] == v(5);
      idxw &= o[1] == v((l / 8) * 8 + 3);
      up &= o[2] == (l >= 3 ? v(l - 3) : v(l));
      down &= o[3] == ((l % 16) + 3 < 16 ? v(l + 3) : v(l));
      xr &= o[4] == v(l ^ 9);
      vote &= unsigned(o[5]) == (w == 1 ? 0xffffffffu : ballot0) && o[6] == (w == 0) && o[7] == 0;
    }
  check(idx, "__shfl_sync broadcast lane 5");
  check(idxw, "__shfl_sync width 8");
  check(up, "__shfl_up_sync delta 3 (low lanes keep their value)");
  check(down, "__shfl_down_sync delta 3 width 16 (segment end keeps its value)");
  check(xr, "__shfl_xor_sync mask 9");
  check(vote, "__ballot_sync / __any_sync / __all_sync");
}

// ---- ldmatrix: a 32x8 fp16 (b16) tile in shared memory; row r, column c holds r*8+c.
// ISA: lane l gets, for matrix i, row l/4 columns 2(l%4), 2(l%4)+1 (low half first); .trans gets
// rows 2(l%4), 2(l%4)+1 of column l/4. Lanes 8i..8i+7 address the rows of matrix i.
template <int N, bool T>
__global__ void ldmatrix_kernel(uint32_t* out) {
  __shared__ __align__(16) uint16_t tile[32 * 8];
  unsigned lane = lfc::lane_id();
  for (int c = 0; c < 8; ++c) tile[lane * 8 + c] = uint16_t(lane * 8 + c);
  __syncthreads();
  // lane l addresses row l of the tile, in reverse matrix order: matrix i = rows 8(N-1-i)..
  unsigned row = 8 * (N - 1 - (lane / 8) % N) + lane % 8;
  const void* p = tile + row * 8;
  uint32_t r[4] = {0, 0, 0, 0};
  if (N == 1) { uint32_t x[1]; T ? lfc::ldmatrix_x1_trans(x, p) : lfc::ldmatrix_x1(x, p); r[0] = x[0]; }
  if (N == 2) { uint32_t x[2]; T ? lfc::ldmatrix_x2_trans(x, p) : lfc::ldmatrix_x2(x, p); r[0] = x[0]; r[1] = x[1]; }
  if (N == 4) { uint32_t x[4]; T ? lfc::ldmatrix_x4_trans(x, p) : lfc::ldmatrix_x4(x, p); for (int i = 0; i < 4; ++i) r[i] = x[i]; }
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = r[i];
}
template <int N, bool T>
void test_ldmatrix() {
  std::vector<uint32_t> out(128, 0xdeadbeef);
  LFC_LAUNCH((ldmatrix_kernel<N, T>), dim3(1), dim3(32), 0, out.data());
  bool ok = true;
  for (unsigned l = 0; l < 32; ++l)
    for (int i = 0; i < N; ++i) {
      unsigned base = 8 * (N - 1 - i);  // first tile row of matrix i
      uint32_t lo, hi;
      if (!T) { lo = (base + l / 4) * 8 + 2 * (l % 4); hi = lo + 1; }
      else { lo = (base + 2 * (l % 4)) * 8 + l / 4; hi = lo + 8; }
      ok &= out[l * 4 + i] == (lo | (hi << 16));
    }
  check(ok, std::string("ldmatrix x") + std::to_string(N) + (T ? ".trans" : "") + " vs direct loads");
}

// ---- cp.async: copies land at wait_group, not before; wait<1> leaves the newest group pending.
__global__ void cp_async_kernel(const int* src, int* seen) {
  __shared__ __align__(16) int buf[3 * 32 * 4];
  unsigned t = threadIdx.x;
  for (int j = 0; j < 12; ++j) buf[t * 12 + j] = -1;
  lfc::cp_async<16>(buf + t * 12, src + t * 12);         // group 0
  lfc::cp_async_commit();
  lfc::cp_async<8>(buf + t * 12 + 4, src + t * 12 + 4);  // group 1
  lfc::cp_async<8>(buf + t * 12 + 6, src + t * 12 + 6);
  lfc::cp_async_commit();
  lfc::cp_async<4>(buf + t * 12 + 8, src + t * 12 + 8);  // never committed before the last wait
  seen[t * 4 + 0] = buf[t * 12 + 0];  // emulator: not yet landed (-1); GPU: unspecified
  lfc::cp_async_wait<1>();
  seen[t * 4 + 1] = buf[t * 12 + 0] == src[t * 12 + 0] && buf[t * 12 + 3] == src[t * 12 + 3];
  seen[t * 4 + 2] = buf[t * 12 + 4];  // group 1 still pending on the emulator
  lfc::cp_async_wait<0>();
  seen[t * 4 + 3] = buf[t * 12 + 7] == src[t * 12 + 7] && buf[t * 12 + 8] == -1;
}
void test_cp_async() {
  std::vector<int> src(32 * 12), seen(32 * 4, 99);
  for (size_t i = 0; i < src.size(); ++i) src[i] = int(i) + 1000;
  LFC_LAUNCH(cp_async_kernel, dim3(1), dim3(32), 0, src.data(), seen.data());
  bool ok = true;
  for (int t = 0; t < 32; ++t) ok &= seen[t * 4] == -1 && seen[t * 4 + 1] == 1 && seen[t * 4 + 2] == -1 && seen[t * 4 + 3] == 1;
  check(ok, "cp.async 4/8/16: completion at wait_group<1> (older groups) and wait_group<0>; uncommitted stays pending");
}

// ---- atomics on global and shared; named barriers; grid/block indices
__global__ void atomics_barrier_kernel(int* gcount, float* gsum, int* order) {
  __shared__ int scount;
  __shared__ int handoff[2];
  if (threadIdx.x == 0) scount = 0;
  __syncthreads();
  atomicAdd(&scount, 1);
  atomicAdd(gcount, 1);
  atomicAdd(gsum, 0.5f);
  unsigned w = lfc::warp_id();
  // warps 0,1 pair on barrier 1 and warps 2,3 on barrier 2 (64 threads each): the producer warp
  // writes before the barrier, the consumer reads after it.
  if (lfc::lane_id() == 0 && w % 2 == 0) handoff[w / 2] = int(100 + w + 10 * blockIdx.x);
  lfc::named_barrier_sync(1 + w / 2, 64);
  if (lfc::lane_id() == 0 && w % 2 == 1) order[blockIdx.x * 2 + w / 2] = handoff[w / 2];
  __syncthreads();
  if (threadIdx.x == 0) order[8 + blockIdx.x] = scount;
}
void test_atomics_barriers() {
  int gcount = 0;
  float gsum = 0;
  std::vector<int> order(12, -1);
  LFC_LAUNCH(atomics_barrier_kernel, dim3(3), dim3(128), 0, &gcount, &gsum, order.data());
  check(gcount == 384 && gsum == 192.f, "atomicAdd int/float on global memory over 3 blocks");
  check(order[8] == 128 && order[9] == 128 && order[10] == 128, "atomicAdd on shared memory per block");
  bool ok = true;
  for (int b = 0; b < 3; ++b) ok &= order[b * 2] == 100 + 10 * b && order[b * 2 + 1] == 102 + 10 * b;
  check(ok, "named_barrier_sync(id, 64) hands data between warp pairs");
}

// ---- mma.sync m16n8k32 e4m3: packed from the ISA formulas of the 8-bit types (as .s8 above); the
// scalar model decodes e4m3 by its definition (sign, 4-bit exponent with bias 7, 3-bit mantissa,
// subnormals at 2^-6, S.1111.111 NaN), independently of the emulator's decoder.
static float e4m3_model(uint8_t b) {
  int sign = b >> 7, e = (b >> 3) & 15, m = b & 7;
  double v = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1 + m / 8.0) * std::pow(2.0, e - 7);
  return float(sign ? -v : v);
}
__global__ void mma_e4m3_kernel(const uint8_t* A, const uint8_t* B, const float* C, float* D) {
  unsigned lane = lfc::lane_id(), g = lane >> 2, t = lane & 3;
  uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  for (int i = 0; i < 16; ++i) {
    unsigned row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
    unsigned col = i < 8 ? 4 * t + (i & 3) : 4 * t + 16 + (i & 3);
    a[i / 4] |= uint32_t(A[row * 32 + col]) << (8 * (i % 4));
  }
  for (int i = 0; i < 8; ++i) {
    unsigned row = i < 4 ? 4 * t + (i & 3) : 4 * t + 16 + (i & 3);
    b[i / 4] |= uint32_t(B[row * 8 + g]) << (8 * (i % 4));
  }
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(i < 2 ? g : g + 8) * 8 + 2 * t + (i & 1)];
  lfc::mma_m16n8k32_e4m3(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(i < 2 ? g : g + 8) * 8 + 2 * t + (i & 1)] = d[i];
}
void test_mma_e4m3() {
  std::uniform_int_distribution<int> U(0, 255);
  std::vector<uint8_t> A(16 * 32), B(32 * 8);
  std::vector<float> C(128), D(128, NAN);
  auto finite = [&]() { int v; do v = U(rng); while ((v & 0x7f) == 0x7f); return uint8_t(v); };
  for (auto& v : A) v = finite();
  for (auto& v : B) v = finite();
  for (auto& v : C) v = float(U(rng)) / 16.f;
  LFC_LAUNCH(mma_e4m3_kernel, dim3(1), dim3(32), 0, A.data(), B.data(), C.data(), D.data());
  bool ok = true;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double ref = C[m * 8 + n];
      for (int k = 0; k < 32; ++k) ref += double(e4m3_model(A[m * 32 + k])) * e4m3_model(B[k * 8 + n]);
      ok &= std::fabs(ref - D[m * 8 + n]) <= 1e-5 * (1 + std::fabs(ref));
    }
  check(ok, "mma_m16n8k32_e4m3 all lanes/registers vs matrix product of decoded e4m3");
}

// ---- mbarrier: a full/empty barrier pair hands two rounds of data from warp 0 to warp 1 (each
// side waits on the other's phase parity); an expect_tx phase completes only when its
// transaction bytes land too.
__global__ void mbarrier_kernel(int* out) {
  __shared__ uint64_t full, empty;
  __shared__ uint64_t txbar;
  LFC_DYNAMIC_SMEM(int, data);
  unsigned lane = lfc::lane_id(), w = lfc::warp_id();
  if (threadIdx.x == 0) { lfc::mbarrier_init(&full, 32); lfc::mbarrier_init(&empty, 32); lfc::mbarrier_init(&txbar, 1); }
  __syncthreads();
  for (int round = 0; round < 2; ++round) {
    if (w == 0) {
      if (round > 0) while (!lfc::mbarrier_try_wait_parity(&empty, unsigned(round - 1))) {}
      data[lane] = 1000 * (round + 1) + int(lane);
      lfc::mbarrier_arrive(&full);
    } else {
      while (!lfc::mbarrier_try_wait_parity(&full, unsigned(round))) {}
      out[round * 32 + lane] = data[lane];
      lfc::mbarrier_arrive(&empty);
    }
  }
  if (threadIdx.x == 0) {
    lfc::mbarrier_arrive_expect_tx(&txbar, 64);
    out[64] = lfc::mbarrier_try_wait_parity(&txbar, 0) ? 1 : 0;  // bytes pending: not complete
    lfc::mbarrier_complete_tx(&txbar, 64);
    out[65] = lfc::mbarrier_try_wait_parity(&txbar, 0) ? 1 : 0;  // now complete
  }
}
void test_mbarrier() {
  std::vector<int> out(66, -1);
  LFC_LAUNCH(mbarrier_kernel, dim3(1), dim3(64), 64 * sizeof(int), out.data());
  bool ok = out[64] == 0 && out[65] == 1;
  for (int r = 0; r < 2; ++r)
    for (int l = 0; l < 32; ++l) ok &= out[r * 32 + l] == 1000 * (r + 1) + l;
  check(ok, "mbarrier arrive / try_wait.parity over two phases, expect_tx + complete_tx");
}

// ---- planted bugs
__global__ void divergent_sync_kernel(int* x) {
  if (threadIdx.x < 16) __syncthreads();  // only half the block reaches it
  x[threadIdx.x] = 1;
}
__global__ void smem_oob_kernel(int n) {
  LFC_DYNAMIC_SMEM(float, s);
  unsigned i = threadIdx.x + unsigned(n);  // planted: offset past the arena for the last threads
  lfc_emu::smem_check(s + i, sizeof(float));
  s[i] = 1.f;
}

// Half-warps shuffling among themselves at the same time: legal CUDA, not emulated (reported).
__global__ void mixed_masks_kernel(int* x) {
  unsigned lane = lfc::lane_id();
  unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  x[lane] = __shfl_xor_sync(mask, int(lane), 1);
}

int main(int argc, char** argv) {
  std::string which = argc > 1 ? argv[1] : "all";
  if (which == "planted-deadlock") {
    std::vector<int> x(32);
    LFC_LAUNCH(divergent_sync_kernel, dim3(1), dim3(32), 0, x.data());
    std::printf("planted deadlock was not detected\n");
    return 0;
  }
  if (which == "mixed-masks") {
    std::vector<int> x(32);
    LFC_LAUNCH(mixed_masks_kernel, dim3(1), dim3(32), 0, x.data());
    std::printf("overlapping masks were not reported\n");
    return 0;
  }
  if (which == "planted-smem-oob") {
    LFC_LAUNCH(smem_oob_kernel, dim3(1), dim3(64), 64 * sizeof(float), 0);  // in bounds
    std::printf("in-bounds dynamic shared access ok\n");
    LFC_LAUNCH(smem_oob_kernel, dim3(1), dim3(64), 64 * sizeof(float), 1);  // last thread out
    std::printf("planted out-of-bounds access was not detected\n");
    return 0;
  }
  test_mma16<false>();
  test_mma16<true>();
  test_mma_s8();
  test_mma_e4m3();
  test_mbarrier();
  test_shuffles();
  test_ldmatrix<1, false>();
  test_ldmatrix<2, false>();
  test_ldmatrix<4, false>();
  test_ldmatrix<1, true>();
  test_ldmatrix<2, true>();
  test_ldmatrix<4, true>();
  test_cp_async();
  test_atomics_barriers();
  return failures ? 1 : 0;
}
