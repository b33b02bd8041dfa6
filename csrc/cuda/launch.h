// Launchers of the CUDA kernels (kernels.cu), free of torch headers so that the .cu compiles fast.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace bregman_kernels::cuda {

enum class DType : int { F32 = 0, F64 = 1, F16 = 2, BF16 = 3 };

// Clamp bounds (in the compute type) and the activation's parameter (softplus β).
struct Params {
  double lo, hi, param;
};

// y = ρ(x + ρ⁻¹(clamp(z))) over n elements of contiguous (or equally strided, dense) storage.
cudaError_t launch_fwd(DType dtype, int act, const void* x, const void* z, void* y, int64_t n, Params prm,
                       cudaStream_t stream);

// (gx, gz) = analytic backward over n elements of contiguous (or equally strided, dense) storage.
cudaError_t launch_bwd(DType dtype, int act, const void* g, const void* x, const void* z, void* gx, void* gz,
                       int64_t n, Params prm, cudaStream_t stream);

}  // namespace bregman_kernels::cuda
