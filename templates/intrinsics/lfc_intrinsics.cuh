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
//   sm_90a section (see its header comment for the canonical shared layouts):
//   enum class Swizzle { None, B32, B64, B128 }
//   make_smem_desc(smem, lbo_bytes, sbo_bytes, swizzle, base_offset = 0) -> uint64_t
//                                                       wgmma matrix descriptor
//   smem_addr_u32(p)                                    shared address (emulator: offset into the
//                                                       dynamic shared arena; static __shared__ fails)
//   wgmma_m64nNk16_bf16<N>(float (&d)[N/2], desc_a, desc_b, scale_d)   wgmma.mma_async m64nNk16
//   wgmma_m64nNk16_f16<N>(...)                          .f32.{bf16,f16}, A and B from descriptors
//   wgmma_m64nNk16_bf16_rs<N>(d, const uint32_t (&a)[4], desc_b, scale_d), ..._f16_rs: A from
//                                                       registers; N in {8,16,32,64,128,256}
//   wgmma_fence(), wgmma_commit_group(), wgmma_wait_group<N>()   (wgmma: sm_90a; traps elsewhere)
//   TensorMap; host make_tensor_map_2d(map, global, elem_bytes, cols, rows, row_stride_bytes,
//     box_cols, box_rows, swizzle) -> bool        cuTensorMapEncodeTiled on the GPU build
//   tma_load_2d(smem_dst, map, x, y, bar)               cp.async.bulk.tensor.2d ... complete_tx
//   bulk_load(smem_dst, gmem_src, bytes, bar)           cp.async.bulk ... complete_tx (sm_90)
//
// TODO (issue 6 item 1): redux.sync, stmatrix; wgmma with MN-major (transposed) operands, other
// types (tf32, fp8, s8), TMA stores / multicast.
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
namespace emu_detail {
// Land the bulk copies (tma_load_2d, bulk_load; see below) pending on `bar`: their bytes reach
// shared memory, then complete_tx on the barrier. A no-op for kernels without bulk copies.
inline void land_bulk(uint64_t* bar) {
  auto& q = lfc_emu::block()->bulk_pending;
  for (size_t i = 0; i < q.size();) {
    if (q[i].first != bar) { ++i; continue; }
    std::function<void()> land = std::move(q[i].second);
    q.erase(q.begin() + long(i));
    land();
    lfc_emu::block()->progressed = true;  // bytes landing is progress (deadlock detector)
  }
}
}  // namespace emu_detail
// True once the phase with parity `parity` has completed; false yields the fiber (callers spin).
LFC_DEV bool mbarrier_try_wait_parity(uint64_t* bar, unsigned parity) {
  emu_detail::land_bulk(bar);
  auto& b = emu_detail::mbar(bar);
  if ((b.phase & 1u) != (parity & 1u)) return true;
  lfc_emu::self().waiting_on = "mbarrier_try_wait_parity";
  lfc_emu::yield();
  lfc_emu::self().waiting_on = nullptr;
  emu_detail::land_bulk(bar);
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

// ================================================================ sm_90a: wgmma and TMA
// (issue 6 item 1). PTX ISA sections followed: "Asynchronous Warpgroup Level Matrix Multiply-
// Accumulate" (wgmma.mma_async, .fence, .commit_group, .wait_group), its "Matrix Descriptor
// Format", "Shared Memory Matrix Layout" (canonical K-major layouts per swizzle mode, strides) and
// "Register Fragments" (D of m64nNk16), and "cp.async.bulk.tensor" / "cp.async.bulk"; tensor maps
// as cuTensorMapEncodeTiled (CUDA driver API) documents them.
//
// Shared-memory operands are K-major only (wgmma's imm-trans-a / imm-trans-b = 0): A is 64x16
// (row m, column k), B is given as N rows of 16 k (B^T row-major: row n, column k). 16-bit types.
// Canonical K-major layouts (element (i, k), i the M or N index; byte address before swizzling):
//   Swizzle::None:  start + (i/8)*SBO + (i%8)*16 + (k/8)*LBO + (k%8)*2   (8x16-byte core matrices)
//   Swizzle::B32/B64/B128 (span S = 32/64/128 bytes): start + (i/8)*SBO + (i%8)*S + (k/8)*16 + (k%8)*2
//     (the K extent 16 x 2 bytes lies within one S-byte row; LBO is not used); the address is
//     then swizzled by XOR-ing its bits [4, 4+log2(S/16)) with bits [7, 7+log2(S/16)) -- the 16-byte
//     chunk index within an S-byte row XOR (row / (128/S)) % (S/16) for a tile aligned to the
//     pattern repeat (8*S bytes); TMA writes the same pattern. The typical SBO is 8*S (atoms of
//     8 rows stacked); further k-steps inside an S-byte row advance the start address by 32 bytes.
#if defined(LFC_EMU)
#ifndef __grid_constant__
#define __grid_constant__
#endif
#elif defined(__CUDACC__)
#include <cuda.h>
#include <cudaTypedefs.h>
#endif

namespace lfc {

enum class Swizzle : unsigned { None = 0, B32 = 32, B64 = 64, B128 = 128 };
// Descriptor bits 62-63: 0 none, 1 128B, 2 64B, 3 32B.
LFC_DEV constexpr unsigned swizzle_desc_code(Swizzle s) {
  return s == Swizzle::B128 ? 1u : s == Swizzle::B64 ? 2u : s == Swizzle::B32 ? 3u : 0u;
}

#if defined(LFC_EMU)
namespace emu_detail {
// The "shared address" of the emulator: the offset into the dynamic shared arena (the GPU's
// dynamic shared memory starts at an address aligned at least to 1024 when no static shared
// memory precedes it; kernels align swizzled tiles to the pattern repeat anyway).
inline uint32_t smem_offset(const void* p, const char* what) {
  const unsigned char* base = lfc_emu::block()->smem.data();
  const unsigned char* q = static_cast<const unsigned char*>(p);
  if (lfc_emu::block()->smem.empty() || q < base || q >= base + lfc_emu::block()->smem.size()) lfc_emu::fail(what);
  return uint32_t(q - base);
}
inline uint32_t swizzle_addr(uint32_t addr, Swizzle s) {
  uint32_t m = s == Swizzle::B128 ? 7 : s == Swizzle::B64 ? 3 : s == Swizzle::B32 ? 1 : 0;
  return addr ^ (((addr >> 7) & m) << 4);
}
}  // namespace emu_detail
LFC_DEV uint32_t smem_addr_u32(const void* p) { return emu_detail::smem_offset(p, "wgmma/TMA: shared operand outside the dynamic shared memory (the emulator addresses only LFC_DYNAMIC_SMEM)"); }
#else
LFC_DEV uint32_t smem_addr_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
#endif

// 64-bit wgmma matrix descriptor: start address >> 4 (bits 0-13), leading-dimension byte offset
// >> 4 (16-29), stride-dimension byte offset >> 4 (32-45), matrix base offset (49-51), swizzle
// mode (62-63). base_offset is for a start address not aligned to the swizzle pattern repeat
// (PTX: (start >> 7) & 7); the emulator swizzles by absolute address bits and ignores it.
// To step along K inside a swizzled row: desc + (bytes >> 4) (start address field).
LFC_DEV uint64_t make_smem_desc(const void* smem, unsigned lbo_bytes, unsigned sbo_bytes, Swizzle swizzle, unsigned base_offset = 0) {
  uint64_t a = smem_addr_u32(smem);
  return ((a & 0x3FFFF) >> 4) | (uint64_t((lbo_bytes >> 4) & 0x3FFF) << 16) | (uint64_t((sbo_bytes >> 4) & 0x3FFF) << 32) |
         (uint64_t(base_offset & 7) << 49) | (uint64_t(swizzle_desc_code(swizzle)) << 62);
}

#if defined(LFC_EMU)
// ---------------------------------------------------------------- sm_90a on the CPU
// wgmma: the 128 threads of the warpgroup (threads [128g, 128g+128) of the block) publish their
// registers (A fragment for the register variant, the accumulators, descriptors, scale-d) and
// rendezvous; the first to resume decodes both operands from shared memory and computes
// D = A*B (+ D if scale-d) for the warpgroup (once per rendezvous); each thread takes its fragment.
// Asynchrony: the result is in the registers when wgmma returns, and the shared operands are read
// then. On the GPU the registers are defined only after wgmma_wait_group retires the group, and
// shared memory must not change before that; the emulator does not catch a kernel that reads the
// accumulators early or overwrites the operands before the wait (it reports the operands as read
// to the race checker, so a write by another warp in the same barrier epoch is caught).
// fence / commit / wait are no-ops here (every group is complete when its wgmma returns).
namespace emu_detail {
inline uint16_t desc_load16(uint64_t desc, unsigned i, unsigned k, const std::source_location& loc) {
  uint32_t start = uint32_t(desc & 0x3FFF) << 4, lbo = uint32_t((desc >> 16) & 0x3FFF) << 4, sbo = uint32_t((desc >> 32) & 0x3FFF) << 4;
  unsigned code = unsigned(desc >> 62);
  Swizzle s = code == 1 ? Swizzle::B128 : code == 2 ? Swizzle::B64 : code == 3 ? Swizzle::B32 : Swizzle::None;
  uint32_t addr;
  if (s == Swizzle::None) addr = start + (i / 8) * sbo + (i % 8) * 16 + (k / 8) * lbo + (k % 8) * 2;
  else addr = swizzle_addr(start + (i / 8) * sbo + (i % 8) * unsigned(s) + (k / 8) * 16 + (k % 8) * 2, s);
  auto& smem = lfc_emu::block()->smem;
  if (size_t(addr) + 2 > smem.size()) lfc_emu::fail("wgmma: a descriptor addresses past the dynamic shared memory");
  lfc_emu::smem_read(smem.data() + addr, 2, loc);
  uint16_t v;
  std::memcpy(&v, smem.data() + addr, 2);
  return v;
}
inline lfc_emu::WarpGroup& my_warpgroup() {
  lfc_emu::Block* b = lfc_emu::block();
  unsigned t = lfc_emu::self().linear, n = lfc_emu::nthreads();
  if ((t / 128 + 1) * 128 > n) lfc_emu::fail("wgmma: the calling warpgroup is incomplete (block size must be a multiple of 128)");
  if (b->warpgroups.size() < n / 128) b->warpgroups.resize(n / 128);
  return b->warpgroups[t / 128];
}
// words per thread: a[4], desc_a (2), desc_b (2), scale_d, d[N/2]
template <int N, bool RS>
void wgmma_generic(float* d, const uint32_t* a, uint64_t desc_a, uint64_t desc_b, int scale_d, bool bf16, const std::source_location& loc) {
  constexpr unsigned W = 9 + N / 2;
  lfc_emu::WarpGroup& wg = my_warpgroup();
  unsigned tid = lfc_emu::self().linear % 128;
  if (wg.words.size() != 128 * W) wg.words.assign(128 * W, 0);
  uint32_t* my = wg.words.data() + tid * W;
  for (int r = 0; r < 4; ++r) my[r] = RS ? a[r] : 0;
  my[4] = uint32_t(desc_a); my[5] = uint32_t(desc_a >> 32);
  my[6] = uint32_t(desc_b); my[7] = uint32_t(desc_b >> 32);
  my[8] = scale_d != 0;
  std::memcpy(my + 9, d, sizeof(float) * (N / 2));
  lfc_emu::wait_barrier(wg.bar, 128, "wgmma.mma_async");
  if (wg.computed_gen != wg.bar.gen) {
    wg.computed_gen = wg.bar.gen;
    const uint32_t* w0 = wg.words.data();
    for (unsigned t = 1; t < 128; ++t)
      for (int j = 4; j < 9; ++j)
        if (wg.words[t * W + j] != w0[j]) lfc_emu::fail("wgmma: descriptors or scale-d differ across the warpgroup");
    auto elem = [bf16](uint32_t bits) { return bf16 ? lo_bf16(bits) : lo_f16(bits); };
    std::vector<float> A(64 * 16), B(16 * N);
    if (RS) {
      // A fragment (as mma.m16n8k16's A, per warp w rows 16w..16w+15): reg r, half e of thread
      // (w, lane): row 16w + lane/4 + 8(r&1), column 2(lane%4) + 8(r>>1) + e.
      for (unsigned t = 0; t < 128; ++t) {
        unsigned w = t / 32, l = t % 32;
        for (unsigned r = 0; r < 4; ++r)
          for (unsigned e = 0; e < 2; ++e)
            A[(16 * w + l / 4 + 8 * (r & 1)) * 16 + 2 * (l % 4) + 8 * (r >> 1) + e] = elem(wg.words[t * W + r] >> (16 * e));
      }
    } else {
      for (unsigned m = 0; m < 64; ++m)
        for (unsigned k = 0; k < 16; ++k) A[m * 16 + k] = elem(desc_load16(desc_a, m, k, loc));
    }
    for (unsigned n = 0; n < unsigned(N); ++n)
      for (unsigned k = 0; k < 16; ++k) B[n * 16 + k] = elem(desc_load16(desc_b, n, k, loc));
    wg.result.assign(128 * (N / 2), 0);
    // D fragment of m64nNk16 (f32): thread (w, lane), value i: row 16w + lane/4 + 8((i>>1)&1),
    // column 8(i>>2) + 2(lane%4) + (i&1).
    for (unsigned t = 0; t < 128; ++t) {
      unsigned w = t / 32, l = t % 32;
      for (unsigned i = 0; i < unsigned(N / 2); ++i) {
        unsigned row = 16 * w + l / 4 + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * (l % 4) + (i & 1);
        float s = 0;  // products summed in k order, then added to D (hardware order is unspecified)
        for (unsigned k = 0; k < 16; ++k) s += A[row * 16 + k] * B[col * 16 + k];
        float din;
        std::memcpy(&din, &wg.words[t * W + 9 + i], 4);
        float o = w0[8] ? s + din : s;
        std::memcpy(&wg.result[t * (N / 2) + i], &o, 4);
      }
    }
  }
  float out[N / 2];
  std::memcpy(out, wg.result.data() + tid * (N / 2), sizeof out);
  lfc_emu::wait_barrier(wg.bar, 128, "wgmma.mma_async");
  std::memcpy(d, out, sizeof out);
}
}  // namespace emu_detail
#define LFC_EMU_LOC const std::source_location& loc = std::source_location::current()
// wgmma.mma_async.sync.aligned.m64nNk16.f32.{bf16,f16}: D (N/2 floats per thread) = A*B (+D).
template <int N> LFC_DEV void wgmma_m64nNk16_bf16(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, bool scale_d, LFC_EMU_LOC) {
  emu_detail::wgmma_generic<N, false>(d, nullptr, desc_a, desc_b, scale_d, true, loc);
}
template <int N> LFC_DEV void wgmma_m64nNk16_f16(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, bool scale_d, LFC_EMU_LOC) {
  emu_detail::wgmma_generic<N, false>(d, nullptr, desc_a, desc_b, scale_d, false, loc);
}
template <int N> LFC_DEV void wgmma_m64nNk16_bf16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, bool scale_d, LFC_EMU_LOC) {
  emu_detail::wgmma_generic<N, true>(d, a, 0, desc_b, scale_d, true, loc);
}
template <int N> LFC_DEV void wgmma_m64nNk16_f16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, bool scale_d, LFC_EMU_LOC) {
  emu_detail::wgmma_generic<N, true>(d, a, 0, desc_b, scale_d, false, loc);
}
#undef LFC_EMU_LOC
LFC_DEV void wgmma_fence() {}
LFC_DEV void wgmma_commit_group() {}
template <int N> LFC_DEV void wgmma_wait_group() { static_assert(N >= 0 && N <= 7, "wgmma.wait_group: 0..7"); }

// Tensor map (emulator): what cuTensorMapEncodeTiled encodes for a 2D tile load.
struct TensorMap {
  const unsigned char* base = nullptr;
  uint64_t dims[2] = {0, 0};     // {columns (inner), rows}
  uint64_t row_stride = 0;       // bytes
  uint32_t box[2] = {0, 0};      // {columns, rows}
  uint32_t elem_bytes = 0;
  Swizzle swizzle = Swizzle::None;
};
// Checks what the driver checks (alignment, box limits, inner box bytes vs swizzle span). The
// emulator also requires, for a swizzled map, the inner box to be exactly the swizzle span (the
// shared layout of a narrower box under a wider swizzle is not pinned down here).
inline bool make_tensor_map_2d(TensorMap* map, const void* global, unsigned elem_bytes, uint64_t cols, uint64_t rows,
                               uint64_t row_stride_bytes, unsigned box_cols, unsigned box_rows, Swizzle swizzle) {
  uint64_t inner = uint64_t(box_cols) * elem_bytes;
  if (!(elem_bytes == 1 || elem_bytes == 2 || elem_bytes == 4 || elem_bytes == 8)) return false;
  if (reinterpret_cast<uintptr_t>(global) % 16 || row_stride_bytes % 16 || row_stride_bytes < cols * elem_bytes) return false;
  if (cols == 0 || rows == 0 || box_cols == 0 || box_rows == 0 || box_cols > 256 || box_rows > 256 || inner % 16) return false;
  if (swizzle != Swizzle::None && inner != unsigned(swizzle)) return false;
  *map = TensorMap{static_cast<const unsigned char*>(global), {cols, rows}, row_stride_bytes, {box_cols, box_rows}, elem_bytes, swizzle};
  return true;
}

// TMA and bulk copies: the source is read when the copy is issued; the bytes land in shared
// memory, and complete_tx reaches the mbarrier, when a thread next waits on that mbarrier
// (mbarrier_try_wait_parity), so a kernel that reads the tile before waiting sees stale data.
// Hardware lands them at some time in between; the order of landing is not modelled.
namespace emu_detail {
inline void bulk_enqueue(uint64_t* bar, std::function<void()> land) {
  mbar(bar);  // must be initialised
  lfc_emu::block()->bulk_pending.emplace_back(bar, std::move(land));
}
}  // namespace emu_detail
// cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes: the box at
// (column x, row y) of the map into smem_dst (rows of box[0]*elem bytes, swizzled by the map's
// mode by shared-address bits); box elements outside the tensor are zero; completes the whole
// box's bytes on bar.
LFC_DEV void tma_load_2d(void* smem_dst, const TensorMap* map, int x, int y, uint64_t* bar) {
  uint32_t dst = emu_detail::smem_offset(smem_dst, "tma_load_2d: destination outside the dynamic shared memory");
  if (dst % 128) lfc_emu::fail("tma_load_2d: shared destination must be 128-byte aligned");
  const TensorMap m = *map;
  const uint32_t inner = m.box[0] * m.elem_bytes, bytes = inner * m.box[1];
  if (size_t(dst) + bytes > lfc_emu::block()->smem.size()) lfc_emu::fail("tma_load_2d: box past the dynamic shared memory");
  std::vector<unsigned char> staged(bytes, 0);
  for (uint32_t r = 0; r < m.box[1]; ++r)
    for (uint32_t c = 0; c < m.box[0]; ++c) {
      int64_t gy = int64_t(y) + r, gx = int64_t(x) + c;
      if (gy < 0 || gx < 0 || uint64_t(gy) >= m.dims[1] || uint64_t(gx) >= m.dims[0]) continue;  // zero fill
      std::memcpy(&staged[r * inner + c * m.elem_bytes], m.base + uint64_t(gy) * m.row_stride + uint64_t(gx) * m.elem_bytes, m.elem_bytes);
    }
  emu_detail::bulk_enqueue(bar, [bar, dst, bytes, staged = std::move(staged), sw = m.swizzle]() {
    unsigned char* s = lfc_emu::block()->smem.data();
    for (uint32_t o = 0; o < bytes; o += 16) std::memcpy(s + emu_detail::swizzle_addr(dst + o, sw), &staged[o], 16);
    mbarrier_complete_tx(bar, bytes);
  });
}
// cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes: bytes (multiple of 16) from
// gmem_src (16-byte aligned) to smem_dst (16-byte aligned), completing them on bar.
LFC_DEV void bulk_load(void* smem_dst, const void* gmem_src, unsigned bytes, uint64_t* bar) {
  uint32_t dst = emu_detail::smem_offset(smem_dst, "bulk_load: destination outside the dynamic shared memory");
  if (bytes % 16 || dst % 16 || reinterpret_cast<uintptr_t>(gmem_src) % 16) lfc_emu::fail("bulk_load: size and addresses must be multiples of 16");
  if (size_t(dst) + bytes > lfc_emu::block()->smem.size()) lfc_emu::fail("bulk_load: copy past the dynamic shared memory");
  const unsigned char* src = static_cast<const unsigned char*>(gmem_src);
  std::vector<unsigned char> staged(src, src + bytes);
  emu_detail::bulk_enqueue(bar, [bar, dst, bytes, staged = std::move(staged)]() {
    std::memcpy(lfc_emu::block()->smem.data() + dst, staged.data(), bytes);
    mbarrier_complete_tx(bar, bytes);
  });
}

#else
// ---------------------------------------------------------------- sm_90a on the GPU
namespace gpu_detail {
template <int N> struct Wgmma;
// Generated: for each N, A/B from descriptors (ss_*) and A from registers (rs_*); scale-d is a
// predicate (setp from an int); imm-scale-a/b = 1, imm-trans-a/b = 0 (K-major).
template <> struct Wgmma<8> {
  LFC_DEV static void ss_bf16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %6, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0,%1,%2,%3}, %4, %5, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_bf16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void ss_f16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %6, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0,%1,%2,%3}, %4, %5, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_f16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %9, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
};
template <> struct Wgmma<16> {
  LFC_DEV static void ss_bf16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %10, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_bf16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %13, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11}, %12, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void ss_f16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %10, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_f16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %13, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11}, %12, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
};
template <> struct Wgmma<32> {
  LFC_DEV static void ss_bf16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %18, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_bf16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %21, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, {%16,%17,%18,%19}, %20, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void ss_f16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %18, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_f16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %21, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, {%16,%17,%18,%19}, %20, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
};
template <> struct Wgmma<64> {
  LFC_DEV static void ss_bf16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_bf16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void ss_f16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_f16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
};
template <> struct Wgmma<128> {
  LFC_DEV static void ss_bf16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_bf16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void ss_f16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_f16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
};
template <> struct Wgmma<256> {
  LFC_DEV static void ss_bf16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_bf16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %133, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, {%128,%129,%130,%131}, %132, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void ss_f16(float* d, uint64_t a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "l"(a), "l"(b), "r"(scale_d) : "memory");
  }
  LFC_DEV static void rs_f16(float* d, const uint32_t* a, uint64_t b, int scale_d) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %133, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, {%128,%129,%130,%131}, %132, p, 1, 1, 0; }"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d) : "memory");
  }
};
}  // namespace gpu_detail

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LFC_SM90A_OR_TRAP(...) __VA_ARGS__
#else
#define LFC_SM90A_OR_TRAP(...) __trap()  // wgmma needs sm_90a
#endif
// wgmma.mma_async.sync.aligned.m64nNk16.f32.{bf16,f16}: D (N/2 floats per thread) = A*B (+D).
template <int N> LFC_DEV void wgmma_m64nNk16_bf16(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, bool scale_d) {
  LFC_SM90A_OR_TRAP(gpu_detail::Wgmma<N>::ss_bf16(d, desc_a, desc_b, int(scale_d)));
}
template <int N> LFC_DEV void wgmma_m64nNk16_f16(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, bool scale_d) {
  LFC_SM90A_OR_TRAP(gpu_detail::Wgmma<N>::ss_f16(d, desc_a, desc_b, int(scale_d)));
}
template <int N> LFC_DEV void wgmma_m64nNk16_bf16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, bool scale_d) {
  LFC_SM90A_OR_TRAP(gpu_detail::Wgmma<N>::rs_bf16(d, a, desc_b, int(scale_d)));
}
template <int N> LFC_DEV void wgmma_m64nNk16_f16_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, bool scale_d) {
  LFC_SM90A_OR_TRAP(gpu_detail::Wgmma<N>::rs_f16(d, a, desc_b, int(scale_d)));
}
LFC_DEV void wgmma_fence() { LFC_SM90A_OR_TRAP(asm volatile("wgmma.fence.sync.aligned;" ::: "memory")); }
LFC_DEV void wgmma_commit_group() { LFC_SM90A_OR_TRAP(asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory")); }
template <int N> LFC_DEV void wgmma_wait_group() {
  static_assert(N >= 0 && N <= 7, "wgmma.wait_group: 0..7");
  LFC_SM90A_OR_TRAP(asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"));
}
#undef LFC_SM90A_OR_TRAP

using TensorMap = CUtensorMap;  // 128 bytes; pass as `const __grid_constant__ lfc::TensorMap` or in global memory
// Host: cuTensorMapEncodeTiled through the runtime's driver entry point (no -lcuda). Elements are
// encoded as unsigned integers of elem_bytes (a tile copy needs only the size); out-of-bounds
// box elements read as zero (OOB fill none); L2 promotion 128B. Returns false on any error.
inline bool make_tensor_map_2d(TensorMap* map, const void* global, unsigned elem_bytes, uint64_t cols, uint64_t rows,
                               uint64_t row_stride_bytes, unsigned box_cols, unsigned box_rows, Swizzle swizzle) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = nullptr;
  if (!encode) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess || !fn)
      return false;
    encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }
  CUtensorMapDataType type = elem_bytes == 1 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : elem_bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_UINT16
                           : elem_bytes == 4 ? CU_TENSOR_MAP_DATA_TYPE_UINT32 : CU_TENSOR_MAP_DATA_TYPE_INT64;
  if (!(elem_bytes == 1 || elem_bytes == 2 || elem_bytes == 4 || elem_bytes == 8)) return false;
  CUtensorMapSwizzle sw = swizzle == Swizzle::B128 ? CU_TENSOR_MAP_SWIZZLE_128B : swizzle == Swizzle::B64 ? CU_TENSOR_MAP_SWIZZLE_64B
                        : swizzle == Swizzle::B32 ? CU_TENSOR_MAP_SWIZZLE_32B : CU_TENSOR_MAP_SWIZZLE_NONE;
  cuuint64_t dims[2] = {cols, rows}, strides[1] = {row_stride_bytes};
  cuuint32_t box[2] = {box_cols, box_rows}, estr[2] = {1, 1};
  return encode(map, type, 2, const_cast<void*>(global), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, sw,
                CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

LFC_DEV void tma_load_2d(void* smem_dst, const TensorMap* map, int x, int y, uint64_t* bar) {
#if __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
               ::"r"(smem_addr_u32(smem_dst)), "l"(map), "r"(x), "r"(y), "r"(smem_addr_u32(bar)) : "memory");
#else
  (void)smem_dst; (void)map; (void)x; (void)y; (void)bar;
  __trap();  // TMA needs sm_90
#endif
}
LFC_DEV void bulk_load(void* smem_dst, const void* gmem_src, unsigned bytes, uint64_t* bar) {
#if __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               ::"r"(smem_addr_u32(smem_dst)), "l"(gmem_src), "r"(bytes), "r"(smem_addr_u32(bar)) : "memory");
#else
  (void)smem_dst; (void)gmem_src; (void)bytes; (void)bar;
  __trap();  // bulk copies need sm_90
#endif
}
#endif

}  // namespace lfc
