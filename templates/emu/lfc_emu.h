// lfc_emu.h: the CPU runtime that runs lfc's CUDA kernels (built with g++ -DLFC_EMU).
//
// Design: one OS thread. A block's threads are fibers (a few instructions of register switch on
// x86-64; ucontext elsewhere, whose swapcontext costs two syscalls) scheduled cooperatively
// (round robin); blocks run one after another. Every synchronisation point is a barrier
// (arrive, then yield until the barrier's generation moves): __syncthreads, named barriers,
// and the warp rendezvous that shuffles, votes, mma.sync and ldmatrix use to exchange lane
// values. A full round in which no fiber arrives anywhere or finishes is a deadlock
// (e.g. __syncthreads inside divergent code) and aborts with where each thread waits.
// Because one OS thread runs everything, atomics are plain read-modify-writes.
//
// Checkers (issue 6 item 3), on by default (LFC_EMU_RACECHECK=0 turns the race checker off):
//  - shared-memory races on the dynamic shared arena, per barrier epoch (an epoch ends when a
//    __syncthreads or named barrier releases): every fiber's run slice is diffed against a
//    snapshot, so each changed byte gets its writer; two warps writing a byte in one epoch, or a
//    warp writing a byte another warp read with ldmatrix in that epoch (or the reverse), is
//    reported with kernel, call site, threads and offset. Intra-warp conflicts are not reported
//    (warp-synchronous code may legally rely on them); writes that store the value already
//    there are invisible to the diff; static __shared__ arrays are not tracked.
//  - global memory: cudaMalloc (lfc_emu_runtime.cpp) ends every allocation at a guard page, so an
//    access past the end faults and is reported with kernel, block and thread.
//  - scheduling: LFC_EMU_SCHEDULE=forward|reverse|shuffle picks the order fibers run in each
//    round; a kernel whose output changes with it has a race the diff cannot see (a missing
//    barrier before a read). Tests run kernels under two orders and compare.
// Not emulated: memory-ordering effects (fences are no-ops), exited threads counting as arrived
// at a barrier (here they deadlock, which CUDA calls undefined anyway).
#pragma once
#include <ucontext.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <source_location>
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
  uint64_t computed_gen = UINT64_MAX;  // collectives computed once per rendezvous (mma.sync)
  uint32_t result[32][4];
};

struct AsyncCopy {
  void* dst;
  const void* src;
  unsigned bytes;
  uint64_t group;  // committed group index, or UINT64_MAX while uncommitted
};

struct Fiber {
  ucontext_t ctx;
  void* sp = nullptr;  // saved stack pointer (x86-64 switch)
  char* stack = nullptr;
  dim3 tid;
  unsigned linear = 0;
  bool done = false;
  const char* waiting_on = nullptr;
  std::vector<AsyncCopy> copies;
  uint64_t committed = 0;
};

struct MBarrier {
  unsigned expected = 0, pending = 0;
  int64_t tx = 0;
  uint64_t phase = 0;
};

// Exchange area of one warpgroup (threads [128g, 128g+128)) for wgmma: each thread publishes its
// words, the warpgroup rendezvous on `bar`, one thread computes `result` (once per rendezvous).
struct WarpGroup {
  Barrier bar;
  uint64_t computed_gen = UINT64_MAX;
  std::vector<uint32_t> words, result;
};

struct Block {
  const char* kernel = "?";
  std::vector<WarpGroup> warpgroups;  // sized on first use by the wgmma intrinsics
  // Bulk copies (TMA, cp.async.bulk) issued but not landed, with the mbarrier they complete on.
  std::vector<std::pair<const void*, std::function<void()>>> bulk_pending;
  std::map<const void*, MBarrier> mbarriers;
  dim3 bid, bdim, gdim;
  uint64_t epoch = 0;                 // barrier epoch (race checker)
  std::vector<unsigned char> snap;    // smem at the start of the running slice
  std::vector<uint32_t> writer;       // per smem byte: writing thread + 1 (0: none)
  std::vector<uint64_t> wepoch;       // ... and its epoch
  std::vector<uint32_t> reader;       // per smem byte: last ldmatrix reader thread + 1
  std::vector<uint64_t> repoch;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Barrier block_bar;
  Barrier named[16];
  ucontext_t sched;
  void* sched_sp = nullptr;
  unsigned cur = 0;
  bool progressed = false;
  std::function<void()> body;
  std::vector<unsigned char> smem;  // dynamic shared memory arena
};

#if defined(__x86_64__) && !defined(LFC_EMU_UCONTEXT)
#define LFC_EMU_FAST_SWITCH 1
// switch_to(&save, next): pushes the callee-saved registers, MXCSR and the x87 control word on
// the current stack, stores the stack pointer in *save, loads `next` and pops the same frame
// there. A fresh fiber's stack holds such a frame whose return address is fiber_entry.
extern "C" void lfc_emu_switch(void** save, void* next);
asm(R"(
.text
.globl lfc_emu_switch
.type lfc_emu_switch,@function
.weak lfc_emu_switch
lfc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size lfc_emu_switch, .-lfc_emu_switch
)");
#endif

inline Block*& block() {
  static Block* b = nullptr;
  return b;
}
inline Fiber& self() { return block()->fibers[block()->cur]; }

// Settings from the environment, read once.
struct Settings {
  bool racecheck = true;
  int schedule = 0;  // 0 forward, 1 reverse, 2 shuffle
  Settings() {
    const char* r = std::getenv("LFC_EMU_RACECHECK");
    racecheck = !(r && r[0] == '0');
    const char* o = std::getenv("LFC_EMU_SCHEDULE");
    if (o && std::strcmp(o, "reverse") == 0) schedule = 1;
    else if (o && std::strcmp(o, "shuffle") == 0) schedule = 2;
  }
};
inline const Settings& settings() {
  static Settings s;
  return s;
}
inline const char*& kernel_name() {
  static const char* n = "?";
  return n;
}
inline unsigned nthreads() { const Block* b = block(); return b->bdim.x * b->bdim.y * b->bdim.z; }

[[noreturn]] inline void fail(const char* what) {
  const Block* b = block();
  std::fprintf(stderr, "lfc_emu: %s (block %u,%u,%u thread %u)\n", what, b ? b->bid.x : 0, b ? b->bid.y : 0,
               b ? b->bid.z : 0, b ? b->fibers[b->cur].linear : 0);
  std::exit(3);
}

inline void yield() {
  Block* b = block();
#ifdef LFC_EMU_FAST_SWITCH
  lfc_emu_switch(&b->fibers[b->cur].sp, b->sched_sp);
#else
  swapcontext(&b->fibers[b->cur].ctx, &b->sched);
#endif
}

// Arrive at `bar`, which releases when `count` threads have arrived; wait for the release.
inline void wait_barrier(Barrier& bar, unsigned count, const char* what) {
  Block* b = block();
  b->progressed = true;
  uint64_t g = bar.gen;
  if (++bar.arrived == count) {
    bar.arrived = 0;
    bar.gen++;
    if (&bar == &b->block_bar || (&bar >= b->named && &bar < b->named + 16)) {
      b->epoch++;
      yield();  // end this slice at the epoch boundary (the race checker's diff is per slice)
    }
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

#ifdef LFC_EMU_FAST_SWITCH
// First frame of every fiber (entered by lfc_emu_switch's ret): run the thread, then hand the CPU
// back to the scheduler for good.
inline void fiber_entry() {
  trampoline();
  Block* b = block();
  lfc_emu_switch(&b->fibers[b->cur].sp, b->sched_sp);
  __builtin_unreachable();
}
#endif

inline void* dynamic_smem() { return block()->smem.data(); }
// Bounds check for the dynamic shared arena: kernels may call it on computed offsets.
inline void smem_check(const void* p, size_t bytes) {
  const unsigned char* base = block()->smem.data();
  const unsigned char* q = static_cast<const unsigned char*>(p);
  if (q < base || q + bytes > base + block()->smem.size()) fail("dynamic shared memory access out of bounds");
}

[[noreturn]] inline void race(const char* what, size_t offset, uint32_t other, uint32_t me, const char* where) {
  const Block* b = block();
  std::fprintf(stderr,
               "lfc_emu: shared-memory race in kernel %s, block %u,%u,%u: %s at dynamic smem offset %zu by thread %u (warp %u)%s%s; "
               "thread %u (warp %u) touched it in the same barrier epoch %llu\n",
               b->kernel, b->bid.x, b->bid.y, b->bid.z, what, offset, me, me / 32, where ? " at " : "", where ? where : "", other,
               other / 32, (unsigned long long)b->epoch);
  std::exit(3);
}

// Diff the arena against the snapshot taken before warp w's run of slices (all in epoch e): each
// changed byte gets writer w. Compared in 64-byte chunks; bytes only inside changed chunks.
inline void record_writes(Block& b, unsigned w, uint64_t e) {
  const unsigned char* now = b.smem.data();
  const unsigned char* was = b.snap.data();
  size_t n = b.smem.size();
  unsigned t = w * 32;  // reported as "thread 32w (warp w)": the diff sees warps, not lanes
  for (size_t c = 0; c < n; c += 64) {
    size_t len = n - c < 64 ? n - c : 64;
    if (std::memcmp(now + c, was + c, len) == 0) continue;
    for (size_t i = c; i < c + len; ++i) {
      if (now[i] == was[i]) continue;
      if (b.writer[i] && b.wepoch[i] == e && (b.writer[i] - 1) / 32 != w) race("write after write", i, b.writer[i] - 1, t, nullptr);
      if (b.reader[i] && b.repoch[i] == e && (b.reader[i] - 1) / 32 != w) race("write after read", i, b.reader[i] - 1, t, nullptr);
      b.writer[i] = t + 1;
      b.wepoch[i] = e;
    }
  }
}

// A read of [p, p+bytes) by the running thread (ldmatrix rows): checked against same-epoch writers.
inline void smem_read(const void* p, size_t bytes, const std::source_location& loc) {
  Block* b = block();
  if (!settings().racecheck || b->smem.empty()) return;
  const unsigned char* q = static_cast<const unsigned char*>(p);
  const unsigned char* base = b->smem.data();
  if (q < base || q + bytes > base + b->smem.size()) return;  // static __shared__: not tracked
  unsigned me = self().linear;
  static char where[512];
  for (size_t i = size_t(q - base), end = i + bytes; i < end; ++i) {
    if (b->writer[i] && b->wepoch[i] == b->epoch && (b->writer[i] - 1) / 32 != me / 32) {
      std::snprintf(where, sizeof where, "%s:%u", loc.file_name(), unsigned(loc.line()));
      race("read after write", i, b->writer[i] - 1, me, where);
    }
    b->reader[i] = me + 1;
    b->repoch[i] = b->epoch;
  }
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
        b.kernel = kernel_name();
        b.bid = dim3(bx, by, bz);
        b.bdim = bdim;
        b.gdim = grid;
        b.fibers.resize(n);
        b.warps.resize((n + 31) / 32);
        b.smem.assign(smem_bytes, 0xcd);  // poison: uninitialised shared memory is not zero
        const bool check = settings().racecheck && smem_bytes > 0;
        unsigned snap_warp = UINT32_MAX;
        uint64_t snap_epoch = 0;
        if (check) {
          b.snap.resize(smem_bytes);
          b.writer.assign(smem_bytes, 0);
          b.wepoch.assign(smem_bytes, 0);
          b.reader.assign(smem_bytes, 0);
          b.repoch.assign(smem_bytes, 0);
        }
        b.body = [&] { kernel(args...); };
        block() = &b;
        for (unsigned t = 0; t < n; ++t) {
          Fiber& f = b.fibers[t];
          f.linear = t;
          f.tid = dim3(t % bdim.x, (t / bdim.x) % bdim.y, t / (bdim.x * bdim.y));
          f.stack = stacks.data() + size_t(t) * LFC_EMU_STACK_BYTES;
#ifdef LFC_EMU_FAST_SWITCH
          {
            uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + LFC_EMU_STACK_BYTES) & ~uintptr_t(15);
            uint64_t* q = reinterpret_cast<uint64_t*>(top);
            *--q = 0;                                              // fake return address of fiber_entry
            *--q = reinterpret_cast<uint64_t>(&fiber_entry);       // popped by lfc_emu_switch's ret
            for (int r = 0; r < 6; ++r) *--q = 0;                  // rbp rbx r12 r13 r14 r15
            *--q = uint64_t(0x1F80) | (uint64_t(0x037F) << 32);    // MXCSR, x87 control word
            f.sp = q;
          }
#else
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = f.stack;
          f.ctx.uc_stack.ss_size = LFC_EMU_STACK_BYTES;
          f.ctx.uc_link = &b.sched;
          makecontext(&f.ctx, trampoline, 0);
#endif
        }
        for (;;) {
          b.progressed = false;
          unsigned live = 0;
          static uint64_t shuffle_state = 0x9e3779b97f4a7c15ull;
          uint64_t rot = settings().schedule == 2 ? (shuffle_state = shuffle_state * 6364136223846793005ull + 1442695040888963407ull) >> 33 : 0;
          for (unsigned i = 0; i < n; ++i) {
            unsigned t = settings().schedule == 1 ? n - 1 - i : settings().schedule == 2 ? unsigned((i * 7919u + rot) % n) : i;
            if (b.fibers[t].done) continue;
            ++live;
            b.cur = t;
            // Race checker: one snapshot per run of consecutive slices of one warp in one epoch.
            if (check && (t / 32 != snap_warp || b.epoch != snap_epoch)) {
              if (snap_warp != UINT32_MAX) record_writes(b, snap_warp, snap_epoch);
              std::memcpy(b.snap.data(), b.smem.data(), smem_bytes);
              snap_warp = t / 32;
              snap_epoch = b.epoch;
            }
#ifdef LFC_EMU_FAST_SWITCH
            lfc_emu_switch(&b.sched_sp, b.fibers[t].sp);
#else
            swapcontext(&b.sched, &b.fibers[t].ctx);
#endif
          }
          if (check && live == 0 && snap_warp != UINT32_MAX) record_writes(b, snap_warp, snap_epoch);
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
void launch_on(cudaStream_t stream, const char* name, dim3 grid, dim3 bdim, size_t smem_bytes, void (*kernel)(KArgs...), Args... args) {
  std::function<void()> run = [=] { kernel_name() = name; launch(grid, bdim, smem_bytes, kernel, args...); };
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
#define LFC_LAUNCH(kernel, grid, block, smem, ...) (lfc_emu::kernel_name() = #kernel, lfc_emu::launch((grid), (block), (smem), kernel, __VA_ARGS__))
#define LFC_LAUNCH_ON(kernel, grid, block, smem, stream, ...) lfc_emu::launch_on((stream), #kernel, (grid), (block), (smem), kernel, __VA_ARGS__)

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
