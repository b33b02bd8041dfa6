// CPU kernel of bregman_kernels::mlp_flat_ce_grad (schema in Python: bregman_kernels/fused_mlp_flat.py): the loss
// and every gradient of one training step of a flat fused MLP (hidden stack + linear output layer) under mean
// cross-entropy, in one call and without the autograd engine. Per step the cost is the two whole-network kernels
// plus a few small allocations: no autograd graph, no per-op dispatch.
//
//   h = hidden stack(x)                        mlp_flat_fwd_cpu (saves hs)
//   z = h·Wᵀ + b                               logits (B, C)
//   loss = (1/B) Σ_n [logsumexp(z_n) − z_n,t]  computed as m + log Σ_c exp(z_c − m), m = max_c z_c
//   dz = (softmax(z) − onehot(t)) / B          ∂loss/∂z
//   ∂W = dzᵀ·h, ∂b = Σ_n dz_n, ∂h = dz·W       output layer
//   ∂params                                    mlp_flat_bwd_cpu(∂h)
#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "mlp_flat.h"

namespace bregman_kernels::mlp {
namespace {

using Out4 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
constexpr const char* kOp = "mlp_flat_ce_grad";

at::Tensor empty_like_cpu(at::IntArrayRef shape, at::ScalarType dtype, bool zero) {
  at::Tensor t = at::detail::empty_cpu(shape, dtype, false, std::nullopt);  // no dispatch
  if (zero && t.numel() > 0) std::memset(t.data_ptr(), 0, t.nbytes());
  return t;
}

// The cross-entropy head for h (B, K) contiguous: writes gh (B, K), gw (C, K) and gb (C) (batch sums in double);
// returns the summed loss (in double).
template <class T>
double ce_head(const T* h, int64_t B, int64_t K, const T* w, const T* b, int64_t C, const int64_t* target,
               int64_t st, T* gh, T* gw, T* gb) {
  std::vector<T> z(C);
  std::vector<double> agw(C * K, 0.0), agb(C, 0.0);  // ∂W, ∂b summed over the batch in double
  const T inv_b = T(1) / static_cast<T>(B);
  double total = 0.0;
  for (int64_t n = 0; n < B; ++n) {
    const T* hn = h + n * K;
    const int64_t t = target[n * st];
    TORCH_CHECK(t >= 0 && t < C, kOp, ": target ", t, " (row ", n, ") is out of range [0, ", C, ")");
    // z_c = b_c + Σ_k W[c,k]·h[k];  m = max_c z_c (NaN propagates: !(z ≤ m))
    T m = -INFINITY;
    for (int64_t c = 0; c < C; ++c) {
      T acc = b[c];
      for (int64_t k = 0; k < K; ++k) acc += w[c * K + k] * hn[k];
      z[c] = acc;
      if (!(acc <= m)) m = acc;
    }
    // s = Σ_c exp(z_c − m);  loss_n = m + log s − z_t
    T s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(z[c] - m);
    total += static_cast<double>(m + std::log(s) - z[t]);
    // dz_c = (exp(z_c − m)/s − [c = t]) / B;  ∂b += dz;  ∂W[c,:] += dz_c·h;  ∂h = Σ_c dz_c·W[c,:]
    T* ghn = gh + n * K;
    for (int64_t k = 0; k < K; ++k) ghn[k] = 0;
    for (int64_t c = 0; c < C; ++c) {
      const T d = (std::exp(z[c] - m) / s - (c == t ? T(1) : T(0))) * inv_b;
      agb[c] += static_cast<double>(d);
      for (int64_t k = 0; k < K; ++k) {
        agw[c * K + k] += static_cast<double>(d) * static_cast<double>(hn[k]);
        ghn[k] += d * w[c * K + k];
      }
    }
  }
  for (int64_t i = 0; i < C * K; ++i) gw[i] = static_cast<T>(agw[i]);
  for (int64_t c = 0; c < C; ++c) gb[c] = static_cast<T>(agb[c]);
  return total;
}

Out4 mlp_flat_ce_grad_cpu(const at::Tensor& x, const at::Tensor& target, const at::Tensor& params,
                          const at::Tensor& out_w, const at::Tensor& out_b, at::IntArrayRef widths,
                          at::IntArrayRef r_layers, int64_t mode, int64_t act, double param, double lo, double hi) {
  TORCH_CHECK(x.dim() == 2 && x.size(0) >= 1, kOp, ": x must be (batch, features) with batch ≥ 1, got ",
              x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, kOp,
              ": x must be float32 or float64, got ", x.scalar_type());
  const int64_t B = x.size(0), K = widths.empty() ? -1 : widths.back();
  TORCH_CHECK(target.scalar_type() == at::kLong && target.dim() == 1 && target.size(0) == B &&
                  target.device().is_cpu(), kOp, ": target must be a 1-D int64 CPU tensor of ", B,
              " class indices, got ", target.scalar_type(), " of shape ", target.sizes());
  TORCH_CHECK(out_w.dim() == 2 && out_w.size(0) >= 1 && out_w.size(1) == K, kOp, ": out_w must be (classes, ", K,
              "), got ", out_w.sizes());
  const int64_t C = out_w.size(0);
  TORCH_CHECK(out_b.dim() == 1 && out_b.size(0) == C, kOp, ": out_b must be (", C, "), got ", out_b.sizes());
  for (const at::Tensor* t : {&out_w, &out_b})
    TORCH_CHECK(t->scalar_type() == x.scalar_type() && t->device().is_cpu(), kOp,
                ": out_w and out_b must be CPU tensors of x's dtype");
  // hidden stack forward (validates x, params, widths and the rest)
  auto [h, hs] = mlp_flat_fwd_cpu(x, params, widths, r_layers, mode, act, param, lo, hi);
  const at::Tensor w = out_w.contiguous(), b = out_b.contiguous();
  at::Tensor gh = empty_like_cpu({B, K}, x.scalar_type(), false);
  at::Tensor gw = empty_like_cpu({C, K}, x.scalar_type(), true);
  at::Tensor gb = empty_like_cpu({C}, x.scalar_type(), true);
  at::Tensor loss = empty_like_cpu({}, x.scalar_type(), false);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), kOp, [&] {
    using T = scalar_t;
    const double total = ce_head<T>(h.data_ptr<T>(), B, K, w.data_ptr<T>(), b.data_ptr<T>(), C,
                                    target.data_ptr<int64_t>(), target.stride(0), gh.data_ptr<T>(),
                                    gw.data_ptr<T>(), gb.data_ptr<T>());
    *loss.data_ptr<T>() = static_cast<T>(total / static_cast<double>(B));
  });
  auto [gx, gp] = mlp_flat_bwd_cpu(gh, x, hs, params, widths, r_layers, mode, act, param, lo, hi);
  return {loss, gp, gw, gb};
}

// Autograd key (CPU and CUDA): the outputs are gradients, not functions to differentiate. Runs the kernel below
// autograd so that no graph is recorded even when the parameters require grad.
Out4 mlp_flat_ce_grad_autograd(const at::Tensor& x, const at::Tensor& target, const at::Tensor& params,
                               const at::Tensor& out_w, const at::Tensor& out_b, at::IntArrayRef widths,
                               at::IntArrayRef r_layers, int64_t mode, int64_t act, double param, double lo,
                               double hi) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("bregman_kernels::mlp_flat_ce_grad", "")
                       .typed<Out4(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                   const at::Tensor&, at::IntArrayRef, at::IntArrayRef, int64_t, int64_t, double,
                                   double, double)>();
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(x, target, params, out_w, out_b, widths, r_layers, mode, act, param, lo, hi);
}

}  // namespace
}  // namespace bregman_kernels::mlp

TORCH_LIBRARY_IMPL(bregman_kernels, CPU, m) {
  m.impl("mlp_flat_ce_grad", &bregman_kernels::mlp::mlp_flat_ce_grad_cpu);
}

TORCH_LIBRARY_IMPL(bregman_kernels, Autograd, m) {
  m.impl("mlp_flat_ce_grad", &bregman_kernels::mlp::mlp_flat_ce_grad_autograd);
}
