// Runs kernels.cuh on the emulator against plain references. Prints PASS/FAIL lines; exit 1 on FAIL.
#include "kernels.cuh"
#include <cmath>
#include <random>
static int failures = 0;
static void check(bool ok, const char* name, double a, double b) {
  std::printf("%s %s got=%.6f want=%.6f\n", ok ? "PASS" : "FAIL", name, a, b);
  if (!ok) ++failures;
}
int main() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  {  // block reduce: 1000 elements, 3 blocks of 96 threads (3 warps each)
    std::vector<float> x(1000);
    double want = 0;
    for (auto& v : x) { v = U(rng); want += v; }
    float out = 0;
    LFC_LAUNCH(block_reduce_sum, dim3(3), dim3(96), 0, x.data(), int(x.size()), &out);
    check(std::fabs(out - want) < 1e-3, "block_reduce_sum", out, want);
  }
  {  // tile GEMM
    std::vector<__half> A(256), Bt(128);
    std::vector<float> Af(256), Bf(128), C(128);
    for (int i = 0; i < 256; ++i) { A[i] = __float2half(U(rng)); Af[i] = __half2float(A[i]); }
    for (int i = 0; i < 128; ++i) { Bt[i] = __float2half(U(rng)); Bf[i] = __half2float(Bt[i]); }
    LFC_LAUNCH(tile_gemm_16x8x16, dim3(1), dim3(32), 0, A.data(), Bt.data(), C.data());
    double maxerr = 0;
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 8; ++n) {
        double ref = 0;
        for (int k = 0; k < 16; ++k) ref += double(Af[m * 16 + k]) * Bf[n * 16 + k];
        maxerr = std::fmax(maxerr, std::fabs(ref - C[m * 8 + n]));
      }
    check(maxerr < 1e-4, "tile_gemm_16x8x16 max_abs_err", maxerr, 0);
  }
  return failures ? 1 : 0;
}
