// lfc_intrinsics.cuh: the one header through which every lfc kernel reaches the hardware.
//
// nvcc (__CUDA_ARCH__ defined): each intrinsic is inline PTX or a CUDA builtin.
// g++ -DLFC_EMU: the same names follow the PTX ISA semantics on the CPU (templates/emu/lfc_emu.h),
// including the exact per-lane fragment layouts of mma.sync and ldmatrix, so one kernel source
// gives the same results on both. Kernel bodies contain no raw inline PTX.
//
// API (namespace lfc):
//   thread_linear(), lane_id(), warp_id()
//   CUDA builtins kept by name: __shfl_sync/_up/_down/_xor, __ballot_sync, __any_sync, __all_sync,
//     __syncthreads, __syncwarp, atomicAdd (float/int/unsigned; global and shared)
//   named_barrier_sync(id, count)                       bar.sync id, count
//   mma_m16n8k16_f16(d[4], a[4], b[2], c[4])            mma.sync .row.col f32.f16.f16.f32
//   mma_m16n8k16_bf16(d[4], a[4], b[2], c[4])           mma.sync .row.col f32.bf16.bf16.f32
//   mma_m16n8k32_s8(d[4], a[4], b[2], c[4])             mma.sync .row.col s32.s8.s8.s32
//   ldmatrix_x1/x2/x4(r, p) and ldmatrix_x1/x2/x4_trans   ldmatrix.sync.aligned.m8n8 .b16 (shared)
//   cp_async<4|8|16>(smem_dst, gmem_src), cp_async_commit(), cp_async_wait<N>()
//   LFC_DYNAMIC_SMEM(T, name): declares the dynamic shared memory pointer
//   LFC_LAUNCH(kernel, grid, block, smem, args...)    host-side launch on either build
//   LFC_LAUNCH_ON(kernel, grid, block, smem, stream, args...)  the same on a stream (recorded into a
//     CUDA graph while the stream captures, on both builds)
//
//   mma_m16n8k32_e4m3(d[4], a[4], b[2], c[4])           mma.sync .row.col f32.e4m3.e4m3.f32 (sm_89+;
//                                                       traps on sm_80)
//   mbarrier_init(bar, count), mbarrier_arrive(bar), mbarrier_arrive_expect_tx(bar, bytes),
//   mbarrier_try_wait_parity(bar, parity) -> bool        mbarrier.* on a uint64_t in shared memory
//                                                       (expect_tx and try_wait: sm_90; on sm_80
//                                                       try_wait is test_wait, expect_tx traps)
//   fence_proxy_async()                                 fence.proxy.async.shared::cta (sm_90)
//   setmaxnreg_inc<N>() / setmaxnreg_dec<N>()           setmaxnreg (sm_90a; no-op elsewhere)
//
// TODO (issue 6 item 1): wgmma m64nNk16 with shared-memory matrix descriptors and swizzle modes,
// TMA cp.async.bulk.tensor + tensor maps (complete_tx on mbarriers), redux.sync, stmatrix.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(LFC_EMU)
#include "lfc_emu.h"
#define LFC_DYNAMIC_SMEM(T, name) T* name = static_cast<T*>(lfc_emu::dynamic_smem())
#define LFC_DEV inline
#elif defined(__CUDACC__)
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define LFC_DYNAMIC_SMEM(T, name) extern __shared__ __align__(16) unsigned char lfc_dyn_smem_[]; T* name = reinterpret_cast<T*>(lfc_dyn_smem_)
#define LFC_DEV __device__ __forceinline__
#define LFC_LAUNCH(kernel, grid, block, smem, ...) kernel<<<(grid), (block), (smem)>>>(__VA_ARGS__)
#define LFC_LAUNCH_ON(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#else
#error "lfc_intrinsics.cuh: compile with nvcc, or with g++ -DLFC_EMU for the CPU emulator"
#endif

namespace lfc {

LFC_DEV unsigned thread_linear() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
LFC_DEV unsigned lane_id() { return thread_linear() & 31u; }
LFC_DEV unsigned warp_id() { return thread_linear() >> 5; }

#if defined(LFC_EMU)
// ---------------------------------------------------------------- CPU emulation (PTX ISA semantics)

LFC_DEV void named_barrier_sync(unsigned id, unsigned count) {
  if (id >= 16 || count % 32 != 0) lfc_emu::fail("bar.sync: id must be < 16 and count a multiple of 32");
  lfc_emu::wait_barrier(lfc_emu::block()->named[id], count, "bar.sync");
}

namespace emu_detail {
inline float lo_f16(uint32_t r) { __half_raw h; h.x = uint16_t(r); return __half2float(__half(h)); }
inline float hi_f16(uint32_t r) { __half_raw h; h.x = uint16_t(r >> 16); return __half2float(__half(h)); }
inline float lo_bf16(uint32_t r) { uint32_t u = (r & 0xffffu) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline float hi_bf16(uint32_t r) { uint32_t u = r & 0xffff0000u; float f; std::memcpy(&f, &u, 4); return f; }

// Publish (a[4], b[2], c[4]) of every lane, then lane-by-lane rebuild A (16xK), B (Kx8), C (16x8).
// Fragment layouts, PTX ISA "Matrix Fragments for mma.m16n8k16" (f16/bf16) and "mma.m16n8k32" (s8),
// with g = lane>>2 and t = lane&3:
//   A reg r: row g + 8*(r&1), columns [kp*t, kp*t+kp) + (K/2)*(r>>1), kp = elements per reg
//   B reg r: column g, rows [kp*t, kp*t+kp) + (K/2)*r
//   C/D element i: row g + 8*(i>>1), column 2t + (i&1)
template <int K, int KP, class Acc, class Elem>
void mma_generic(Acc d[4], const uint32_t a[4], const uint32_t b[2], const Acc c[4], Elem elem) {
  lfc_emu::Warp& w = lfc_emu::my_warp();
  unsigned lane = lfc_emu::my_lane();
  for (int r = 0; r < 4; ++r) w.words[lane][r] = a[r];
  for (int r = 0; r < 2; ++r) w.words[lane][4 + r] = b[r];
  for (int i = 0; i < 4; ++i) std::memcpy(&w.words[lane][6 + i], &c[i], 4);
  lfc_emu::warp_sync(0xffffffffu, "mma.sync");
  // The first lane to resume computes the whole 16x8 tile for the warp (once per rendezvous).
  if (w.computed_gen != w.bar.gen) {
    w.computed_gen = w.bar.gen;
    Acc A[16][K], B[K][8];
    for (unsigned l = 0; l < 32; ++l) {
      unsigned g = l >> 2, t = l & 3;
      for (int r = 0; r < 4; ++r)
        for (int e = 0; e < KP; ++e) A[g + 8 * (r & 1)][KP * t + e + (K / 2) * (r >> 1)] = elem(w.words[l][r], e);
      for (int r = 0; r < 2; ++r)
        for (int e = 0; e < KP; ++e) B[KP * t + e + (K / 2) * r][g] = elem(w.words[l][4 + r], e);
    }
    for (unsigned l = 0; l < 32; ++l) {
      unsigned g = l >> 2, t = l & 3;
      for (int i = 0; i < 4; ++i) {
        unsigned row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
        Acc s = 0;  // products summed in order, then added to C (hardware order is unspecified)
        for (int k = 0; k < K; ++k) s += A[row][k] * B[k][col];
        Acc cin;
        std::memcpy(&cin, &w.words[l][6 + i], 4);
        Acc o = s + cin;
        std::memcpy(&w.result[l][i], &o, 4);
      }
    }
  }
  Acc out[4];
  for (int i = 0; i < 4; ++i) std::memcpy(&out[i], &w.result[lane][i], 4);
  lfc_emu::warp_sync(0xffffffffu, "mma.sync");
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}
}  // namespace emu_detail

LFC_DEV void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  emu_detail::mma_generic<16, 2, float>(d, a, b, c, [](uint32_t r, int e) { return e ? emu_detail::hi_f16(r) : emu_detail::lo_f16(r); });
}
LFC_DEV void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  emu_detail::mma_generic<16, 2, float>(d, a, b, c, [](uint32_t r, int e) { return e ? emu_detail::hi_bf16(r) : emu_detail::lo_bf16(r); });
}
LFC_DEV void mma_m16n8k32_s8(int32_t d[4], const uint32_t a[4], const uint32_t b[2], const int32_t c[4]) {
  emu_detail::mma_generic<32, 4, int32_t>(d, a, b, c, [](uint32_t r, int e) { return int8_t(r >> (8 * e)); });
}

// ldmatrix .m8n8 .b16: lanes 8i..8i+7 give the 8 row addresses (16 bytes each) of matrix i.
// Without .trans lane l gets row l/4, elements 2(l%4), 2(l%4)+1; with .trans the transposed.
namespace emu_detail {
template <int N, bool Trans>
void ldmatrix(uint32_t* r, const void* p, const std::source_location& loc) {
  lfc_emu::Warp& w = lfc_emu::my_warp();
  unsigned lane = lfc_emu::my_lane();
  w.ptr[lane] = p;
  if (lane < 8 * N) lfc_emu::smem_read(p, 16, loc);  // lanes 8i..8i+7 give matrix i's 16-byte rows
  lfc_emu::warp_sync(0xffffffffu, "ldmatrix");
  for (int i = 0; i < N; ++i) {
    if (!Trans) {
      const uint16_t* row = static_cast<const uint16_t*>(w.ptr[8 * i + lane / 4]);
      r[i] = uint32_t(row[2 * (lane % 4)]) | (uint32_t(row[2 * (lane % 4) + 1]) << 16);
    } else {
      const uint16_t* r0 = static_cast<const uint16_t*>(w.ptr[8 * i + 2 * (lane % 4)]);
      const uint16_t* r1 = static_cast<const uint16_t*>(w.ptr[8 * i + 2 * (lane % 4) + 1]);
      r[i] = uint32_t(r0[lane / 4]) | (uint32_t(r1[lane / 4]) << 16);
    }
  }
  lfc_emu::warp_sync(0xffffffffu, "ldmatrix");
}
}  // namespace emu_detail
#define LFC_EMU_LOC const std::source_location& loc = std::source_location::current()
LFC_DEV void ldmatrix_x1(uint32_t (&r)[1], const void* p, LFC_EMU_LOC) { emu_detail::ldmatrix<1, false>(r, p, loc); }
LFC_DEV void ldmatrix_x2(uint32_t (&r)[2], const void* p, LFC_EMU_LOC) { emu_detail::ldmatrix<2, false>(r, p, loc); }
LFC_DEV void ldmatrix_x4(uint32_t (&r)[4], const void* p, LFC_EMU_LOC) { emu_detail::ldmatrix<4, false>(r, p, loc); }
LFC_DEV void ldmatrix_x1_trans(uint32_t (&r)[1], const void* p, LFC_EMU_LOC) { emu_detail::ldmatrix<1, true>(r, p, loc); }
LFC_DEV void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p, LFC_EMU_LOC) { emu_detail::ldmatrix<2, true>(r, p, loc); }
LFC_DEV void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p, LFC_EMU_LOC) { emu_detail::ldmatrix<4, true>(r, p, loc); }
#undef LFC_EMU_LOC

// cp.async: queued per thread; committed groups complete at cp_async_wait<N> (all but the newest N
// committed groups), uncommitted copies only at kernel exit. Earlier completion, which hardware may
// show, is not modelled: a kernel reading before its wait sees stale data here.
template <int Bytes>
LFC_DEV void cp_async(void* smem_dst, const void* gmem_src) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  if (reinterpret_cast<uintptr_t>(smem_dst) % Bytes || reinterpret_cast<uintptr_t>(gmem_src) % Bytes)
    lfc_emu::fail("cp.async: addresses must be aligned to the copy size");
  lfc_emu::self().copies.push_back({smem_dst, gmem_src, Bytes, UINT64_MAX});
}
LFC_DEV void cp_async_commit() {
  lfc_emu::Fiber& f = lfc_emu::self();
  for (auto& c : f.copies)
    if (c.group == UINT64_MAX) c.group = f.committed;
  ++f.committed;
}
template <int N>
LFC_DEV void cp_async_wait() {
  lfc_emu::Fiber& f = lfc_emu::self();
  lfc_emu::complete_copies(f, f.committed >= uint64_t(N) ? f.committed - N : 0);
}

// fp8 e4m3 (OCP FP8 E4M3, "fn": no infinities; S.1111.111 is NaN): bias 7, subnormals at 2^-6.
namespace emu_detail {
inline float e4m3(uint32_t byte) {
  unsigned b = byte & 0xff, sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
  float v;
  if (exp == 0xf && man == 7) v = NAN;
  else if (exp == 0) v = std::ldexp(float(man) / 8.f, -6);
  else v = std::ldexp(1.f + float(man) / 8.f, int(exp) - 7);
  return sign ? -v : v;
}
}  // namespace emu_detail
LFC_DEV void mma_m16n8k32_e4m3(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  emu_detail::mma_generic<32, 4, float>(d, a, b, c, [](uint32_t r, int e) { return emu_detail::e4m3(r >> (8 * e)); });
}

// mbarrier: the 8-byte object lives in shared memory; its state is kept beside it by the
// emulator (keyed by address, per block). A phase completes when the pending arrivals reach 0
// and the expected transaction bytes are 0; completing it ends the race checker's epoch.
LFC_DEV void mbarrier_init(uint64_t* bar, unsigned count) {
  auto& st = lfc_emu::block()->mbarriers[bar];
  st = {count, count, 0, 0};
  *bar = 0;
}
namespace emu_detail {
inline lfc_emu::MBarrier& mbar(uint64_t* bar) {
  auto& m = lfc_emu::block()->mbarriers;
  auto it = m.find(bar);
  if (it == m.end()) lfc_emu::fail("mbarrier used before mbarrier_init");
  return it->second;
}
inline void mbar_maybe_complete(lfc_emu::MBarrier& b) {
  if (b.pending == 0 && b.tx == 0) {
    b.phase++;
    b.pending = b.expected;
    lfc_emu::block()->epoch++;
    lfc_emu::block()->progressed = true;
  }
}
}  // namespace emu_detail
LFC_DEV void mbarrier_arrive(uint64_t* bar) {
  auto& b = emu_detail::mbar(bar);
  if (b.pending == 0) lfc_emu::fail("mbarrier_arrive: more arrivals than the barrier's count in this phase");
  b.pending--;
  emu_detail::mbar_maybe_complete(b);
}
LFC_DEV void mbarrier_arrive_expect_tx(uint64_t* bar, unsigned bytes) {
  auto& b = emu_detail::mbar(bar);
  b.tx += bytes;
  mbarrier_arrive(bar);
}
// Transaction bytes landing (what TMA's complete_tx does); for emulated producers.
LFC_DEV void mbarrier_complete_tx(uint64_t* bar, unsigned bytes) {
  auto& b = emu_detail::mbar(bar);
  b.tx -= int64_t(bytes);
  emu_detail::mbar_maybe_complete(b);
}
// True once the phase with parity `parity` has completed; false yields the fiber (callers spin).
LFC_DEV bool mbarrier_try_wait_parity(uint64_t* bar, unsigned parity) {
  auto& b = emu_detail::mbar(bar);
  if ((b.phase & 1u) != (parity & 1u)) return true;
  lfc_emu::self().waiting_on = "mbarrier_try_wait_parity";
  lfc_emu::yield();
  lfc_emu::self().waiting_on = nullptr;
  return (emu_detail::mbar(bar).phase & 1u) != (parity & 1u);
}
LFC_DEV void fence_proxy_async() {}
template <int N> LFC_DEV void setmaxnreg_inc() { static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg: 24..256, multiple of 8"); }
template <int N> LFC_DEV void setmaxnreg_dec() { static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg: 24..256, multiple of 8"); }

#else
// ---------------------------------------------------------------- GPU (inline PTX)

LFC_DEV void named_barrier_sync(unsigned id, unsigned count) { asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(count) : "memory"); }

LFC_DEV void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
LFC_DEV void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
LFC_DEV void mma_m16n8k32_s8(int32_t d[4], const uint32_t a[4], const uint32_t b[2], const int32_t c[4]) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
}

#define LFC_LDMATRIX(NAME, N, SUFFIX, OUTS, ...)                                              \
  LFC_DEV void NAME(uint32_t (&r)[N], const void* p) {                                        \
    unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));                          \
    asm volatile("ldmatrix.sync.aligned.m8n8" SUFFIX ".shared.b16 " OUTS ", [%" #N "];"       \
                 : __VA_ARGS__ : "r"(s));                                                      \
  }
LFC_LDMATRIX(ldmatrix_x1, 1, ".x1", "{%0}", "=r"(r[0]))
LFC_LDMATRIX(ldmatrix_x2, 2, ".x2", "{%0,%1}", "=r"(r[0]), "=r"(r[1]))
LFC_LDMATRIX(ldmatrix_x4, 4, ".x4", "{%0,%1,%2,%3}", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]))
LFC_LDMATRIX(ldmatrix_x1_trans, 1, ".x1.trans", "{%0}", "=r"(r[0]))
LFC_LDMATRIX(ldmatrix_x2_trans, 2, ".x2.trans", "{%0,%1}", "=r"(r[0]), "=r"(r[1]))
LFC_LDMATRIX(ldmatrix_x4_trans, 4, ".x4.trans", "{%0,%1,%2,%3}", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]))
#undef LFC_LDMATRIX

template <int Bytes>
LFC_DEV void cp_async(void* smem_dst, const void* gmem_src) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(s), "l"(gmem_src), "n"(Bytes) : "memory");
}
LFC_DEV void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
LFC_DEV void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

LFC_DEV void mma_m16n8k32_e4m3(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if __CUDA_ARCH__ >= 890
  asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  (void)d; (void)a; (void)b; (void)c;
  __trap();  // fp8 tensor cores need sm_89+
#endif
}

LFC_DEV void mbarrier_init(uint64_t* bar, unsigned count) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(bar));
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(s), "r"(count) : "memory");
}
LFC_DEV void mbarrier_arrive(uint64_t* bar) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(bar));
  asm volatile("{ .reg .b64 st; mbarrier.arrive.shared::cta.b64 st, [%0]; }" ::"r"(s) : "memory");
}
LFC_DEV void mbarrier_arrive_expect_tx(uint64_t* bar, unsigned bytes) {
#if __CUDA_ARCH__ >= 900
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(bar));
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(s), "r"(bytes) : "memory");
#else
  (void)bar; (void)bytes;
  __trap();  // transaction counts need sm_90
#endif
}
LFC_DEV bool mbarrier_try_wait_parity(uint64_t* bar, unsigned parity) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(bar)), ok;
#if __CUDA_ARCH__ >= 900
  asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
               : "=r"(ok) : "r"(s), "r"(parity) : "memory");
#else
  asm volatile("{ .reg .pred p; mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
               : "=r"(ok) : "r"(s), "r"(parity) : "memory");
#endif
  return ok != 0;
}
LFC_DEV void fence_proxy_async() {
#if __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}
template <int N> LFC_DEV void setmaxnreg_inc() {
  static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg: 24..256, multiple of 8");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N));
#endif
}
template <int N> LFC_DEV void setmaxnreg_dec() {
  static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg: 24..256, multiple of 8");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N));
#endif
}
#endif

}  // namespace lfc
