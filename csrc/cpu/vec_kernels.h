// CPU kernels over contiguous arrays, written once against ATen's at::vec::Vectorized and instantiated per
// instruction set: the including file defines CPU_CAPABILITY (DEFAULT, AVX2, AVX512), CPU_CAPABILITY_<ISA>,
// BM_CAPABILITY (namespace) and BM_TABLE_FN (the table's accessor), and is compiled with the matching -m flags.
// Transcendentals call Sleef (shipped and exported by libtorch_cpu) at 1-ulp accuracy; DEFAULT maps libm.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <type_traits>
#include <utility>

#include "../bregman_math.h"
#include "kernels.h"
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include "vec_math.h"
#endif

namespace bregman_math {
inline namespace BM_CAPABILITY {

#if defined(CPU_CAPABILITY_AVX512)
#define BM_SLEEF_F(fn) Sleef_##fn##f16_u10
#define BM_SLEEF_D(fn) Sleef_##fn##d8_u10
#elif defined(CPU_CAPABILITY_AVX2)
#define BM_SLEEF_F(fn) Sleef_##fn##f8_u10
#define BM_SLEEF_D(fn) Sleef_##fn##d4_u10
#endif

#ifdef BM_SLEEF_F
// float: the inlined forms of vec_math.h; double: Sleef
#define BM_VEC_FN_INLINE(fn)                                      \
  static V fn(const V& a) {                                       \
    if constexpr (std::is_same_v<T, float>) return vmath::fn(a);  \
    else return V(BM_SLEEF_D(fn)(a));                             \
  }
#define BM_VEC_FN(fn)                                                  \
  static V fn(const V& a) {                                            \
    if constexpr (std::is_same_v<T, float>) return V(BM_SLEEF_F(fn)(a)); \
    else return V(BM_SLEEF_D(fn)(a));                                  \
  }
#else
#define BM_VEC_FN(fn) \
  static V fn(const V& a) { return apply(a, [](T v) { return ScalarFns::fn(v); }); }
#define BM_VEC_FN_INLINE(fn) BM_VEC_FN(fn)
#endif

// Primitives on a SIMD vector; comparisons give a mask (mask register or all-ones lanes), select is a blend.
template <class T>
struct Ops<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  using S = T;
  static V c(double v) { return V(static_cast<T>(v)); }
#if defined(CPU_CAPABILITY_AVX512)
  // masks in mask registers: a compare writes one, a blend reads it (no vector of all-ones lanes in between)
  using M = std::conditional_t<std::is_same_v<T, float>, __mmask16, __mmask8>;
  template <int P>
  static M cmp(const V& a, const V& b) {
    if constexpr (std::is_same_v<T, float>) return _mm512_cmp_ps_mask(a, b, P);
    else return _mm512_cmp_pd_mask(a, b, P);
  }
  static V select(M m, const V& a, const V& b) {
    if constexpr (std::is_same_v<T, float>) return _mm512_mask_blend_ps(m, b, a);
    else return _mm512_mask_blend_pd(m, b, a);
  }
  static M lor(M a, M b) { return static_cast<M>(a | b); }
  static M lt(const V& a, const V& b) { return cmp<_CMP_LT_OQ>(a, b); }
  static M gt(const V& a, const V& b) { return cmp<_CMP_GT_OQ>(a, b); }
  static M le(const V& a, const V& b) { return cmp<_CMP_LE_OQ>(a, b); }
  static M ge(const V& a, const V& b) { return cmp<_CMP_GE_OQ>(a, b); }
  static M eq(const V& a, const V& b) { return cmp<_CMP_EQ_OQ>(a, b); }
  static bool any(M m) { return m != 0; }
#else
  // masks are all-ones lanes of a vector; the blend reads them
  using M = V;
  static V select(const V& m, const V& a, const V& b) { return V::blendv(b, a, m); }
  static V lor(const V& a, const V& b) { return a | b; }
  static M lt(const V& a, const V& b) { return a < b; }
  static M gt(const V& a, const V& b) { return a > b; }
  static M le(const V& a, const V& b) { return a <= b; }
  static M ge(const V& a, const V& b) { return a >= b; }
  static M eq(const V& a, const V& b) { return a == b; }
  static bool any(const M& m) { return m.zero_mask() != (1 << V::size()) - 1; }
#endif
  static V neg(const V& a) { return a.neg(); }
  static V abs(const V& a) { return a.abs(); }
  static V sqrt(const V& a) { return a.sqrt(); }
  // |a| with the sign bit of s
  static V copysign(const V& a, const V& s) { return a.abs() | (s & V(static_cast<T>(-0.0))); }
  // e = e^a, em = e^a − 1 for a ≤ 0
  static void exp_expm1(const V& a, V& e, V& em) {
#ifdef BM_SLEEF_F
    if constexpr (std::is_same_v<T, float>) {
      vmath::exp_expm1(a, e, em);
      return;
    }
#endif
    e = exp(a);
    em = expm1(a);
  }
  template <class F>
  static V apply(const V& a, F f) {
    __at_align__ T buf[V::size()];
    a.store(buf);
    for (int i = 0; i < V::size(); ++i) buf[i] = f(buf[i]);
    return V::loadu(buf);
  }
  BM_VEC_FN_INLINE(exp)
  BM_VEC_FN_INLINE(log)
  BM_VEC_FN_INLINE(log1p)
  BM_VEC_FN_INLINE(expm1)
#ifdef BM_SLEEF_F
  static V tan(const V& a) {  // the inlined form where every lane has |a| ≤ π/2 (the clamped range of atan's ρ⁻¹)
    if constexpr (std::is_same_v<T, float>) {
      if (!vmath::any_beyond_pio2(a)) return vmath::tan_pio2(a);
      return V(BM_SLEEF_F(tan)(a));
    } else {
      return V(BM_SLEEF_D(tan)(a));
    }
  }
#else
  BM_VEC_FN(tan)
#endif
  BM_VEC_FN_INLINE(atan)
  BM_VEC_FN(asin)
  BM_VEC_FN(sin)
  BM_VEC_FN(cos)
  BM_VEC_FN_INLINE(tanh)
  BM_VEC_FN(sinh)
  BM_VEC_FN(cosh)
  BM_VEC_FN(asinh)
};

#undef BM_VEC_FN
#undef BM_VEC_FN_INLINE
#undef BM_SLEEF_F
#undef BM_SLEEF_D

}  // namespace BM_CAPABILITY
}  // namespace bregman_math

#ifndef BM_VEC_OPS_ONLY  // set by files that need only Ops<Vectorized<T>> (csrc/fused_mlp)
namespace bregman_kernels::cpu {
inline namespace BM_CAPABILITY {

// y[i] = ρ(x[i] + ρ⁻¹(clamp(z[i]))), whole vectors then one partial vector (same code path for the tail)
template <int ACT, class T>
void fwd_loop(const T* x, const T* z, T* y, int64_t n, const Params& prm) {
  using V = at::vec::Vectorized<T>;
  const V lo(static_cast<T>(prm.lo)), hi(static_cast<T>(prm.hi)), p(static_cast<T>(prm.param));
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size())
    bregman_math::forward<ACT>(V::loadu(x + i), V::loadu(z + i), lo, hi, p).store(y + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    bregman_math::forward<ACT>(V::loadu(x + i, r), V::loadu(z + i, r), lo, hi, p).store(y + i, r);
  }
}

// (gx, gz)[i] = analytic backward at (g, x, z)[i]
template <int ACT, class T>
void bwd_loop(const T* g, const T* x, const T* z, T* gx, T* gz, int64_t n, const Params& prm) {
  using V = at::vec::Vectorized<T>;
  const V lo(static_cast<T>(prm.lo)), hi(static_cast<T>(prm.hi)), p(static_cast<T>(prm.param));
  V vx, vz;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    bregman_math::backward<ACT>(V::loadu(g + i), V::loadu(x + i), V::loadu(z + i), lo, hi, p, vx, vz);
    vx.store(gx + i);
    vz.store(gz + i);
  }
  if (i < n) {
    const int r = static_cast<int>(n - i);
    bregman_math::backward<ACT>(V::loadu(g + i, r), V::loadu(x + i, r), V::loadu(z + i, r), lo, hi, p, vx, vz);
    vx.store(gx + i, r);
    vz.store(gz + i, r);
  }
}

template <int... A>
KernelTable make_table(const char* name, std::integer_sequence<int, A...>) {
  return KernelTable{name, {&fwd_loop<A, float>...}, {&fwd_loop<A, double>...}, {&bwd_loop<A, float>...},
                     {&bwd_loop<A, double>...}};
}

}  // namespace BM_CAPABILITY

const KernelTable* BM_TABLE_FN() {
  static const KernelTable table =
      make_table(BM_CAPABILITY_NAME, std::make_integer_sequence<int, kNumActs>{});
  return &table;
}

}  // namespace bregman_kernels::cpu
#endif  // BM_VEC_OPS_ONLY
