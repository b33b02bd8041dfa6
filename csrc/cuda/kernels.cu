// CUDA kernels of the Bregman activation: the per-element math of csrc/bregman_math.h (shared with the CPU kernels),
// 16-byte vector loads/stores when every pointer is 16-byte aligned, a scalar tail, 64-bit indices, a grid-stride
// loop. fp16/bf16 are computed in float and rounded once; fp64 in double. Only CUDA headers: no torch here.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "../bregman_math.h"
#include "launch.h"

namespace bregman_kernels::cuda {
namespace {

namespace bm = bregman_math;

// Storage type ↔ compute type.
template <class S>
struct Conv {
  using T = S;
  static __device__ __forceinline__ T load(S v) { return v; }
  static __device__ __forceinline__ S store(T v) { return v; }
};
template <>
struct Conv<__half> {
  using T = float;
  static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};
template <>
struct Conv<__nv_bfloat16> {
  using T = float;
  static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

// 16 bytes of storage elements, loaded and stored as one vector.
template <class S>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(S);
  S v[N];
};

constexpr int kThreads = 256;

template <int ACT, class S>
__device__ __forceinline__ S fwd1(S x, S z, const Params& prm) {
  using C = Conv<S>;
  using T = typename C::T;
  return C::store(bm::forward<ACT>(C::load(x), C::load(z), static_cast<T>(prm.lo), static_cast<T>(prm.hi),
                                   static_cast<T>(prm.param)));
}

template <int ACT, class S>
__device__ __forceinline__ void bwd1(S g, S x, S z, const Params& prm, S& gx, S& gz) {
  using C = Conv<S>;
  using T = typename C::T;
  T dx, dz;
  bm::backward<ACT>(C::load(g), C::load(x), C::load(z), static_cast<T>(prm.lo), static_cast<T>(prm.hi),
                    static_cast<T>(prm.param), dx, dz);
  gx = C::store(dx);
  gz = C::store(dz);
}

template <int ACT, class S>
__global__ void __launch_bounds__(kThreads) fwd_kernel(const S* __restrict__ x, const S* __restrict__ z,
                                                       S* __restrict__ y, int64_t n, Params prm, bool vec) {
  using P = Pack<S>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    // whole 16-byte packs
    const int64_t packs = n / P::N;
    for (int64_t k = i; k < packs; k += stride) {
      const P px = reinterpret_cast<const P*>(x)[k], pz = reinterpret_cast<const P*>(z)[k];
      P py;
#pragma unroll
      for (int j = 0; j < P::N; ++j) py.v[j] = fwd1<ACT>(px.v[j], pz.v[j], prm);
      reinterpret_cast<P*>(y)[k] = py;
    }
    done = packs * P::N;
  }
  // scalar tail (or everything when unaligned)
  for (int64_t k = done + i; k < n; k += stride) y[k] = fwd1<ACT>(x[k], z[k], prm);
}

template <int ACT, class S>
__global__ void __launch_bounds__(kThreads) bwd_kernel(const S* __restrict__ g, const S* __restrict__ x,
                                                       const S* __restrict__ z, S* __restrict__ gx,
                                                       S* __restrict__ gz, int64_t n, Params prm, bool vec) {
  using P = Pack<S>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / P::N;
    for (int64_t k = i; k < packs; k += stride) {
      const P pg = reinterpret_cast<const P*>(g)[k], px = reinterpret_cast<const P*>(x)[k],
              pz = reinterpret_cast<const P*>(z)[k];
      P qx, qz;
#pragma unroll
      for (int j = 0; j < P::N; ++j) bwd1<ACT>(pg.v[j], px.v[j], pz.v[j], prm, qx.v[j], qz.v[j]);
      reinterpret_cast<P*>(gx)[k] = qx;
      reinterpret_cast<P*>(gz)[k] = qz;
    }
    done = packs * P::N;
  }
  for (int64_t k = done + i; k < n; k += stride) bwd1<ACT>(g[k], x[k], z[k], prm, gx[k], gz[k]);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Blocks for n elements: enough to fill the GPU several times over, grid-stride beyond that.
unsigned blocks_for(int64_t n, int64_t per_thread) {
  static int sms[64] = {0};
  int dev = 0;
  cudaGetDevice(&dev);
  int& count = sms[dev & 63];
  if (count == 0 && cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) count = 132;
  const int64_t work = (n + per_thread - 1) / per_thread;
  const int64_t want = (work + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(count) * 16;
  return static_cast<unsigned>(want < cap ? (want > 0 ? want : 1) : cap);
}

template <class S>
cudaError_t fwd_typed(int act, const void* x, const void* z, void* y, int64_t n, Params prm, cudaStream_t s) {
  const bool vec = aligned16(x) && aligned16(z) && aligned16(y);
  const unsigned blocks = blocks_for(n, vec ? Pack<S>::N : 1);
  const S* px = static_cast<const S*>(x);
  const S* pz = static_cast<const S*>(z);
  S* py = static_cast<S*>(y);
  switch (act) {
#define BM_CASE(A) \
  case A: fwd_kernel<A, S><<<blocks, kThreads, 0, s>>>(px, pz, py, n, prm, vec); break;
    BM_CASE(0) BM_CASE(1) BM_CASE(2) BM_CASE(3) BM_CASE(4) BM_CASE(5) BM_CASE(6) BM_CASE(7) BM_CASE(8)
#undef BM_CASE
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <class S>
cudaError_t bwd_typed(int act, const void* g, const void* x, const void* z, void* gx, void* gz, int64_t n,
                      Params prm, cudaStream_t s) {
  const bool vec = aligned16(g) && aligned16(x) && aligned16(z) && aligned16(gx) && aligned16(gz);
  const unsigned blocks = blocks_for(n, vec ? Pack<S>::N : 1);
  const S* pg = static_cast<const S*>(g);
  const S* px = static_cast<const S*>(x);
  const S* pz = static_cast<const S*>(z);
  S* qx = static_cast<S*>(gx);
  S* qz = static_cast<S*>(gz);
  switch (act) {
#define BM_CASE(A) \
  case A: bwd_kernel<A, S><<<blocks, kThreads, 0, s>>>(pg, px, pz, qx, qz, n, prm, vec); break;
    BM_CASE(0) BM_CASE(1) BM_CASE(2) BM_CASE(3) BM_CASE(4) BM_CASE(5) BM_CASE(6) BM_CASE(7) BM_CASE(8)
#undef BM_CASE
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_fwd(DType dtype, int act, const void* x, const void* z, void* y, int64_t n, Params prm,
                       cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  switch (dtype) {
    case DType::F32: return fwd_typed<float>(act, x, z, y, n, prm, stream);
    case DType::F64: return fwd_typed<double>(act, x, z, y, n, prm, stream);
    case DType::F16: return fwd_typed<__half>(act, x, z, y, n, prm, stream);
    case DType::BF16: return fwd_typed<__nv_bfloat16>(act, x, z, y, n, prm, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_bwd(DType dtype, int act, const void* g, const void* x, const void* z, void* gx, void* gz,
                       int64_t n, Params prm, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  switch (dtype) {
    case DType::F32: return bwd_typed<float>(act, g, x, z, gx, gz, n, prm, stream);
    case DType::F64: return bwd_typed<double>(act, g, x, z, gx, gz, n, prm, stream);
    case DType::F16: return bwd_typed<__half>(act, g, x, z, gx, gz, n, prm, stream);
    case DType::BF16: return bwd_typed<__nv_bfloat16>(act, g, x, z, gx, gz, n, prm, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace bregman_kernels::cuda
