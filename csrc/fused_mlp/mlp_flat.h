// CPU kernels of the flat fused-MLP ops (mlp_cpu.cpp), shared with the training-step op (mlp_train.cpp).
// params: every hidden parameter in one contiguous tensor, per layer [W (n_out·n_in), b (n_out), R (n_out·n_in,
// offset layers only)]; hs: the hidden states h_1 … h_{L−1} feature-major, as saved by the forward.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace bregman_kernels::mlp {

// (h_L (B, n_L), hs)
std::tuple<at::Tensor, at::Tensor> mlp_flat_fwd_cpu(const at::Tensor& x, const at::Tensor& params,
                                                    at::IntArrayRef widths, at::IntArrayRef r_layers, int64_t mode,
                                                    int64_t act, double param, double lo, double hi);

// (∂L/∂x, ∂L/∂params in the flat layout) from grad = ∂L/∂h_L
std::tuple<at::Tensor, at::Tensor> mlp_flat_bwd_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                    const at::Tensor& hs, const at::Tensor& params,
                                                    at::IntArrayRef widths, at::IntArrayRef r_layers, int64_t mode,
                                                    int64_t act, double param, double lo, double hi);

}  // namespace bregman_kernels::mlp
