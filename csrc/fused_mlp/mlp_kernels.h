// Whole-network CPU kernels of the narrow Bregman MLP: every hidden layer of a tile of samples in one pass.
// Kept free of torch headers (each instruction set is its own translation unit, as in csrc/cpu/kernels.h).
//
// Hidden layer l maps h_l (width n_l) to h_{l+1} (width n_{l+1}), a = W_l h_l + b_l:
//   BREGMAN:   h_{l+1} = ρ(a + ρ⁻¹(clamp(z, lo, hi))),  z = R_l h_l (R_l = identity when absent)
//   EUCLIDEAN: h_{l+1} = ρ(a + z)
//   STANDARD:  h_{l+1} = ρ(a)
// Activation codes are the registry's (bregman_math::Act) plus PLAIN_RELU = max(u, 0) (non-Bregman versions).
#pragma once

#include <cstdint>

namespace bregman_kernels::mlp {

constexpr int kPlainRelu = 9;
constexpr int kNumCodes = 10;
enum Mode : int { STANDARD = 0, BREGMAN = 1, EUCLIDEAN = 2 };

// One hidden layer: row-major W (n_out, n_in), b (n_out), R (n_out, n_in) or nullptr (identity offset).
// h_row: first row of this layer's input in the saved-state buffer (layers ≥ 1); acc: offset of its gradients in
// the flat accumulator [gW (n_out·n_in), gb (n_out), gR (n_out·n_in, when R)].
template <class T>
struct Layer {
  const T* w;
  const T* b;
  const T* r;
  int64_t n_in, n_out, h_row, acc;
};

template <class T>
struct Net {
  const Layer<T>* layers;
  int64_t num_layers;
  int64_t max_width;  // over the input and every hidden width
  int mode;
  T lo, hi, param;  // clamp bounds (compute type) and the activation's parameter
};

// Samples [s0, s1): x (B, n_0) at strides (sx0, sx1); y (B, n_L) contiguous; hs (S, B) contiguous holds h_1 …
// h_{L−1} feature-major (S = n_1 + … + n_{L−1}), the state the backward reads.
template <class T>
using FwdFn = void (*)(const Net<T>& net, const T* x, int64_t sx0, int64_t sx1, T* y, T* hs, int64_t B,
                       int64_t s0, int64_t s1);
// Samples [s0, s1): g (B, n_L) at strides (sg0, sg1); gx (B, n_0) contiguous is written; acc (flat, see Layer)
// is added to.
template <class T>
using BwdFn = void (*)(const Net<T>& net, const T* g, int64_t sg0, int64_t sg1, const T* x, int64_t sx0,
                       int64_t sx1, const T* hs, T* gx, T* acc, int64_t B, int64_t s0, int64_t s1);

struct Table {
  const char* name;
  int64_t tile_f, tile_d;  // samples per tile
  FwdFn<float> fwd_f[kNumCodes];
  FwdFn<double> fwd_d[kNumCodes];
  BwdFn<float> bwd_f[kNumCodes];
  BwdFn<double> bwd_d[kNumCodes];
};

// nullptr where the instruction set was not compiled in.
const Table* table_default();
const Table* table_avx2();
const Table* table_avx512();

}  // namespace bregman_kernels::mlp
