// CPU implementations of bregman_kernels::mlp_fwd / mlp_bwd and mlp_flat_fwd / mlp_flat_bwd (schemas defined in
// Python: bregman_kernels/fused_mlp.py, fused_mlp_flat.py), and the autograd of mlp_flat_fwd: all hidden layers of
// a narrow MLP in one pass forward and one pass backward over tiles of samples (mlp_vec.h). Threads: at::parallel_for over tiles; the backward gives each thread chunk its own gradient
// accumulator and sums the chunks in a fixed order.
#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "mlp_flat.h"
#include "mlp_kernels.h"

namespace bregman_kernels::mlp {
namespace {

constexpr int64_t kGrainWork = 1 << 15;  // ≈ flops per parallel task

bool cpu_has(const std::string& isa) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
#endif
  return isa == "default";
}

int rank(const std::string& isa) { return isa.rfind("avx512", 0) == 0 ? 2 : isa == "avx2" ? 1 : 0; }

// The best compiled table this CPU runs, capped by ATen's capability and BREGMAN_KERNELS_CPU_CAPABILITY.
const Table* pick_table() {
  std::string aten = at::get_cpu_capability();
  for (auto& ch : aten) ch = static_cast<char>(std::tolower(ch));
  int cap = rank(aten);
  if (const char* env = std::getenv("BREGMAN_KERNELS_CPU_CAPABILITY")) {
    std::string s(env);
    for (auto& ch : s) ch = static_cast<char>(std::tolower(ch));
    cap = std::min(cap, rank(s));
  }
  for (const Table* t : {table_avx512(), table_avx2(), table_default()})
    if (t != nullptr && cpu_has(t->name) && rank(t->name) <= cap) return t;
  return table_default();
}

const Table* table() {
  static const Table* t = pick_table();
  return t;
}

// Validated network description: contiguous parameters (kept alive here), layer table, sizes.
template <class T>
struct Plan {
  std::vector<at::Tensor> keep;
  std::vector<Layer<T>> layers;
  Net<T> net{};
  int64_t hs_rows = 0, acc_size = 0, work = 0;  // rows of the saved state, accumulator length, flops per sample
};

template <class T>
Plan<T> plan(const char* op, const at::Tensor& x, at::TensorList w, at::TensorList b, at::TensorList r,
             at::IntArrayRef r_layers, int64_t mode, int64_t act, double param, double lo, double hi) {
  const int64_t L = static_cast<int64_t>(w.size());
  TORCH_CHECK(L >= 1 && static_cast<int64_t>(b.size()) == L, op,
              ": weights and biases need one entry per hidden layer (at least one)");
  TORCH_CHECK(r.size() == r_layers.size(), op, ": one offset layer index per offset map");
  std::vector<int64_t> map_of(L, -1);  // layer -> index into r, or -1 (identity offset)
  for (size_t k = 0; k < r_layers.size(); ++k) {
    TORCH_CHECK(r_layers[k] >= 0 && r_layers[k] < L && map_of[r_layers[k]] < 0, op,
                ": offset layers must be distinct layer indices");
    map_of[r_layers[k]] = static_cast<int64_t>(k);
  }
  TORCH_CHECK(mode >= STANDARD && mode <= EUCLIDEAN, op, ": unknown mode ", mode);
  TORCH_CHECK(act >= 0 && act < kNumCodes && !(act == kPlainRelu && mode == BREGMAN), op,
              ": unknown activation code ", act, " for mode ", mode);
  TORCH_CHECK(x.dim() == 2, op, ": x must be (batch, features), got ", x.sizes());
  Plan<T> pl;
  auto take = [&](const at::Tensor& t, at::IntArrayRef shape, const char* what, int64_t l) -> const T* {
    TORCH_CHECK(t.sizes() == shape, op, ": ", what, " of layer ", l, " has shape ", t.sizes(), ", expected ", shape);
    TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device().is_cpu(), op, ": ", what, " of layer ", l,
                " must be a CPU tensor of x's dtype");
    pl.keep.push_back(t.contiguous());
    return pl.keep.back().template data_ptr<T>();
  };
  pl.keep.reserve(3 * L);
  int64_t n_in = x.size(1), max_width = n_in;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t n_out = w[l].dim() == 2 ? w[l].size(0) : -1;
    Layer<T> ly{};
    ly.n_in = n_in;
    ly.n_out = n_out;
    ly.w = take(w[l], {n_out, n_in}, "weight", l);
    ly.b = take(b[l], {n_out}, "bias", l);
    const bool identity = map_of[l] < 0;
    TORCH_CHECK(!identity || mode == STANDARD || n_in == n_out, op, ": layer ", l,
                " changes width and needs an offset map");
    TORCH_CHECK(identity || mode != STANDARD, op, ": the standard version has no offset maps");
    ly.r = identity ? nullptr : take(r[map_of[l]], {n_out, n_in}, "offset map", l);
    ly.h_row = pl.hs_rows;
    if (l > 0) pl.hs_rows += n_in;
    ly.acc = pl.acc_size;
    pl.acc_size += n_out * n_in * (ly.r ? 2 : 1) + n_out;
    pl.work += n_out * n_in * (ly.r ? 2 : 1) + 32 * n_out;
    max_width = std::max(max_width, n_out);
    pl.layers.push_back(ly);
    n_in = n_out;
  }
  pl.net = Net<T>{pl.layers.data(), L, max_width, static_cast<int>(mode), static_cast<T>(lo), static_cast<T>(hi),
                  static_cast<T>(param)};
  return pl;
}

template <class T>
int64_t tile_of(const Table* t) {
  return std::is_same_v<T, double> ? t->tile_d : t->tile_f;
}

template <class T>
FwdFn<T> fwd_of(const Table* t, int64_t act) {
  if constexpr (std::is_same_v<T, double>) return t->fwd_d[act];
  else return t->fwd_f[act];
}

template <class T>
BwdFn<T> bwd_of(const Table* t, int64_t act) {
  if constexpr (std::is_same_v<T, double>) return t->bwd_d[act];
  else return t->bwd_f[act];
}

// Tiles per parallel task: about kGrainWork flops
int64_t grain(int64_t tile, int64_t work) { return std::max<int64_t>(1, kGrainWork / std::max<int64_t>(1, tile * work)); }

#define BM_DISPATCH_MLP(TYPE, NAME, ...) AT_DISPATCH_FLOATING_TYPES(TYPE, NAME, __VA_ARGS__)

// Forward core: (h_L, hs) for a validated plan.
template <class T>
std::tuple<at::Tensor, at::Tensor> fwd_core(const Plan<T>& pl, const at::Tensor& x, int64_t act) {
  const int64_t B = x.size(0);
  at::Tensor y = at::empty({B, pl.layers.back().n_out}, x.options());
  at::Tensor hs = at::empty({pl.hs_rows, B}, x.options());
  if (B == 0) return {y, hs};
  const Table* t = table();
  const FwdFn<T> fn = fwd_of<T>(t, act);
  const int64_t ts = tile_of<T>(t), tiles = (B + ts - 1) / ts;
  const T* px = x.data_ptr<T>();
  T *py = y.data_ptr<T>(), *ph = hs.data_ptr<T>();
  at::parallel_for(0, tiles, grain(ts, pl.work), [&](int64_t t0, int64_t t1) {
    fn(pl.net, px, x.stride(0), x.stride(1), py, ph, B, t0 * ts, std::min(t1 * ts, B));
  });
  return {y, hs};
}

std::tuple<at::Tensor, at::Tensor> mlp_fwd_cpu(const at::Tensor& x, at::TensorList w, at::TensorList b,
                                               at::TensorList r, at::IntArrayRef r_layers, int64_t mode,
                                               int64_t act, double param, double lo, double hi) {
  at::Tensor y, hs;
  BM_DISPATCH_MLP(x.scalar_type(), "mlp_fwd_cpu", [&] {
    using T = scalar_t;
    std::tie(y, hs) = fwd_core<T>(plan<T>("mlp_fwd", x, w, b, r, r_layers, mode, act, param, lo, hi), x, act);
  });
  return {y, hs};
}

// Backward core: (grad_x, flat gradient in the accumulator layout of Layer::acc) and the layer table.
template <class T>
std::tuple<at::Tensor, at::Tensor> bwd_core(const Plan<T>& pl, const at::Tensor& grad, const at::Tensor& x,
                                            const at::Tensor& hs, int64_t act) {
  const int64_t B = x.size(0);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef({B, pl.layers.back().n_out}) && grad.scalar_type() == x.scalar_type()
                  && grad.device().is_cpu(), "mlp_bwd: grad must be (batch, last width) of x's dtype on the CPU");
  TORCH_CHECK(hs.sizes() == at::IntArrayRef({pl.hs_rows, B}) && hs.is_contiguous() &&
                  hs.scalar_type() == x.scalar_type(), "mlp_bwd: hs is not the state saved by mlp_fwd");
  at::Tensor gx = at::empty({B, x.size(1)}, x.options());
  const Table* t = table();
  const BwdFn<T> fn = bwd_of<T>(t, act);
  const int64_t ts = tile_of<T>(t), tiles = (B + ts - 1) / ts;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tiles / grain(ts, pl.work)));
  at::Tensor acc = at::zeros({chunks, pl.acc_size}, x.options());
  T* pa = acc.data_ptr<T>();
  const T *pg = grad.data_ptr<T>(), *px = x.data_ptr<T>(), *ph = hs.data_ptr<T>();
  T* pgx = gx.data_ptr<T>();
  if (B > 0) {
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        fn(pl.net, pg, grad.stride(0), grad.stride(1), px, x.stride(0), x.stride(1), ph, pgx, pa + c * pl.acc_size, B,
           std::min(B, c * tiles / chunks * ts), std::min(B, (c + 1) * tiles / chunks * ts));
    });
  }
  // chunk sums in a fixed order into chunk 0
  for (int64_t c = 1; c < chunks; ++c)
    for (int64_t k = 0; k < pl.acc_size; ++k) pa[k] += pa[c * pl.acc_size + k];
  return {gx, acc[0]};
}

std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>> mlp_bwd_cpu(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& hs, at::TensorList w, at::TensorList b,
    at::TensorList r, at::IntArrayRef r_layers, int64_t mode, int64_t act, double param, double lo, double hi) {
  at::Tensor gx;
  std::vector<at::Tensor> gw, gb, gr;
  BM_DISPATCH_MLP(x.scalar_type(), "mlp_bwd_cpu", [&] {
    using T = scalar_t;
    Plan<T> pl = plan<T>("mlp_bwd", x, w, b, r, r_layers, mode, act, param, lo, hi);
    auto [g, acc] = bwd_core<T>(pl, grad, x, hs, act);
    gx = g;
    const T* pa = acc.data_ptr<T>();
    auto piece = [&](int64_t off, at::IntArrayRef shape) {
      at::Tensor out = at::detail::empty_cpu(shape, x.scalar_type(), false, std::nullopt);  // no dispatch
      std::memcpy(out.data_ptr<T>(), pa + off, sizeof(T) * out.numel());
      return out;
    };
    for (const Layer<T>& ly : pl.layers) {
      gw.push_back(piece(ly.acc, {ly.n_out, ly.n_in}));
      gb.push_back(piece(ly.acc + ly.n_out * ly.n_in, {ly.n_out}));
    }
    for (int64_t l : r_layers) {  // in the order of the offsets argument
      const Layer<T>& ly = pl.layers[l];
      gr.push_back(piece(ly.acc + ly.n_out * ly.n_in + ly.n_out, {ly.n_out, ly.n_in}));
    }
  });
  return {gx, gw, gb, gr};
}

// ---- flat parameters: one tensor, per layer [W (n_out·n_in), b (n_out), R (n_out·n_in, offset layers only)] ----

// The plan of a flat parameter tensor: layer pointers straight into its data (no per-layer tensors).
template <class T>
Plan<T> plan_flat(const char* op, const at::Tensor& x, const at::Tensor& params, at::IntArrayRef widths,
                  at::IntArrayRef r_layers, int64_t mode, int64_t act, double param, double lo, double hi) {
  const int64_t L = static_cast<int64_t>(widths.size()) - 1;
  TORCH_CHECK(L >= 1 && x.dim() == 2 && x.size(1) == widths[0], op, ": x must be (batch, widths[0]) and widths ",
              "needs at least two entries");
  TORCH_CHECK(params.dim() == 1 && params.is_contiguous() && params.scalar_type() == x.scalar_type() &&
                  params.device().is_cpu(), op, ": params must be a contiguous 1-D CPU tensor of x's dtype");
  TORCH_CHECK(mode >= STANDARD && mode <= EUCLIDEAN, op, ": unknown mode ", mode);
  TORCH_CHECK(act >= 0 && act < kNumCodes && !(act == kPlainRelu && mode == BREGMAN), op,
              ": unknown activation code ", act, " for mode ", mode);
  std::vector<bool> has_r(L, false);
  for (int64_t l : r_layers) {
    TORCH_CHECK(l >= 0 && l < L && !has_r[l], op, ": offset layers must be distinct layer indices");
    has_r[l] = true;
  }
  Plan<T> pl;
  const T* base = params.data_ptr<T>();
  int64_t max_width = widths[0];
  for (int64_t l = 0; l < L; ++l) {
    const int64_t n_in = widths[l], n_out = widths[l + 1];
    TORCH_CHECK(n_out >= 1, op, ": widths must be positive");
    TORCH_CHECK(has_r[l] || mode == STANDARD || n_in == n_out, op, ": layer ", l,
                " changes width and needs an offset map");
    TORCH_CHECK(!has_r[l] || mode != STANDARD, op, ": the standard version has no offset maps");
    Layer<T> ly{};
    ly.n_in = n_in;
    ly.n_out = n_out;
    ly.acc = pl.acc_size;  // the accumulator layout is the flat layout
    ly.w = base + ly.acc;
    ly.b = ly.w + n_out * n_in;
    ly.r = has_r[l] ? ly.b + n_out : nullptr;
    ly.h_row = pl.hs_rows;
    if (l > 0) pl.hs_rows += n_in;
    pl.acc_size += n_out * n_in * (ly.r ? 2 : 1) + n_out;
    pl.work += n_out * n_in * (ly.r ? 2 : 1) + 32 * n_out;
    max_width = std::max(max_width, n_out);
    pl.layers.push_back(ly);
  }
  TORCH_CHECK(pl.acc_size == params.numel(), op, ": params has ", params.numel(), " values, the widths need ",
              pl.acc_size);
  pl.net = Net<T>{pl.layers.data(), L, max_width, static_cast<int>(mode), static_cast<T>(lo), static_cast<T>(hi),
                  static_cast<T>(param)};
  return pl;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> mlp_flat_fwd_cpu(const at::Tensor& x, const at::Tensor& params,
                                                    at::IntArrayRef widths, at::IntArrayRef r_layers, int64_t mode,
                                                    int64_t act, double param, double lo, double hi) {
  at::Tensor y, hs;
  BM_DISPATCH_MLP(x.scalar_type(), "mlp_flat_fwd_cpu", [&] {
    using T = scalar_t;
    std::tie(y, hs) = fwd_core<T>(plan_flat<T>("mlp_flat_fwd", x, params, widths, r_layers, mode, act, param, lo, hi),
                                  x, act);
  });
  return {y, hs};
}

std::tuple<at::Tensor, at::Tensor> mlp_flat_bwd_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                    const at::Tensor& hs, const at::Tensor& params,
                                                    at::IntArrayRef widths, at::IntArrayRef r_layers, int64_t mode,
                                                    int64_t act, double param, double lo, double hi) {
  at::Tensor gx, gp;
  BM_DISPATCH_MLP(x.scalar_type(), "mlp_flat_bwd_cpu", [&] {
    using T = scalar_t;
    Plan<T> pl = plan_flat<T>("mlp_flat_bwd", x, params, widths, r_layers, mode, act, param, lo, hi);
    // the accumulator layout is the flat layout: the gradient is the accumulator
    std::tie(gx, gp) = bwd_core<T>(pl, grad, x, hs, act);
    gp = gp.clone();
  });
  return {gx, gp};
}

namespace {

// Autograd of mlp_flat_fwd in C++ (no Python on the step's hot path): saves (x, hs, params), the backward is the
// mlp_flat_bwd op (itself dispatched: traceable by torch.compile).
class FlatFunction : public torch::autograd::Function<FlatFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& params, std::vector<int64_t> widths,
                                                std::vector<int64_t> r_layers, int64_t mode, int64_t act,
                                                double param, double lo, double hi) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("bregman_kernels::mlp_flat_fwd", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                   at::IntArrayRef, at::IntArrayRef, int64_t, int64_t,
                                                                   double, double, double)>();
    auto [y, hs] = op.call(x, params, widths, r_layers, mode, act, param, lo, hi);
    ctx->save_for_backward({x, hs, params});
    ctx->mark_non_differentiable({hs});
    ctx->saved_data["widths"] = widths;
    ctx->saved_data["r_layers"] = r_layers;
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["act"] = act;
    ctx->saved_data["param"] = param;
    ctx->saved_data["lo"] = lo;
    ctx->saved_data["hi"] = hi;
    return {y, hs};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("bregman_kernels::mlp_flat_bwd", "")
                         .typed<std::tuple<at::Tensor, at::Tensor>(
                             const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             at::IntArrayRef, at::IntArrayRef, int64_t, int64_t, double, double, double)>();
    auto saved = ctx->get_saved_variables();
    const auto widths = ctx->saved_data["widths"].toIntVector();
    const auto r_layers = ctx->saved_data["r_layers"].toIntVector();
    at::Tensor grad = grads[0];
    if (!grad.defined()) grad = at::zeros({saved[0].size(0), widths.back()}, saved[0].options());
    auto [gx, gp] = op.call(grad, saved[0], saved[1], saved[2], widths, r_layers, ctx->saved_data["mode"].toInt(),
                            ctx->saved_data["act"].toInt(), ctx->saved_data["param"].toDouble(),
                            ctx->saved_data["lo"].toDouble(), ctx->saved_data["hi"].toDouble());
    const at::Tensor none;
    return {ctx->needs_input_grad(0) ? gx : none, gp, none, none, none, none, none, none, none};
  }
};

std::tuple<at::Tensor, at::Tensor> mlp_flat_fwd_autograd(const at::Tensor& x, const at::Tensor& params,
                                                         at::IntArrayRef widths, at::IntArrayRef r_layers,
                                                         int64_t mode, int64_t act, double param, double lo,
                                                         double hi) {
  auto out = FlatFunction::apply(x, params, widths.vec(), r_layers.vec(), mode, act, param, lo, hi);
  return {out[0], out[1]};
}

}  // namespace
}  // namespace bregman_kernels::mlp

TORCH_LIBRARY_IMPL(bregman_kernels, CPU, m) {
  m.impl("mlp_fwd", &bregman_kernels::mlp::mlp_fwd_cpu);
  m.impl("mlp_bwd", &bregman_kernels::mlp::mlp_bwd_cpu);
  m.impl("mlp_flat_fwd", &bregman_kernels::mlp::mlp_flat_fwd_cpu);
  m.impl("mlp_flat_bwd", &bregman_kernels::mlp::mlp_flat_bwd_cpu);
}

TORCH_LIBRARY_IMPL(bregman_kernels, Autograd, m) {
  m.impl("mlp_flat_fwd", &bregman_kernels::mlp::mlp_flat_fwd_autograd);
}
