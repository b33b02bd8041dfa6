// Whole-network MLP kernels written once against at::vec::Vectorized and instantiated per instruction set (the
// including file defines CPU_CAPABILITY, BM_CAPABILITY, BM_CAPABILITY_NAME and BM_MLP_TABLE_FN). The per-element
// math is csrc/bregman_math.h's, through csrc/cpu/vec_kernels.h's Ops<Vectorized<T>>.
//
// A tile is up to kTileVecs vectors of samples, kept feature-major (row i = feature i, one lane per sample); one
// tile runs through every layer before the next starts. Forward: a = b + Σ_i W[o,i]·h[i] and z = Σ_i R[o,i]·h[i]
// (or h[o]) per output row, one FMA per weight and vector; the layer's output rows are saved for the backward.
// Backward: a and z are recomputed from the saved inputs (one more FMA per weight: cheaper than storing them),
// then gW[o,i] += Σ_t gx[o,t]·h[i,t], gb[o] += Σ_t gx[o,t], gR[o,i] += Σ_t gz[o,t]·h[i,t] and
// gh[i] = Σ_o W[o,i]·gx[o] + Σ_o R[o,i]·gz[o] (or gz[i]), lanes summed once per tile.
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
  if constexpr (ACT == kPlainRelu) return O::select(u > O::c(0.0), O::c(1.0), O::c(0.0));
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

// a[v] = b[o] + Σ_i W[o,i]·h[i][v];  z[v] = Σ_i R[o,i]·h[i][v] (or h[o][v]); rows of h are ts apart
template <class T>
inline void affine(const Layer<T>& ly, int mode, int64_t o, const T* h, int64_t ts, int nv, Vec<T>* a, Vec<T>* z) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  const T* w = ly.w + o * ly.n_in;
  for (int v = 0; v < nv; ++v) a[v] = V(ly.b[o]);
  for (int64_t i = 0; i < ly.n_in; ++i) {
    const V wi(w[i]);
    for (int v = 0; v < nv; ++v) a[v] = at::vec::fmadd(wi, V::loadu(h + i * ts + v * VL), a[v]);
  }
  if (mode == STANDARD) return;
  if (ly.r == nullptr) {
    for (int v = 0; v < nv; ++v) z[v] = V::loadu(h + o * ts + v * VL);
    return;
  }
  const T* r = ly.r + o * ly.n_in;
  for (int v = 0; v < nv; ++v) z[v] = V(T(0));
  for (int64_t i = 0; i < ly.n_in; ++i) {
    const V ri(r[i]);
    for (int v = 0; v < nv; ++v) z[v] = at::vec::fmadd(ri, V::loadu(h + i * ts + v * VL), z[v]);
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

// Σ over the nv vectors and their lanes of a[v]
template <class T>
inline T sum(const Vec<T>* a, int nv) {
  using V = Vec<T>;
  V s = a[0];
  for (int v = 1; v < nv; ++v) s = s + a[v];
  return at::vec::vec_reduce_all<T>([](V x, V y) { return x + y; }, s);
}

// Σ over the nv vectors and their lanes of a[v]·b[v]
template <class T>
inline T dot(const Vec<T>* a, const T* b, int nv) {
  using V = Vec<T>;
  V s = a[0] * V::loadu(b);
  for (int v = 1; v < nv; ++v) s = at::vec::fmadd(a[v], V::loadu(b + v * V::size()), s);
  return at::vec::vec_reduce_all<T>([](V x, V y) { return x + y; }, s);
}

template <int ACT, class T>
void fwd_range(const Net<T>& net, const T* x, int64_t sx0, int64_t sx1, T* y, T* hs, int64_t B, int64_t s0,
               int64_t s1) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  constexpr int64_t TS = kTileVecs * VL;
  const V lo(net.lo), hi(net.hi), p(net.param);
  std::vector<T> buf(2 * net.max_width * TS);
  const int64_t L = net.num_layers, n_last = net.layers[L - 1].n_out;
  V a[kTileVecs], z[kTileVecs];
  for (int64_t t0 = s0; t0 < s1; t0 += TS) {
    const int64_t n = std::min(TS, s1 - t0);
    const int nv = static_cast<int>((n + VL - 1) / VL);
    T* cur = buf.data();
    T* nxt = cur + net.max_width * TS;
    gather_tile(x, sx0, sx1, t0, n, net.layers[0].n_in, TS, cur);
    for (int64_t l = 0; l < L; ++l) {
      const Layer<T>& ly = net.layers[l];
      for (int64_t o = 0; o < ly.n_out; ++o) {
        affine(ly, net.mode, o, cur, TS, nv, a, z);
        // h_{l+1}[o] = unit(a, z)
        for (int v = 0; v < nv; ++v) unit_fwd<ACT>(net.mode, a[v], z[v], lo, hi, p).store(nxt + o * TS + v * VL);
      }
      if (l + 1 < L) {  // save h_{l+1}: rows of hs, columns t0 … t0 + n
        const Layer<T>& next = net.layers[l + 1];
        for (int64_t o = 0; o < ly.n_out; ++o) std::copy(nxt + o * TS, nxt + o * TS + n, hs + (next.h_row + o) * B + t0);
      }
      std::swap(cur, nxt);
    }
    scatter_tile(cur, TS, t0, n, n_last, y);
  }
}

template <int ACT, class T>
void bwd_range(const Net<T>& net, const T* g, int64_t sg0, int64_t sg1, const T* x, int64_t sx0, int64_t sx1,
               const T* hs, T* gx, T* acc, int64_t B, int64_t s0, int64_t s1) {
  using V = Vec<T>;
  constexpr int VL = V::size();
  constexpr int64_t TS = kTileVecs * VL;
  const V lo(net.lo), hi(net.hi), p(net.param);
  const int64_t W = net.max_width, L = net.num_layers;
  std::vector<T> buf(3 * W * TS);
  V a[kTileVecs], z[kTileVecs], ga[kTileVecs], gz[kTileVecs];
  for (int64_t t0 = s0; t0 < s1; t0 += TS) {
    const int64_t n = std::min(TS, s1 - t0);
    const int nv = static_cast<int>((n + VL - 1) / VL);
    T* gcur = buf.data();
    T* gnxt = gcur + W * TS;
    T* h = gnxt + W * TS;
    gather_tile(g, sg0, sg1, t0, n, net.layers[L - 1].n_out, TS, gcur);
    for (int64_t l = L - 1; l >= 0; --l) {
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
      T* aw = acc + ly.acc;
      T* ab = aw + ly.n_out * ly.n_in;
      T* ar = ab + ly.n_out;
      for (int64_t o = 0; o < ly.n_out; ++o) {
        affine(ly, net.mode, o, h, TS, nv, a, z);
        // (ga, gz) = (∂L/∂a, ∂L/∂z) at this unit
        for (int v = 0; v < nv; ++v)
          unit_bwd<ACT>(net.mode, V::loadu(gcur + o * TS + v * VL), a[v], z[v], lo, hi, p, ga[v], gz[v]);
        // gb[o] += Σ_t ga;  gW[o,i] += Σ_t ga·h[i];  gh[i] += W[o,i]·ga
        ab[o] += sum(ga, nv);
        for (int64_t i = 0; i < ly.n_in; ++i) {
          aw[o * ly.n_in + i] += dot(ga, h + i * TS, nv);
          const V wi(ly.w[o * ly.n_in + i]);
          for (int v = 0; v < nv; ++v) {
            T* d = gnxt + i * TS + v * VL;
            at::vec::fmadd(wi, ga[v], V::loadu(d)).store(d);
          }
        }
        if (net.mode == STANDARD) continue;
        if (ly.r == nullptr) {  // gh[o] += gz
          for (int v = 0; v < nv; ++v) {
            T* d = gnxt + o * TS + v * VL;
            (V::loadu(d) + gz[v]).store(d);
          }
          continue;
        }
        // gR[o,i] += Σ_t gz·h[i];  gh[i] += R[o,i]·gz
        for (int64_t i = 0; i < ly.n_in; ++i) {
          ar[o * ly.n_in + i] += dot(gz, h + i * TS, nv);
          const V ri(ly.r[o * ly.n_in + i]);
          for (int v = 0; v < nv; ++v) {
            T* d = gnxt + i * TS + v * VL;
            at::vec::fmadd(ri, gz[v], V::loadu(d)).store(d);
          }
        }
      }
      std::swap(gcur, gnxt);
    }
    scatter_tile(gcur, TS, t0, n, net.layers[0].n_in, gx);
  }
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
