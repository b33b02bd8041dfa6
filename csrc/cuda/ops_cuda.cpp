// CUDA implementations of bregman_kernels::fused_fwd / fused_bwd and the Python module bregman_kernels._C_cuda.
// Dense inputs with equal strides run over their storage; any other layout runs on contiguous copies (a documented
// copy: transposed, sliced or expanded inputs, e.g. the expanded grad of y.sum().backward()) whose result is copied
// into the output of torch.empty_like's layout. Kernels go to the current stream under the inputs' device guard.
#include <Python.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "launch.h"

namespace bregman_kernels::cuda {
namespace {

DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::F32;
    case at::kDouble: return DType::F64;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    default: TORCH_CHECK(false, "bregman_kernels (cuda): unsupported dtype ", t.scalar_type(),
                         "; expected float32, float64, float16 or bfloat16");
  }
}

void check_inputs(const char* op, const at::Tensor& x, const at::Tensor& z, int64_t act) {
  TORCH_CHECK(x.sizes() == z.sizes(), op, ": x and z must have one shape, got ", x.sizes(), " and ", z.sizes());
  TORCH_CHECK(x.scalar_type() == z.scalar_type(), op, ": x and z must have one dtype");
  TORCH_CHECK(x.is_cuda() && z.device() == x.device(), op, ": x and z must be on one CUDA device, got ", x.device(),
              " and ", z.device());
  TORCH_CHECK(act >= 0 && act < 9, op, ": unknown activation code ", act);
}

// Storage of every tensor is dense and laid out alike: the kernels may run over it as one flat array.
bool same_dense_layout(std::initializer_list<const at::Tensor*> ts) {
  const at::Tensor& first = **ts.begin();
  if (!first.is_non_overlapping_and_dense()) return false;
  for (const at::Tensor* t : ts)
    if (t->strides() != first.strides()) return false;
  return true;
}

at::Tensor fused_fwd_cuda(const at::Tensor& x, const at::Tensor& z, int64_t act, double param, double lo,
                          double hi) {
  check_inputs("fused_fwd", x, z, act);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor y = at::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return y;
  const Params prm{lo, hi, param};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  if (same_dense_layout({&x, &z, &y})) {
    C10_CUDA_CHECK(launch_fwd(dtype_of(x), static_cast<int>(act), x.const_data_ptr(), z.const_data_ptr(),
                              y.mutable_data_ptr(), n, prm, stream));
    return y;
  }
  const at::Tensor xc = x.contiguous(), zc = z.contiguous();
  at::Tensor yc = y.is_contiguous() ? y : at::empty(x.sizes(), x.options());
  C10_CUDA_CHECK(launch_fwd(dtype_of(x), static_cast<int>(act), xc.const_data_ptr(), zc.const_data_ptr(),
                            yc.mutable_data_ptr(), n, prm, stream));
  if (!yc.is_same(y)) y.copy_(yc);
  return y;
}

std::tuple<at::Tensor, at::Tensor> fused_bwd_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& z,
                                                  int64_t act, double param, double lo, double hi) {
  check_inputs("fused_bwd", x, z, act);
  TORCH_CHECK(grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type() && grad.device() == x.device(),
              "fused_bwd: grad must match x in shape, dtype and device");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor gx = at::empty_like(x), gz = at::empty_like(z);
  const int64_t n = x.numel();
  if (n == 0) return {gx, gz};
  const Params prm{lo, hi, param};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  if (same_dense_layout({&grad, &x, &z, &gx, &gz})) {
    C10_CUDA_CHECK(launch_bwd(dtype_of(x), static_cast<int>(act), grad.const_data_ptr(), x.const_data_ptr(),
                              z.const_data_ptr(), gx.mutable_data_ptr(), gz.mutable_data_ptr(), n, prm, stream));
    return {gx, gz};
  }
  const at::Tensor gc = grad.contiguous(), xc = x.contiguous(), zc = z.contiguous();
  at::Tensor gxc = gx.is_contiguous() ? gx : at::empty(x.sizes(), x.options());
  at::Tensor gzc = gz.is_contiguous() ? gz : at::empty(x.sizes(), x.options());
  C10_CUDA_CHECK(launch_bwd(dtype_of(x), static_cast<int>(act), gc.const_data_ptr(), xc.const_data_ptr(),
                            zc.const_data_ptr(), gxc.mutable_data_ptr(), gzc.mutable_data_ptr(), n, prm, stream));
  if (!gxc.is_same(gx)) gx.copy_(gxc);
  if (!gzc.is_same(gz)) gz.copy_(gzc);
  return {gx, gz};
}

}  // namespace
}  // namespace bregman_kernels::cuda

TORCH_LIBRARY_IMPL(bregman_kernels, CUDA, m) {
  m.impl("fused_fwd", &bregman_kernels::cuda::fused_fwd_cuda);
  m.impl("fused_bwd", &bregman_kernels::cuda::fused_bwd_cuda);
}

namespace {
PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C_cuda", "CUDA kernels of bregman_kernels (registered with torch).",
                      -1, nullptr};
}  // namespace

PyMODINIT_FUNC PyInit__C_cuda() { return PyModule_Create(&module); }
