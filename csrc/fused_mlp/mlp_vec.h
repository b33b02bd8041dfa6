// Whole-network MLP kernels written once against at::vec::Vectorized and instantiated per instruction set (the
// including file defines CPU_CAPABILITY, BM_CAPABILITY, BM_CAPABILITY_NAME and BM_MLP_TABLE_FN). The per-element
// math is csrc/bregman_math.h's, through csrc/cpu/vec_kernels.h's Ops<Vectorized<T>>.
//
// A tile is up to kTileVecs vectors of samples, kept feature-major (row i = feature i, one lane per sample); one
// tile runs through every layer before the next starts. Forward: a = b + Σ_i W[o,i]·h[i] and z = Σ_i R[o,i]·h[i]
// (or h[o]) per output row, one FMA per weight and vector; the layer's output rows are saved for the backward.
// Backward: a and z are recomputed from the saved inputs (one more FMA per weight: cheaper than storing them),
// then gW[o,i] += Σ_t gx[o,t]·h[i,t], gb[o] += Σ_t gx[o,t], gR[o,i] += Σ_t gz[o,t]·h[i,t] and
// gh[i] = Σ_o W[o,i]·gx[o] + Σ_o R[o,i]·gz[o] (or gz[i]); the sums over samples are kept lane-wise (one vector
// per parameter) and summed over lanes once per range of tiles.
#pragma once

#define BM_VEC_OPS_ONLY
#include "../cpu/vec_kernels.h"
#undef BM_VEC_OPS_ONLY

#include <ATen/cpu/vec/functional.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "mlp_kernels.h"

namespace bregman_kernels::mlp {
inline namespace BM_CAPABILITY {

namespace bm = bregman_math;
constexpr int kTileVecs = 4;

template <class T>
using Vec = at::vec::Vectorized<T>;

// ρ'(u) for the plain versions: asinh'(u) = 1/√(1 + u²); true ReLU: 1 where u > 0 (torch's relu backward)
template <int ACT, class V>
inline V plain_drho(const V& u, const V& p) {
  using O = bm::Ops<V>;
  if constexpr (ACT == kPlainRelu) return O::select(O::gt(u, O::c(0.0)), O::c(1.0), O::c(0.0));
  else if constexpr (ACT == bm::ASINH) return bm::inv_hypot1(u);
  else return bm::drho<ACT>(u, p);
}

// ρ(u) for the plain versions; true ReLU as a select (NaN passes)
template <int ACT, class V>
inline V plain_rho(const V& u, const V& p) {
  if constexpr (ACT == kPlainRelu) return bm::clamp_min(u, bm::Ops<V>::c(0.0));
  else return bm::rho<ACT>(u, p);
}

// h_{l+1} from a and z, by version
template <int ACT, class V>
inline V unit_fwd(int mode, const V& a, const V& z, const V& lo, const V& hi, const V& p) {
  if constexpr (ACT != kPlainRelu) {
    if (mode == BREGMAN) return bm::forward<ACT>(a, z, lo, hi, p);
  }
  return plain_rho<ACT>(mode == EUCLIDEAN ? a + z : a, p);
}

// (∂L/∂a, ∂L/∂z) from g = ∂L/∂h_{l+1}: the contract's backward (Bregman), else g·ρ'(u) for both
template <int ACT, class V>
inline void unit_bwd(int mode, const V& g, const V& a, const V& z, const V& lo, const V& hi, const V& p, V& ga,
                     V& gz) {
  if constexpr (ACT != kPlainRelu) {
    if (mode == BREGMAN) {
      bm::backward<ACT>(g, a, z, lo, hi, p, ga, gz);
      return;
    }
  }
  ga = g * plain_drho<ACT>(mode == EUCLIDEAN ? a + z : a, p);
  gz = ga;
}

// a[v] = b[o] + Σ_i W[o,i]·h[i][v];  z[v] = Σ_i R[o,i]·h[i][v] (or h[o][v]); rows of h are ts apart. NV (the
// vectors of the tile that hold samples) is a compile-time count: the tile stays in registers.
template <int NV, class T>
inline void affine(const Layer<T>& ly, int mode, int64_t o, const T* h, int64_t ts, Vec<T>* a, Vec<T>* z) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  const T* w = ly.w + o * ly.n_in;
  for (int v = 0; v < NV; ++v) a[v] = V(ly.b[o]);
  for (int64_t i = 0; i < ly.n_in; ++i) {
    const V wi(w[i]);
    for (int v = 0; v < NV; ++v) a[v] = at::vec::fmadd(wi, V::loadu(h + i * ts + v * VL), a[v]);
  }
  if (mode == STANDARD) return;
  if (ly.r == nullptr) {
    for (int v = 0; v < NV; ++v) z[v] = V::loadu(h + o * ts + v * VL);
    return;
  }
  const T* r = ly.r + o * ly.n_in;
  for (int v = 0; v < NV; ++v) z[v] = V(T(0));
  for (int64_t i = 0; i < ly.n_in; ++i) {
    const V ri(r[i]);
    for (int v = 0; v < NV; ++v) z[v] = at::vec::fmadd(ri, V::loadu(h + i * ts + v * VL), z[v]);
  }
}

// dst[i][t] = src[s0 + t, i] for t < n, 0 for n ≤ t < ts (rows ts apart)
template <class T>
inline void gather_tile(const T* src, int64_t st0, int64_t st1, int64_t s0, int64_t n, int64_t rows, int64_t ts,
                        T* dst) {
  for (int64_t i = 0; i < rows; ++i) {
    T* d = dst + i * ts;
    for (int64_t t = 0; t < n; ++t) d[t] = src[(s0 + t) * st0 + i * st1];
    std::fill(d + n, d + ts, T(0));
  }
}

// dst[s0 + t, i] = src[i][t], dst row-major with `rows` columns
template <class T>
inline void scatter_tile(const T* src, int64_t ts, int64_t s0, int64_t n, int64_t rows, T* dst) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < rows; ++i) dst[(s0 + t) * rows + i] = src[i * ts + t];
}

// acc (one vector, lane-wise partial sums) += Σ_v a[v]·b[v]
template <int NV, class T>
inline void acc_dot(T* acc, const Vec<T>* a, const T* b) {
  using V = Vec<T>;
  V s = V::loadu(acc);
  for (int v = 0; v < NV; ++v) s = at::vec::fmadd(a[v], V::loadu(b + v * V::size()), s);
  s.store(acc);
}

// acc += Σ_v a[v]
template <int NV, class T>
inline void acc_sum(T* acc, const Vec<T>* a) {
  using V = Vec<T>;
  V s = V::loadu(acc);
  for (int v = 0; v < NV; ++v) s = s + a[v];
  s.store(acc);
}

// One tile of NV vectors through every layer (cur: the input tile, feature-major; nxt: scratch); the output ends in
// cur for an even number of layers, else in nxt. NV ∈ {1, 2, kTileVecs} (3 runs as 4: one instantiation fewer).
template <int ACT, int NV, class T>
void fwd_tile(const Net<T>& net, T* cur, T* nxt, T* hs, int64_t B, int64_t t0, int64_t n) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  constexpr int64_t TS = kTileVecs * VL;
  const V lo(net.lo), hi(net.hi), p(net.param);
  V a[NV], z[NV];
  const int64_t L = net.num_layers;
  for (int64_t l = 0; l < L; ++l) {
    const Layer<T>& ly = net.layers[l];
    for (int64_t o = 0; o < ly.n_out; ++o) {
      affine<NV>(ly, net.mode, o, cur, TS, a, z);
      // h_{l+1}[o] = unit(a, z)
      for (int v = 0; v < NV; ++v) unit_fwd<ACT>(net.mode, a[v], z[v], lo, hi, p).store(nxt + o * TS + v * VL);
    }
    if (l + 1 < L) {  // save h_{l+1}: rows of hs, columns t0 … t0 + n
      const int64_t row = net.layers[l + 1].h_row;
      for (int64_t o = 0; o < ly.n_out; ++o) std::copy(nxt + o * TS, nxt + o * TS + n, hs + (row + o) * B + t0);
    }
    std::swap(cur, nxt);
  }
}

template <int ACT, class T>
void fwd_range(const Net<T>& net, const T* x, int64_t sx0, int64_t sx1, T* y, T* hs, int64_t B, int64_t s0,
               int64_t s1) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  constexpr int64_t TS = kTileVecs * VL;
  std::vector<T> buf(2 * net.max_width * TS);
  T* cur = buf.data();
  T* nxt = cur + net.max_width * TS;
  for (int64_t t0 = s0; t0 < s1; t0 += TS) {
    const int64_t n = std::min(TS, s1 - t0);
    gather_tile(x, sx0, sx1, t0, n, net.layers[0].n_in, TS, cur);
    switch ((n + VL - 1) / VL) {
      case 1: fwd_tile<ACT, 1>(net, cur, nxt, hs, B, t0, n); break;
      case 2: fwd_tile<ACT, 2>(net, cur, nxt, hs, B, t0, n); break;
      default: fwd_tile<ACT, kTileVecs>(net, cur, nxt, hs, B, t0, n); break;
    }
    scatter_tile(net.num_layers % 2 == 1 ? nxt : cur, TS, t0, n, net.layers[net.num_layers - 1].n_out, y);
  }
}

// One tile backward: gcur holds ∂L/∂h_L (feature-major); on return ∂L/∂h_0 is in the buffer returned.
// lacc: lane-wise gradient accumulators, VL values per parameter (summed over lanes once per range).
template <int ACT, int NV, class T>
T* bwd_tile(const Net<T>& net, const T* x, int64_t sx0, int64_t sx1, const T* hs, T* gcur, T* gnxt, T* h,
            T* lacc, int64_t B, int64_t t0, int64_t n) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  constexpr int64_t TS = kTileVecs * VL;
  const V lo(net.lo), hi(net.hi), p(net.param);
  V a[NV], z[NV], ga[NV], gz[NV];
  for (int64_t l = net.num_layers - 1; l >= 0; --l) {
    const Layer<T>& ly = net.layers[l];
    // h = h_l for this tile (zeros past n)
    if (l == 0) {
      gather_tile(x, sx0, sx1, t0, n, ly.n_in, TS, h);
    } else {
      for (int64_t i = 0; i < ly.n_in; ++i) {
        const T* src = hs + (ly.h_row + i) * B + t0;
        std::copy(src, src + n, h + i * TS);
        std::fill(h + i * TS + n, h + (i + 1) * TS, T(0));
      }
    }
    std::fill(gnxt, gnxt + ly.n_in * TS, T(0));
    T* aw = lacc + ly.acc * VL;
    T* ab = aw + ly.n_out * ly.n_in * VL;
    T* ar = ab + ly.n_out * VL;
    for (int64_t o = 0; o < ly.n_out; ++o) {
      affine<NV>(ly, net.mode, o, h, TS, a, z);
      // (ga, gz) = (∂L/∂a, ∂L/∂z) at this unit
      for (int v = 0; v < NV; ++v)
        unit_bwd<ACT>(net.mode, V::loadu(gcur + o * TS + v * VL), a[v], z[v], lo, hi, p, ga[v], gz[v]);
      // gb[o] += Σ_t ga;  gW[o,i] += Σ_t ga·h[i];  gh[i] += W[o,i]·ga
      acc_sum<NV>(ab + o * VL, ga);
      for (int64_t i = 0; i < ly.n_in; ++i) {
        acc_dot<NV>(aw + (o * ly.n_in + i) * VL, ga, h + i * TS);
        const V wi(ly.w[o * ly.n_in + i]);
        for (int v = 0; v < NV; ++v) {
          T* d = gnxt + i * TS + v * VL;
          at::vec::fmadd(wi, ga[v], V::loadu(d)).store(d);
        }
      }
      if (net.mode == STANDARD) continue;
      if (ly.r == nullptr) {  // gh[o] += gz
        for (int v = 0; v < NV; ++v) {
          T* d = gnxt + o * TS + v * VL;
          (V::loadu(d) + gz[v]).store(d);
        }
        continue;
      }
      // gR[o,i] += Σ_t gz·h[i];  gh[i] += R[o,i]·gz
      for (int64_t i = 0; i < ly.n_in; ++i) {
        acc_dot<NV>(ar + (o * ly.n_in + i) * VL, gz, h + i * TS);
        const V ri(ly.r[o * ly.n_in + i]);
        for (int v = 0; v < NV; ++v) {
          T* d = gnxt + i * TS + v * VL;
          at::vec::fmadd(ri, gz[v], V::loadu(d)).store(d);
        }
      }
    }
    std::swap(gcur, gnxt);
  }
  return gcur;
}

template <int ACT, class T>
void bwd_range(const Net<T>& net, const T* g, int64_t sg0, int64_t sg1, const T* x, int64_t sx0, int64_t sx1,
               const T* hs, T* gx, T* acc, int64_t B, int64_t s0, int64_t s1) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  constexpr int64_t TS = kTileVecs * VL;
  const int64_t W = net.max_width, L = net.num_layers;
  const Layer<T>& last = net.layers[L - 1];
  const int64_t P = last.acc + last.n_out * last.n_in * (last.r ? 2 : 1) + last.n_out;
  std::vector<T> buf(3 * W * TS), lacc(P * VL, T(0));
  for (int64_t t0 = s0; t0 < s1; t0 += TS) {
    const int64_t n = std::min(TS, s1 - t0);
    T* gcur = buf.data();
    T* gnxt = gcur + W * TS;
    T* h = gnxt + W * TS;
    gather_tile(g, sg0, sg1, t0, n, last.n_out, TS, gcur);
    T* out = nullptr;
    switch ((n + VL - 1) / VL) {
      case 1: out = bwd_tile<ACT, 1>(net, x, sx0, sx1, hs, gcur, gnxt, h, lacc.data(), B, t0, n); break;
      case 2: out = bwd_tile<ACT, 2>(net, x, sx0, sx1, hs, gcur, gnxt, h, lacc.data(), B, t0, n); break;
      default: out = bwd_tile<ACT, kTileVecs>(net, x, sx0, sx1, hs, gcur, gnxt, h, lacc.data(), B, t0, n); break;
    }
    scatter_tile(out, TS, t0, n, net.layers[0].n_in, gx);
  }
  // acc[k] += Σ over the lanes of lacc[k]
  for (int64_t k = 0; k < P; ++k)
    acc[k] += at::vec::vec_reduce_all<T>([](V u, V v) { return u + v; }, V::loadu(lacc.data() + k * VL));
}

template <int... A>
Table make_table(const char* name, std::integer_sequence<int, A...>) {
  return Table{name,
               kTileVecs * Vec<float>::size(),
               kTileVecs * Vec<double>::size(),
               {&fwd_range<A, float>...},
               {&fwd_range<A, double>...},
               {&bwd_range<A, float>...},
               {&bwd_range<A, double>...}};
}

}  // namespace BM_CAPABILITY

const Table* BM_MLP_TABLE_FN() {
  static const Table table = make_table(BM_CAPABILITY_NAME, std::make_integer_sequence<int, kNumCodes>{});
  return &table;
}

}  // namespace bregman_kernels::mlp
