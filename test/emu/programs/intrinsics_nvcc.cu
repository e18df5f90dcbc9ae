// nvcc compile check of every GPU-branch intrinsic of lfc_intrinsics.cuh (the PTX must assemble
// for sm_80 and sm_90a). Nothing runs: no GPU here. test/emu/kernels.test.ts compiles it.
#include "lfc_intrinsics.cuh"

// sm_90a wgmma of one N: A and B from descriptors (bf16, f16) and A from registers, one group.
template <int N>
__device__ __forceinline__ float wgmma_all(uint64_t da, uint64_t db, const uint32_t (&a)[4]) {
  float d[N / 2];
  for (int i = 0; i < N / 2; ++i) d[i] = 0.f;
  lfc::wgmma_fence();
  lfc::wgmma_m64nNk16_bf16<N>(d, da, db, false);
  lfc::wgmma_m64nNk16_f16<N>(d, da, db, true);
  lfc::wgmma_m64nNk16_bf16_rs<N>(d, a, db, true);
  lfc::wgmma_m64nNk16_f16_rs<N>(d, a, db, true);
  lfc::wgmma_commit_group();
  lfc::wgmma_wait_group<1>();
  lfc::wgmma_wait_group<0>();
  float s = 0.f;
  for (int i = 0; i < N / 2; ++i) s += d[i];
  return s;
}

// Host side of TMA: the tensor map of a 64x64 bf16 tile with 128B swizzle.
bool host_tensor_map(lfc::TensorMap* map, const void* global) {
  return lfc::make_tensor_map_2d(map, global, 2, 64, 64, 128, 64, 64, lfc::Swizzle::B128);
}

__global__ void every_intrinsic(const int* gsrc, float* fout, int* iout) {
  __shared__ __align__(16) uint16_t tile[32 * 8];
  __shared__ __align__(16) int buf[32 * 8];
  __shared__ int scount;
  unsigned lane = lfc::lane_id(), w = lfc::warp_id();
  tile[lane * 8] = uint16_t(lane);
  lfc::cp_async<4>(buf + lane * 8, gsrc + lane * 8);
  lfc::cp_async<8>(buf + lane * 8 + 2, gsrc + lane * 8 + 2);
  lfc::cp_async<16>(buf + lane * 8 + 4, gsrc + lane * 8 + 4);
  lfc::cp_async_commit();
  lfc::cp_async_wait<1>();
  lfc::cp_async_wait<0>();
  __syncthreads();
  uint32_t r1[1], r2[2], r4[4], t1[1], t2[2], t4[4];
  const void* p = tile + lane * 8;
  lfc::ldmatrix_x1(r1, p);
  lfc::ldmatrix_x2(r2, p);
  lfc::ldmatrix_x4(r4, p);
  lfc::ldmatrix_x1_trans(t1, p);
  lfc::ldmatrix_x2_trans(t2, p);
  lfc::ldmatrix_x4_trans(t4, p);
  uint32_t a[4] = {r4[0] ^ t1[0], r4[1] ^ t2[0], r4[2] ^ t2[1], r4[3] ^ r1[0]};
  uint32_t b[2] = {r2[0] ^ t4[0], r2[1] ^ t4[3]};
  float c[4] = {fout[0], fout[1], fout[2], fout[3]}, d[4], e[4];
  lfc::mma_m16n8k16_f16(d, a, b, c);
  lfc::mma_m16n8k16_bf16(e, a, b, d);
  int32_t ci[4] = {buf[lane], buf[lane + 1], 0, 0}, di[4];
  lfc::mma_m16n8k32_s8(di, a, b, ci);
  float f8[4];
  lfc::mma_m16n8k32_e4m3(f8, a, b, e);
  __shared__ uint64_t mbar;
  if (threadIdx.x == 0) lfc::mbarrier_init(&mbar, blockDim.x);
  __syncthreads();
  lfc::fence_proxy_async();
  if (threadIdx.x == 0) lfc::mbarrier_arrive_expect_tx(&mbar, 0);
  else lfc::mbarrier_arrive(&mbar);
  while (!lfc::mbarrier_try_wait_parity(&mbar, 0)) {}
  lfc::setmaxnreg_inc<240>();
  // sm_90a: TMA 2D tile (tensor map in global memory) and 1D bulk copy onto one mbarrier, then
  // wgmma of every N reading the tile through 128B / 64B swizzle descriptors.
  __shared__ __align__(1024) uint16_t wtile[64 * 64 + 256 * 16];
  __shared__ uint64_t tbar;
  if (threadIdx.x == 0) lfc::mbarrier_init(&tbar, 1);
  __syncthreads();
  const lfc::TensorMap* map = reinterpret_cast<const lfc::TensorMap*>(gsrc + 64);
  if (threadIdx.x == 0) {
    lfc::mbarrier_arrive_expect_tx(&tbar, 64 * 64 * 2 + 256);
    lfc::tma_load_2d(wtile, map, int(lane), int(w), &tbar);
    lfc::bulk_load(wtile + 64 * 64, gsrc + 128, 256, &tbar);
  }
  while (!lfc::mbarrier_try_wait_parity(&tbar, 0)) {}
  uint64_t da = lfc::make_smem_desc(wtile, 16, 1024, lfc::Swizzle::B128);
  uint64_t db = lfc::make_smem_desc(wtile + 64 * 64, 16, 512, lfc::Swizzle::B64);
  uint64_t dn = lfc::make_smem_desc(wtile + 64 * 64, 128, 256, lfc::Swizzle::None);
  uint64_t d32 = lfc::make_smem_desc(wtile + 64 * 64, 16, 256, lfc::Swizzle::B32);
  float wg = wgmma_all<8>(da, db, a) + wgmma_all<16>(da, dn, a) + wgmma_all<32>(da, d32, a) + wgmma_all<64>(da, db, a) +
             wgmma_all<128>(dn, db, a) + wgmma_all<256>(da, db, a);
  float s = e[0] + e[1] + e[2] + e[3] + f8[0] + wg;
  s += __shfl_sync(0xffffffffu, s, 3) + __shfl_up_sync(0xffffffffu, s, 1) + __shfl_down_sync(0xffffffffu, s, 2) +
       __shfl_xor_sync(0xffffffffu, s, 4);
  unsigned bal = __ballot_sync(0xffffffffu, s > 0);
  if (threadIdx.x == 0) scount = 0;
  lfc::named_barrier_sync(1 + w / 2, 64);
  atomicAdd(&scount, int(bal) + __any_sync(0xffffffffu, s < 0) + __all_sync(0xffffffffu, s == 0));
  __syncthreads();
  atomicAdd(fout + 4, s);
  atomicAdd(iout, di[0] + di[3] + scount);
}
