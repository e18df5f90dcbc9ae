// lfc_emu_runtime.cpp: the CUDA runtime API calls lfc's launcher and kernels make, defined on the CPU
// for the emulator build (g++ -DLFC_EMU). Declarations come from CUDA's own cuda_runtime_api.h, so
// the launcher compiles unchanged; "device" memory is host memory, every stream is synchronous,
// and stream capture records kernel launches, copies and memsets into a graph that
// cudaGraphLaunch replays (issue 6 item 4).
//
// Checked here as the real runtime would: frees of unknown pointers, copies that overrun an
// allocation made by cudaMalloc (when the pointer is one), launches of a destroyed graph,
// unbalanced capture. Errors are returned as cudaError_t and kept for cudaGetLastError.
#include "lfc_intrinsics.cuh"
#include <cuda_runtime_api.h>
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

struct InstallHook {
  InstallHook() { lfc_emu::launch_hook() = &record; }
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
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256 + 256);
  if (!*p) return set(cudaErrorMemoryAllocation);
  std::memset(*p, 0xcd, n);  // poison: fresh device memory is not zero
  allocations()[reinterpret_cast<uintptr_t>(*p)] = n;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto& m = allocations();
  auto it = m.find(reinterpret_cast<uintptr_t>(p));
  if (it == m.end()) return set(cudaErrorInvalidDevicePointer);
  m.erase(it);
  std::free(p);
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
