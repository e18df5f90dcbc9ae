// lfc_emu.h: the CPU runtime that runs lfc's CUDA kernels (built with g++ -DLFC_EMU).
//
// Design: one OS thread. A block's threads are ucontext fibers scheduled cooperatively
// (round robin); blocks run one after another. Every synchronisation point is a barrier
// (arrive, then yield until the barrier's generation moves): __syncthreads, named barriers,
// and the warp rendezvous that shuffles, votes, mma.sync and ldmatrix use to exchange lane
// values. A full round in which no fiber arrives anywhere or finishes is a deadlock
// (e.g. __syncthreads inside divergent code) and aborts with where each thread waits.
// Because one OS thread runs everything, atomics are plain read-modify-writes.
//
// Not emulated yet (issue 6 items 3-5): race checker per barrier epoch, bounds checks of
// global/static shared accesses (only the dynamic shared arena has lfc_emu::smem_check),
// memory-ordering effects (fences are no-ops), exited threads counting as arrived at a barrier
// (here they deadlock, which CUDA calls undefined anyway), the CUDA runtime API host shims.
#pragma once
#include <ucontext.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#ifndef LFC_EMU_STACK_BYTES
#define LFC_EMU_STACK_BYTES (128 * 1024)
#endif

// dim3 comes from CUDA's vector_types.h (pulled in by cuda_fp16.h).

namespace lfc_emu {

struct Barrier {
  unsigned arrived = 0;
  uint64_t gen = 0;
  unsigned mask = 0;  // warp barriers: the lane mask of the collective now gathering
};

// Exchange area of one warp: each lane publishes up to 16 words, then the warp rendezvous.
struct Warp {
  uint32_t words[32][16];
  const void* ptr[32];
  Barrier bar;
};

struct AsyncCopy {
  void* dst;
  const void* src;
  unsigned bytes;
  uint64_t group;  // committed group index, or UINT64_MAX while uncommitted
};

struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;
  dim3 tid;
  unsigned linear = 0;
  bool done = false;
  const char* waiting_on = nullptr;
  std::vector<AsyncCopy> copies;
  uint64_t committed = 0;
};

struct Block {
  dim3 bid, bdim, gdim;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Barrier block_bar;
  Barrier named[16];
  ucontext_t sched;
  unsigned cur = 0;
  bool progressed = false;
  std::function<void()> body;
  std::vector<unsigned char> smem;  // dynamic shared memory arena
};

inline Block*& block() {
  static Block* b = nullptr;
  return b;
}
inline Fiber& self() { return block()->fibers[block()->cur]; }
inline unsigned nthreads() { const Block* b = block(); return b->bdim.x * b->bdim.y * b->bdim.z; }

[[noreturn]] inline void fail(const char* what) {
  const Block* b = block();
  std::fprintf(stderr, "lfc_emu: %s (block %u,%u,%u thread %u)\n", what, b ? b->bid.x : 0, b ? b->bid.y : 0,
               b ? b->bid.z : 0, b ? b->fibers[b->cur].linear : 0);
  std::exit(3);
}

inline void yield() {
  Block* b = block();
  swapcontext(&b->fibers[b->cur].ctx, &b->sched);
}

// Arrive at `bar`, which releases when `count` threads have arrived; wait for the release.
inline void wait_barrier(Barrier& bar, unsigned count, const char* what) {
  Block* b = block();
  b->progressed = true;
  uint64_t g = bar.gen;
  if (++bar.arrived == count) {
    bar.arrived = 0;
    bar.gen++;
    return;
  }
  self().waiting_on = what;
  while (bar.gen == g) yield();
  self().waiting_on = nullptr;
}

// Lanes of this thread's warp that exist (the last warp may be partial).
inline unsigned warp_exists_mask(unsigned warp) {
  unsigned n = nthreads(), first = warp * 32;
  unsigned lanes = n - first >= 32 ? 32 : n - first;
  return lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
}

// Rendezvous of the lanes in `mask` of the calling thread's warp.
inline void warp_sync(unsigned mask, const char* what) {
  Fiber& f = self();
  unsigned w = f.linear / 32, lane = f.linear % 32;
  mask &= warp_exists_mask(w);
  if (!(mask >> lane & 1)) fail("warp collective called by a lane outside its mask");
  Barrier& bar = block()->warps[w].bar;
  // Not emulated: two collectives with different masks gathering in one warp at once (e.g. the
  // two half-warps each shuffling among themselves). Reported instead of silently mixing lanes.
  if (bar.arrived == 0) bar.mask = mask;
  else if (bar.mask != mask) fail("warp collectives with different masks overlap in one warp (not emulated)");
  wait_barrier(bar, __builtin_popcount(mask), what);
}
inline Warp& my_warp() { return block()->warps[self().linear / 32]; }
inline unsigned my_lane() { return self().linear % 32; }

inline void complete_copies(Fiber& f, uint64_t upto_group_exclusive) {
  std::vector<AsyncCopy> keep;
  for (const AsyncCopy& c : f.copies) {
    if (c.group < upto_group_exclusive) std::memcpy(c.dst, c.src, c.bytes);
    else keep.push_back(c);
  }
  f.copies.swap(keep);
}

inline void trampoline() {
  Block* b = block();
  b->body();
  Fiber& f = b->fibers[b->cur];
  complete_copies(f, UINT64_MAX);  // outstanding cp.async still land (uncommitted ones too)
  f.done = true;
  b->progressed = true;
}

inline void* dynamic_smem() { return block()->smem.data(); }
// Bounds check for the dynamic shared arena: kernels may call it on computed offsets.
inline void smem_check(const void* p, size_t bytes) {
  const unsigned char* base = block()->smem.data();
  const unsigned char* q = static_cast<const unsigned char*>(p);
  if (q < base || q + bytes > base + block()->smem.size()) fail("dynamic shared memory access out of bounds");
}

// Run `kernel(args...)` over the grid. Blocks in turn; the threads of a block as fibers.
template <class... KArgs, class... Args>
void launch(dim3 grid, dim3 bdim, size_t smem_bytes, void (*kernel)(KArgs...), Args... args) {
  unsigned n = bdim.x * bdim.y * bdim.z;
  if (n == 0 || n > 1024) { std::fprintf(stderr, "lfc_emu: bad block size %u\n", n); std::exit(3); }
  // One stack pool for the process, grown on demand and never zeroed (a fresh vector per launch
  // memset 128 MiB each time).
  static char* pool = nullptr;
  static size_t pool_threads = 0;
  if (pool_threads < n) {
    std::free(pool);
    pool = static_cast<char*>(std::malloc(size_t(n) * LFC_EMU_STACK_BYTES));
    if (!pool) { std::fprintf(stderr, "lfc_emu: out of memory for %u fiber stacks\n", n); std::exit(3); }
    pool_threads = n;
  }
  struct { char* data() { return pool; } } stacks;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        Block b;
        b.bid = dim3(bx, by, bz);
        b.bdim = bdim;
        b.gdim = grid;
        b.fibers.resize(n);
        b.warps.resize((n + 31) / 32);
        b.smem.assign(smem_bytes, 0xcd);  // poison: uninitialised shared memory is not zero
        b.body = [&] { kernel(args...); };
        block() = &b;
        for (unsigned t = 0; t < n; ++t) {
          Fiber& f = b.fibers[t];
          f.linear = t;
          f.tid = dim3(t % bdim.x, (t / bdim.x) % bdim.y, t / (bdim.x * bdim.y));
          f.stack = stacks.data() + size_t(t) * LFC_EMU_STACK_BYTES;
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = f.stack;
          f.ctx.uc_stack.ss_size = LFC_EMU_STACK_BYTES;
          f.ctx.uc_link = &b.sched;
          makecontext(&f.ctx, trampoline, 0);
        }
        for (;;) {
          b.progressed = false;
          unsigned live = 0;
          for (unsigned t = 0; t < n; ++t) {
            if (b.fibers[t].done) continue;
            ++live;
            b.cur = t;
            swapcontext(&b.sched, &b.fibers[t].ctx);
          }
          if (live == 0) break;
          if (!b.progressed) {
            // One line per run of consecutive threads in the same state.
            std::fprintf(stderr, "lfc_emu: deadlock in block %u,%u,%u:\n", bx, by, bz);
            auto state = [&](unsigned t) { return b.fibers[t].done ? "exited" : b.fibers[t].waiting_on; };
            for (unsigned t = 0; t < n;) {
              unsigned e = t;
              while (e + 1 < n && std::strcmp(state(e + 1), state(t)) == 0) ++e;
              if (e == t) std::fprintf(stderr, "  thread %u: %s\n", t, state(t));
              else std::fprintf(stderr, "  threads %u-%u: %s\n", t, e, state(t));
              t = e + 1;
            }
            std::exit(3);
          }
        }
        block() = nullptr;
      }
}

// Launch on a stream: the CUDA runtime shims (lfc_emu_runtime.cpp) set the hook, which records
// the launch into the graph a capturing stream builds and returns true; otherwise it runs now
// (every emulated stream is synchronous).
using LaunchHook = bool (*)(cudaStream_t, std::function<void()>&&);
inline LaunchHook& launch_hook() {
  static LaunchHook h = nullptr;
  return h;
}
template <class... KArgs, class... Args>
void launch_on(cudaStream_t stream, dim3 grid, dim3 bdim, size_t smem_bytes, void (*kernel)(KArgs...), Args... args) {
  std::function<void()> run = [=] { launch(grid, bdim, smem_bytes, kernel, args...); };
  if (launch_hook() && launch_hook()(stream, std::move(run))) return;
  run();
}

}  // namespace lfc_emu

// ---- CUDA language surface on the CPU ----
// CUDA's host_defines.h (via cuda_fp16.h) gives these attribute meanings; on the CPU they vanish.
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Static __shared__ arrays become function statics: one copy, shared by the fibers of the running
// block, reused by the next block (contents are not reset, as on the GPU; but they start zeroed,
// unlike the GPU, so a kernel reading uninitialised static shared memory is not caught). Not
// bounds checked (use LFC_DYNAMIC_SMEM + lfc_emu::smem_check for that for now).
#define __shared__ static
#define threadIdx (lfc_emu::self().tid)
#define blockIdx (lfc_emu::block()->bid)
#define blockDim (lfc_emu::block()->bdim)
#define gridDim (lfc_emu::block()->gdim)
#define warpSize 32
#define LFC_LAUNCH(kernel, grid, block, smem, ...) lfc_emu::launch((grid), (block), (smem), kernel, __VA_ARGS__)
#define LFC_LAUNCH_ON(kernel, grid, block, smem, stream, ...) lfc_emu::launch_on((stream), (grid), (block), (smem), kernel, __VA_ARGS__)

inline void __syncthreads() { lfc_emu::wait_barrier(lfc_emu::block()->block_bar, lfc_emu::nthreads(), "__syncthreads"); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { lfc_emu::warp_sync(mask, "__syncwarp"); }
inline void __threadfence() {}
inline void __threadfence_block() {}

namespace lfc_emu {
template <class T>
T shfl_from(unsigned mask, T v, int width, unsigned (*pick)(unsigned lane, int width, int arg), int arg) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  Warp& w = my_warp();
  unsigned lane = my_lane();
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  w.words[lane][0] = uint32_t(bits);
  w.words[lane][1] = uint32_t(bits >> 32);
  warp_sync(mask, "shfl");
  unsigned src = pick(lane, width, arg);
  uint64_t got = uint64_t(w.words[src][0]) | (uint64_t(w.words[src][1]) << 32);
  warp_sync(mask, "shfl");
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}
// Source lane rules of the CUDA programming guide (width a power of two <= 32).
inline unsigned pick_idx(unsigned lane, int width, int src) { return (lane & ~unsigned(width - 1)) + (unsigned(src) & unsigned(width - 1)); }
inline unsigned pick_up(unsigned lane, int width, int d) { return int(lane % width) - d < 0 ? lane : lane - d; }
inline unsigned pick_down(unsigned lane, int width, int d) { return int(lane % width) + d >= width ? lane : lane + d; }
inline unsigned pick_xor(unsigned lane, int width, int m) {
  unsigned s = lane ^ unsigned(m);
  return (s & ~unsigned(width - 1)) == (lane & ~unsigned(width - 1)) && s < 32 ? s : lane;
}
}  // namespace lfc_emu

template <class T> T __shfl_sync(unsigned mask, T v, int src, int width = 32) { return lfc_emu::shfl_from(mask, v, width, lfc_emu::pick_idx, src); }
template <class T> T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) { return lfc_emu::shfl_from(mask, v, width, lfc_emu::pick_up, int(d)); }
template <class T> T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) { return lfc_emu::shfl_from(mask, v, width, lfc_emu::pick_down, int(d)); }
template <class T> T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) { return lfc_emu::shfl_from(mask, v, width, lfc_emu::pick_xor, m); }

inline unsigned __ballot_sync(unsigned mask, int pred) {
  lfc_emu::Warp& w = lfc_emu::my_warp();
  w.words[lfc_emu::my_lane()][0] = pred != 0;
  lfc_emu::warp_sync(mask, "ballot");
  unsigned m = mask & lfc_emu::warp_exists_mask(lfc_emu::self().linear / 32), out = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((m >> l & 1) && w.words[l][0]) out |= 1u << l;
  lfc_emu::warp_sync(mask, "ballot");
  return out;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) {
  return __ballot_sync(mask, pred) == (mask & lfc_emu::warp_exists_mask(lfc_emu::self().linear / 32));
}

// One OS thread runs every fiber and fibers switch only at barriers: a plain RMW is atomic.
inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { int o = *p; *p = o + v; return o; }
inline unsigned atomicAdd(unsigned* p, unsigned v) { unsigned o = *p; *p = o + v; return o; }
inline int atomicMax(int* p, int v) { int o = *p; *p = o > v ? o : v; return o; }
inline int atomicCAS(int* p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }
