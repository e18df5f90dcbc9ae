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

// ---- sm_90a: wgmma, TMA, bulk copies. The tests lay out shared memory by their own reading of
// the ISA's canonical K-major layouts (PTX ISA "Shared Memory Matrix Layout"), not the emulator's:
// a 16-bit element (i, k) of an operand with i the M or N index, swizzle span S bytes:
//   swizzled: atom i/8 (8 rows of S bytes, 8*S bytes apart = SBO), row i%8, 16-byte chunk k/8 of
//             the row stored at chunk (k/8) XOR ((i%8) / (128/S)), byte 2*(k%8) within the chunk
//             (the pattern tables of the TMA swizzle modes, for tiles aligned to 8*S bytes)
//   none:     8x8 core matrices of 128 contiguous bytes (row i%8 at 16*(i%8)), core matrix
//             (i/8, k/8) at (i/8)*SBO + (k/8)*LBO
static size_t swz_byte(unsigned S, unsigned i, unsigned k) {
  return size_t(i / 8) * 8 * S + (i % 8) * S + (((k / 8) ^ ((i % 8) / (128 / S))) * 16) + (k % 8) * 2;
}
static uint16_t f2bits(float v, bool bf16) {
  if (bf16) { __nv_bfloat16 h = __float2bfloat16(v); return __nv_bfloat16_raw(h).x; }
  __half h = __float2half(v); return __half_raw(h).x;
}
static float round16(float v, bool bf16) { return bf16 ? __bfloat162float(__float2bfloat16(v)) : __half2float(__float2half(v)); }
// D fragment of m64nNk16 .f32 (ISA "Register Fragments", wgmma D): thread t of the warpgroup,
// value i: row 16(t/32) + (t%32)/4 + 8((i/2)%2), column 8(i/4) + 2(t%4) + i%2.
static unsigned dfrag_row(unsigned t, unsigned i) { return 16 * (t / 32) + (t % 32) / 4 + 8 * ((i / 2) % 2); }
static unsigned dfrag_col(unsigned t, unsigned i) { return 8 * (i / 4) + 2 * (t % 4) + i % 2; }

struct WgmmaCfg {
  unsigned S;               // swizzle span (0: none)
  unsigned ksteps;          // 16-wide k-steps
  unsigned a_off, b_off;    // operand offsets in the image
  unsigned a_lbo, a_sbo, b_lbo, b_sbo;
  unsigned a_step, b_step;  // start-address advance per k-step (bytes)
};
template <int N, bool BF16>
__global__ void wgmma_kernel(const unsigned char* img, unsigned img_bytes, WgmmaCfg cfg, const float* C, int use_c, float* D) {
  LFC_DYNAMIC_SMEM(unsigned char, smem);
  unsigned t = threadIdx.x;
  for (unsigned o = t; o < img_bytes; o += 128) smem[o] = img[o];
  __syncthreads();
  lfc::Swizzle sw = cfg.S == 128 ? lfc::Swizzle::B128 : cfg.S == 64 ? lfc::Swizzle::B64 : cfg.S == 32 ? lfc::Swizzle::B32 : lfc::Swizzle::None;
  float d[N / 2];
  for (unsigned i = 0; i < N / 2; ++i) d[i] = use_c ? C[dfrag_row(t, i) * N + dfrag_col(t, i)] : NAN;
  lfc::wgmma_fence();
  for (unsigned s = 0; s < cfg.ksteps; ++s) {
    uint64_t da = lfc::make_smem_desc(smem + cfg.a_off + s * cfg.a_step, cfg.a_lbo, cfg.a_sbo, sw);
    uint64_t db = lfc::make_smem_desc(smem + cfg.b_off + s * cfg.b_step, cfg.b_lbo, cfg.b_sbo, sw);
    if (BF16) lfc::wgmma_m64nNk16_bf16<N>(d, da, db, use_c || s > 0);
    else lfc::wgmma_m64nNk16_f16<N>(d, da, db, use_c || s > 0);
  }
  lfc::wgmma_commit_group();
  lfc::wgmma_wait_group<0>();
  for (unsigned i = 0; i < N / 2; ++i) D[dfrag_row(t, i) * N + dfrag_col(t, i)] = d[i];
}
template <int N, bool BF16>
void test_wgmma(unsigned S) {
  const unsigned K = S ? S / 2 : 32;  // swizzled: one S-byte row of k; none: two k-steps
  WgmmaCfg cfg{};
  cfg.S = S;
  cfg.ksteps = K / 16;
  std::vector<unsigned char> img;
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  std::vector<float> A(64 * K), B(K * N), C(64 * N);  // A[m][k], B[n][k] (K-major)
  for (auto& v : A) v = round16(U(rng), BF16);
  for (auto& v : B) v = round16(U(rng), BF16);
  for (auto& v : C) v = U(rng);
  auto put = [&](size_t byte, float v) { uint16_t b = f2bits(v, BF16); std::memcpy(&img[byte], &b, 2); };
  if (S) {
    cfg.a_off = 0;
    cfg.b_off = 64 * S;  // A is 8 atoms of 8*S bytes: B starts on a pattern repeat
    cfg.a_lbo = cfg.b_lbo = 16;  // unused for swizzled K-major
    cfg.a_sbo = cfg.b_sbo = 8 * S;
    cfg.a_step = cfg.b_step = 32;
    img.assign(64 * S + N * S, 0);
    for (unsigned m = 0; m < 64; ++m) for (unsigned k = 0; k < K; ++k) put(cfg.a_off + swz_byte(S, m, k), A[m * K + k]);
    for (unsigned n = 0; n < unsigned(N); ++n) for (unsigned k = 0; k < K; ++k) put(cfg.b_off + swz_byte(S, n, k), B[n * K + k]);
  } else {
    // A: the K/8 core matrices of an 8-row group adjacent (LBO 128, SBO 512); B: K-planes of
    // N/8 core matrices (LBO N/8*128, SBO 128)
    cfg.a_off = 0; cfg.a_lbo = 128; cfg.a_sbo = 128 * (K / 8); cfg.a_step = 2 * cfg.a_lbo;
    cfg.b_off = 64 * K * 2; cfg.b_lbo = (N / 8) * 128; cfg.b_sbo = 128; cfg.b_step = 2 * cfg.b_lbo;
    img.assign(64 * K * 2 + size_t(N) * K * 2, 0);
    for (unsigned m = 0; m < 64; ++m)
      for (unsigned k = 0; k < K; ++k) put(cfg.a_off + (m / 8) * cfg.a_sbo + (k / 8) * cfg.a_lbo + (m % 8) * 16 + (k % 8) * 2, A[m * K + k]);
    for (unsigned n = 0; n < unsigned(N); ++n)
      for (unsigned k = 0; k < K; ++k) put(cfg.b_off + (n / 8) * cfg.b_sbo + (k / 8) * cfg.b_lbo + (n % 8) * 16 + (k % 8) * 2, B[n * K + k]);
  }
  bool ok = true;
  for (int use_c = 0; use_c < 2; ++use_c) {
    std::vector<float> D(64 * N, NAN);
    LFC_LAUNCH((wgmma_kernel<N, BF16>), dim3(1), dim3(128), img.size(), img.data(), unsigned(img.size()), cfg, C.data(), use_c, D.data());
    for (unsigned m = 0; m < 64; ++m)
      for (unsigned n = 0; n < unsigned(N); ++n) {
        double ref = use_c ? C[m * N + n] : 0, mag = 1;
        for (unsigned k = 0; k < K; ++k) { ref += double(A[m * K + k]) * B[n * K + k]; mag += std::fabs(A[m * K + k] * B[n * K + k]); }
        ok &= std::fabs(ref - D[m * N + n]) <= 1e-5 * mag;  // NaN (unwritten / scale-d ignored) fails
      }
  }
  std::string sw = S ? "swizzle " + std::to_string(S) + "B" : "no swizzle";
  check(ok, "wgmma m64n" + std::to_string(N) + "k16 " + (BF16 ? "bf16" : "f16") + " descriptors, " + sw + ": A*B (scale-d 0) and C+A*B vs matrix product");
}

// A from registers: packed by the ISA's A fragment of m64nNk16 (per warp w, rows 16w..16w+15,
// as mma.m16n8k16: a_i row g + 8((i/2)%2), column 2t + (i%2) + 8(i/4), g = lane/4, t = lane%4);
// B from a 128B-swizzled descriptor.
template <bool BF16>
__global__ void wgmma_rs_kernel(const float* A, const unsigned char* img, unsigned img_bytes, float* D) {
  LFC_DYNAMIC_SMEM(unsigned char, smem);
  unsigned t = threadIdx.x, w = t / 32, g = (t % 32) / 4, q = t % 4;
  for (unsigned o = t; o < img_bytes; o += 128) smem[o] = img[o];
  __syncthreads();
  uint32_t a[4] = {0, 0, 0, 0};
  for (unsigned i = 0; i < 8; ++i) {
    unsigned row = 16 * w + g + 8 * ((i / 2) % 2), col = 2 * q + (i % 2) + 8 * (i / 4);
    a[i / 2] |= uint32_t(f2bits(A[row * 16 + col], BF16)) << (16 * (i % 2));
  }
  float d[32];
  for (auto& v : d) v = 1.f;
  uint64_t db = lfc::make_smem_desc(smem, 16, 1024, lfc::Swizzle::B128);
  lfc::wgmma_fence();
  if (BF16) lfc::wgmma_m64nNk16_bf16_rs<64>(d, a, db, true);
  else lfc::wgmma_m64nNk16_f16_rs<64>(d, a, db, true);
  lfc::wgmma_commit_group();
  lfc::wgmma_wait_group<0>();
  for (unsigned i = 0; i < 32; ++i) D[dfrag_row(t, i) * 64 + dfrag_col(t, i)] = d[i];
}
template <bool BF16>
void test_wgmma_rs() {
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  std::vector<float> A(64 * 16), B(64 * 16), D(64 * 64, NAN);
  for (auto& v : A) v = round16(U(rng), BF16);
  for (auto& v : B) v = round16(U(rng), BF16);
  std::vector<unsigned char> img(64 * 128, 0);
  for (unsigned n = 0; n < 64; ++n)
    for (unsigned k = 0; k < 16; ++k) { uint16_t b = f2bits(B[n * 16 + k], BF16); std::memcpy(&img[swz_byte(128, n, k)], &b, 2); }
  LFC_LAUNCH(wgmma_rs_kernel<BF16>, dim3(1), dim3(128), img.size(), A.data(), img.data(), unsigned(img.size()), D.data());
  bool ok = true;
  for (unsigned m = 0; m < 64; ++m)
    for (unsigned n = 0; n < 64; ++n) {
      double ref = 1, mag = 1;
      for (unsigned k = 0; k < 16; ++k) { ref += double(A[m * 16 + k]) * B[n * 16 + k]; mag += std::fabs(A[m * 16 + k] * B[n * 16 + k]); }
      ok &= std::fabs(ref - D[m * 64 + n]) <= 1e-5 * mag;
    }
  check(ok, std::string("wgmma m64n64k16 ") + (BF16 ? "bf16" : "f16") + " A from registers, B 128B swizzle: 1+A*B vs matrix product");
}

// make_smem_desc: the fields at the documented bit positions.
__global__ void desc_kernel(uint64_t* out) {
  LFC_DYNAMIC_SMEM(unsigned char, smem);
  out[0] = lfc::make_smem_desc(smem + 0x1230, 256, 1024, lfc::Swizzle::B64);
  out[1] = lfc::make_smem_desc(smem + 0x2000, 128, 512, lfc::Swizzle::None, 5);
  out[2] = lfc::make_smem_desc(smem + 0x400, 16, 1024, lfc::Swizzle::B128);
  out[3] = lfc::make_smem_desc(smem + 0x100, 16, 256, lfc::Swizzle::B32);
}
void test_desc() {
  std::vector<uint64_t> out(4, 0);
  LFC_LAUNCH(desc_kernel, dim3(1), dim3(32), 0x3000, out.data());
  auto field = [](uint64_t d, int lo, int bits) { return (d >> lo) & ((uint64_t(1) << bits) - 1); };
  bool ok = field(out[0], 0, 14) == 0x123 && field(out[0], 16, 14) == 16 && field(out[0], 32, 14) == 64 && field(out[0], 62, 2) == 2 &&
            field(out[0], 49, 3) == 0;
  ok &= field(out[1], 0, 14) == 0x200 && field(out[1], 16, 14) == 8 && field(out[1], 32, 14) == 32 && field(out[1], 62, 2) == 0 &&
        field(out[1], 49, 3) == 5;
  ok &= field(out[2], 62, 2) == 1 && field(out[2], 0, 14) == 0x40 && field(out[3], 62, 2) == 3;
  // nothing outside the documented fields
  for (uint64_t d : out) ok &= (d & ~((0x3FFFull) | (0x3FFFull << 16) | (0x3FFFull << 32) | (7ull << 49) | (3ull << 62))) == 0;
  check(ok, "make_smem_desc: start>>4 bits 0-13, LBO>>4 16-29, SBO>>4 32-45, base offset 49-51, swizzle 62-63 (128B=1 64B=2 32B=3)");
}

// TMA 2D loads of a 64x16 box (bf16 bits, 128-byte rows) from a 40x70 tensor with a padded
// 144-byte row pitch, 128B swizzle: box (x 32, y 30) runs off the right and bottom edges, box
// (x -8, y -3) off the left and top; plus a 256-byte 1D bulk copy; all on one mbarrier that
// expects 16 bytes more than they bring, so its phase completes only at the extra complete_tx.
static uint16_t tma_val(unsigned r, unsigned c) { return uint16_t(1 + r * 97 + c); }
__global__ void tma_kernel(const lfc::TensorMap* map, const unsigned char* bulk_src, int* flags, uint16_t* out) {
  LFC_DYNAMIC_SMEM(uint16_t, smem);  // box 0 at byte 0, box 1 at 2048, bulk at 4096
  __shared__ uint64_t bar;
  unsigned t = threadIdx.x;
  if (t == 0) lfc::mbarrier_init(&bar, 1);
  __syncthreads();
  if (t == 0) {
    lfc::mbarrier_arrive_expect_tx(&bar, 2 * 2048 + 256 + 16);
    lfc::tma_load_2d(smem, map, 32, 30, &bar);
    lfc::tma_load_2d(smem + 1024, map, -8, -3, &bar);
    lfc::bulk_load(smem + 2048, bulk_src, 256, &bar);
    flags[0] = smem[0] == 0xcdcd;                            // not landed before a wait (emulator)
    flags[1] = lfc::mbarrier_try_wait_parity(&bar, 0);       // landed, but 16 bytes still expected
    flags[2] = smem[0] == tma_val(30, 32);                   // (row 0, chunk 0) is not moved by the swizzle
    lfc::mbarrier_complete_tx(&bar, 16);
  }
  while (!lfc::mbarrier_try_wait_parity(&bar, 0)) {}
  for (unsigned i = t; i < 2048 + 128; i += 32) out[i] = smem[i];
}
void test_tma() {
  const unsigned rows = 40, cols = 70, pitch = 72;
  std::vector<uint16_t> G(rows * pitch, 0xffff), out(2048 + 128, 0xdead);
  for (unsigned r = 0; r < rows; ++r) for (unsigned c = 0; c < cols; ++c) G[r * pitch + c] = tma_val(r, c);
  std::vector<unsigned char> bulk(256);
  for (unsigned i = 0; i < 256; ++i) bulk[i] = (unsigned char)(i * 7 + 3);
  lfc::TensorMap map;
  bool made = lfc::make_tensor_map_2d(&map, G.data(), 2, cols, rows, pitch * 2, 64, 16, lfc::Swizzle::B128);
  lfc::TensorMap bad;
  bool rejects = !lfc::make_tensor_map_2d(&bad, G.data(), 2, cols, rows, 140, 64, 16, lfc::Swizzle::B128) &&  // pitch % 16
                 !lfc::make_tensor_map_2d(&bad, G.data(), 2, cols, rows, pitch * 2, 128, 16, lfc::Swizzle::B128);  // 256 B > span
  std::vector<int> flags(3, -1);
  LFC_LAUNCH(tma_kernel, dim3(1), dim3(32), 4096 + 256, &map, bulk.data(), flags.data(), out.data());
  bool ok = made && rejects && flags[0] == 1 && flags[1] == 0 && flags[2] == 1;
  const int x0[2] = {32, -8}, y0[2] = {30, -3};
  for (int b = 0; b < 2; ++b)
    for (unsigned r = 0; r < 16; ++r)
      for (unsigned c = 0; c < 64; ++c) {
        int gy = y0[b] + int(r), gx = x0[b] + int(c);
        uint16_t want = gy >= 0 && gx >= 0 && gy < int(rows) && gx < int(cols) ? tma_val(unsigned(gy), unsigned(gx)) : 0;
        size_t byte = size_t(b) * 2048 + swz_byte(128, r, c);  // 128-byte rows: element (r, c) as (i, k)
        ok &= out[byte / 2] == want;
      }
  for (unsigned i = 0; i < 256; ++i) ok &= reinterpret_cast<const unsigned char*>(out.data())[4096 + i] == bulk[i];
  check(ok, "TMA 2D box with out-of-bounds edges (zero fill), 128B swizzle, element by element; bulk copy; mbarrier completes only after the bytes land");
}

// TMA -> wgmma: A (128x64) and B^T (64x64) bf16 in global memory, loaded by two 128B-swizzled
// TMA boxes onto one mbarrier; warpgroup g multiplies rows 64g..64g+63 over 4 k-steps.
__global__ void tma_wgmma_kernel(const __grid_constant__ lfc::TensorMap mapA, const __grid_constant__ lfc::TensorMap mapB, float* D) {
  LFC_DYNAMIC_SMEM(__nv_bfloat16, smem);  // A box at 0 (16 KB), B box at 16 KB
  __shared__ uint64_t bar;
  unsigned t = threadIdx.x, g = t / 128;
  if (t == 0) lfc::mbarrier_init(&bar, 1);
  __syncthreads();
  if (t == 0) {
    lfc::mbarrier_arrive_expect_tx(&bar, 128 * 128 + 64 * 128);
    lfc::tma_load_2d(smem, &mapA, 0, 0, &bar);
    lfc::tma_load_2d(smem + 128 * 64, &mapB, 0, 0, &bar);
  }
  while (!lfc::mbarrier_try_wait_parity(&bar, 0)) {}
  float d[32];
  uint64_t da = lfc::make_smem_desc(smem + g * 64 * 64, 16, 1024, lfc::Swizzle::B128);
  uint64_t db = lfc::make_smem_desc(smem + 128 * 64, 16, 1024, lfc::Swizzle::B128);
  lfc::wgmma_fence();
  for (unsigned s = 0; s < 4; ++s) lfc::wgmma_m64nNk16_bf16<64>(d, da + 2 * s, db + 2 * s, s > 0);  // +32 bytes per k-step
  lfc::wgmma_commit_group();
  lfc::wgmma_wait_group<0>();
  for (unsigned i = 0; i < 32; ++i) D[(64 * g + dfrag_row(t % 128, i)) * 64 + dfrag_col(t % 128, i)] = d[i];
}
void test_tma_wgmma() {
  std::uniform_real_distribution<float> U(-2.f, 2.f);
  std::vector<__nv_bfloat16> A(128 * 64), B(64 * 64);
  for (auto& v : A) v = __float2bfloat16(U(rng));
  for (auto& v : B) v = __float2bfloat16(U(rng));
  lfc::TensorMap mA, mB;
  bool made = lfc::make_tensor_map_2d(&mA, A.data(), 2, 64, 128, 128, 64, 128, lfc::Swizzle::B128) &&
              lfc::make_tensor_map_2d(&mB, B.data(), 2, 64, 64, 128, 64, 64, lfc::Swizzle::B128);
  std::vector<float> D(128 * 64, NAN);
  LFC_LAUNCH(tma_wgmma_kernel, dim3(1), dim3(256), 128 * 128 + 64 * 128, mA, mB, D.data());
  bool ok = made;
  for (unsigned m = 0; m < 128; ++m)
    for (unsigned n = 0; n < 64; ++n) {
      double ref = 0, mag = 1;
      for (unsigned k = 0; k < 64; ++k) {
        double p = double(__bfloat162float(A[m * 64 + k])) * __bfloat162float(B[n * 64 + k]);
        ref += p;
        mag += std::fabs(p);
      }
      ok &= std::fabs(ref - D[m * 64 + n]) <= 1e-5 * mag;
    }
  check(ok, "TMA 128B-swizzled tiles -> wgmma m64n64k16 bf16 (2 warpgroups, 4 k-steps) vs matrix product");
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
  test_desc();
  for (unsigned S : {0u, 32u, 64u, 128u}) {
    test_wgmma<64, true>(S);
    test_wgmma<64, false>(S);
    test_wgmma<128, true>(S);
    test_wgmma<128, false>(S);
  }
  test_wgmma<256, true>(128);
  test_wgmma<8, false>(32);
  test_wgmma_rs<true>();
  test_wgmma_rs<false>();
  test_tma();
  test_tma_wgmma();
  return failures ? 1 : 0;
}
