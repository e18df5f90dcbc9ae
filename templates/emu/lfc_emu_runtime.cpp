// lfc_emu_runtime.cpp: the CUDA runtime API calls lfc's launcher and kernels make, defined on the CPU
// for the emulator build (g++ -DLFC_EMU). Declarations come from CUDA's own cuda_runtime_api.h, so
// the launcher compiles unchanged; "device" memory is host memory, every stream is synchronous,
// and stream capture records kernel launches, copies and memsets into a graph that
// cudaGraphLaunch replays (issue 6 item 4).
//
// Checked here as the real runtime would: frees of unknown pointers, copies that overrun an
// allocation made by cudaMalloc (when the pointer is one), launches of a destroyed graph,
// unbalanced capture. Errors are returned as cudaError_t and kept for cudaGetLastError.
//
// Bounds checker (compute-sanitizer memcheck's job on the GPU): every cudaMalloc allocation ends
// at a PROT_NONE guard page (start aligned to 16 bytes, end rounded up to 16), so a kernel reading
// or writing past the end faults; a SIGSEGV handler reports the kernel, block, thread and the
// allocation, and exits. Faults elsewhere go to the handler that was installed before (Node's).
#include "lfc_intrinsics.cuh"
#include <cuda_runtime_api.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

struct CUstream_st { bool capturing = false; struct CUgraph_st* graph = nullptr; };
struct CUgraph_st { std::vector<std::function<void()>> ops; };
struct CUgraphExec_st { std::vector<std::function<void()>> ops; };
struct CUevent_st { double ms = 0; };

namespace {
cudaError_t g_last = cudaSuccess;
std::map<uintptr_t, size_t>& allocations() { static std::map<uintptr_t, size_t> m; return m; }
CUstream_st g_default_stream;

cudaError_t set(cudaError_t e) { if (e != cudaSuccess) g_last = e; return e; }

struct Region { char* base; size_t len; char* guard; size_t user; };
std::map<uintptr_t, Region>& regions() { static std::map<uintptr_t, Region> m; return m; }  // by user start
struct sigaction g_prev_segv;
bool g_handler = false;

void on_segv(int sig, siginfo_t* info, void* uctx) {
  uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  for (auto& [start, r] : regions()) {
    uintptr_t g = reinterpret_cast<uintptr_t>(r.guard);
    if (a >= g && a < g + size_t(sysconf(_SC_PAGESIZE))) {
      const lfc_emu::Block* b = lfc_emu::block();
      char msg[512];
      int n = std::snprintf(msg, sizeof msg,
                            "lfc_emu: out-of-bounds global memory access at %p: %zu bytes past the end of a %zu-byte cudaMalloc allocation at %p",
                            info->si_addr, size_t(a - (start + r.user)), r.user, reinterpret_cast<void*>(start));
      if (b) n += std::snprintf(msg + n, sizeof msg - n, " in kernel %s, block %u,%u,%u, thread %u", b->kernel, b->bid.x, b->bid.y, b->bid.z, b->fibers[b->cur].linear);
      n += std::snprintf(msg + n, sizeof msg - n, "\n");
      if (write(2, msg, size_t(n)) < 0) {}
      _exit(3);
    }
  }
  // A fault inside an emulated kernel that is not at a guard page (a null or wild pointer): say
  // where, then stop, as compute-sanitizer would.
  if (const lfc_emu::Block* b = lfc_emu::block()) {
    char msg[512];
    int n = std::snprintf(msg, sizeof msg, "lfc_emu: invalid memory access at %p in kernel %s, block %u,%u,%u, thread %u\n", info->si_addr, b->kernel,
                          b->bid.x, b->bid.y, b->bid.z, b->fibers[b->cur].linear);
    if (write(2, msg, size_t(n)) < 0) {}
    _exit(3);
  }
  // Not ours: hand the fault to the previous handler (re-raised on return with it installed).
  sigaction(SIGSEGV, &g_prev_segv, nullptr);
  g_handler = false;
  (void)sig; (void)uctx;
}

void install_segv() {
  if (g_handler) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_prev_segv);
  g_handler = true;
}
CUstream_st* stream_of(cudaStream_t s) { return s ? s : &g_default_stream; }

// Bytes available from p to the end of its cudaMalloc allocation, or SIZE_MAX if p is not in one.
size_t room(const void* p) {
  auto& m = allocations();
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return SIZE_MAX;
  --it;
  if (a >= it->first + it->second) return SIZE_MAX;
  return it->first + it->second - a;
}

bool record(cudaStream_t s, std::function<void()>&& op) {
  CUstream_st* st = stream_of(s);
  if (!st->capturing) return false;
  st->graph->ops.push_back(std::move(op));
  return true;
}

void install_segv();
struct InstallHook {
  InstallHook() {
    lfc_emu::launch_hook() = &record;
    install_segv();
  }
} install_hook;

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
}  // namespace

extern "C" {
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (emulator)";
    case cudaErrorMemoryAllocation: return "out of memory (emulator)";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer (emulator)";
    case cudaErrorStreamCaptureInvalidated: return "operation not permitted when stream is capturing (emulator)";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream (emulator)";
    default: return "cuda error (emulator)";
  }
}
const char* cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulator"; }
}

cudaError_t cudaGetLastError() { cudaError_t e = g_last; g_last = cudaSuccess; return e; }
cudaError_t cudaPeekAtLastError() { return g_last; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int* v, enum cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *v = 132; return cudaSuccess;  // an H100 SXM's SM count
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = 227 * 1024; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; return cudaSuccess;
    default: *v = 0; return cudaSuccess;
  }
}
cudaError_t cudaFuncSetAttribute(const void*, enum cudaFuncAttribute, int) { return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t* free_b, size_t* total) { *free_b = size_t(16) << 30; *total = size_t(16) << 30; return cudaSuccess; }

cudaError_t cudaMalloc(void** p, size_t n) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t user = (n + 15) / 16 * 16;
  size_t body = (user + page - 1) / page * page;
  size_t len = body + page;
  char* base = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) return set(cudaErrorMemoryAllocation);
  char* guard = base + body;
  if (mprotect(guard, page, PROT_NONE) != 0) { munmap(base, len); return set(cudaErrorMemoryAllocation); }
  char* start = guard - user;
  std::memset(start, 0xcd, user);  // poison: fresh device memory is not zero
  install_segv();
  regions()[reinterpret_cast<uintptr_t>(start)] = Region{base, len, guard, n};
  allocations()[reinterpret_cast<uintptr_t>(start)] = n;
  *p = start;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto& m = allocations();
  auto it = m.find(reinterpret_cast<uintptr_t>(p));
  if (it == m.end()) return set(cudaErrorInvalidDevicePointer);
  m.erase(it);
  auto r = regions().find(reinterpret_cast<uintptr_t>(p));
  if (r != regions().end()) {
    munmap(r->second.base, r->second.len);
    regions().erase(r);
  }
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t n) { *p = std::malloc(n ? n : 1); return *p ? cudaSuccess : set(cudaErrorMemoryAllocation); }
cudaError_t cudaFreeHost(void* p) { std::free(p); return cudaSuccess; }

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, enum cudaMemcpyKind) {
  if (n > room(dst) || n > room(src)) return set(cudaErrorInvalidValue);
  if (n) std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
  if (n > room(dst) || n > room(src)) return set(cudaErrorInvalidValue);
  if (record(s, [=] { std::memmove(dst, src, n); })) return cudaSuccess;
  return cudaMemcpy(dst, src, n, kind);
}
cudaError_t cudaMemset(void* p, int v, size_t n) {
  if (n > room(p)) return set(cudaErrorInvalidValue);
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t s) {
  if (n > room(p)) return set(cudaErrorInvalidValue);
  if (record(s, [=] { std::memset(p, v, n); })) return cudaSuccess;
  return cudaMemset(p, v, n);
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { *s = new CUstream_st(); return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s && s->capturing) return set(cudaErrorStreamCaptureUnmatched);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return stream_of(s)->capturing ? set(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = new CUevent_st(); return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (record(s, [=] { e->ms = now_ms(); })) return cudaSuccess;
  e->ms = now_ms();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) { *ms = float(b->ms - a->ms); return cudaSuccess; }

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode) {
  CUstream_st* st = stream_of(s);
  if (st->capturing) return set(cudaErrorStreamCaptureUnsupported);
  st->capturing = true;
  st->graph = new CUgraph_st();
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  CUstream_st* st = stream_of(s);
  if (!st->capturing) return set(cudaErrorStreamCaptureUnmatched);
  st->capturing = false;
  *g = st->graph;
  st->graph = nullptr;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus* st) {
  *st = stream_of(s)->capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  if (!g) return set(cudaErrorInvalidValue);
  *e = new CUgraphExec_st{g->ops};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  if (!e) return set(cudaErrorInvalidValue);
  if (stream_of(s)->capturing) return set(cudaErrorStreamCaptureUnsupported);
  for (auto& op : e->ops) op();
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { delete e; return cudaSuccess; }
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
