// Per-element math of the Bregman activation y = ρ(x + ρ⁻¹(clamp(z, lo, hi))), shared by the CPU and CUDA kernels.
//
// Mirrors bregman_kernels/backends/eager.py formula by formula (same stable forms, same branch thresholds, same
// operand order), except sigmoid, tanh, scaled_tanh and softplus: joint forms of the whole composition below
// (docs/math.md, "Fused forms"). Every function is a template over a value type V: a scalar (float for fp16/bf16/fp32 inputs,
// double for fp64) or a SIMD vector; Ops<V> supplies the primitives (constants, select, exp, log, ...). Branches
// are selects: both sides are evaluated, NaN propagates (no fmin/fmax clamps), and the unselected side never
// reaches a product. Notation, per element:
//   zc = clamp(z, lo, hi),  u = x + ρ⁻¹(zc),  y = ρ(u)
//   ∂y/∂x = ρ'(u),  ∂y/∂z = ρ'(u)·(ρ⁻¹)'(zc) where lo ≤ z ≤ hi (NaN passes), else 0;  both exactly 0 where g == 0.
#pragma once

#include <math.h>

#include <cmath>
#include <type_traits>

#if defined(__CUDACC__)
#define BM_HD __host__ __device__ __forceinline__
#else
#define BM_HD inline
#endif

// Kernels compiled for several instruction sets in one library get distinct namespaces (no ODR clashes).
#ifndef BM_CAPABILITY
#define BM_CAPABILITY generic
#endif

namespace bregman_math {

// Activation codes; must equal bregman_kernels/activations.py (tests compare act_names() with the registry).
enum Act : int { SIGMOID = 0, TANH, SCALED_TANH, ATAN, SIN, ASINH, ISRU, SOFTPLUS, RELU, NUM_ACTS };
constexpr const char* kActNames[NUM_ACTS] = {"sigmoid", "tanh", "scaled_tanh", "atan", "sin",
                                             "asinh",   "isru", "softplus",    "relu"};

constexpr double kScaledTanhA = 1.7159;  // scaled_tanh(u) = A·tanh(B·u)
constexpr double kScaledTanhB = 0.6666;
// In float, A − z near the bound needs A beyond float: A = A_HI + A_LO with A_HI = float(A) (A_HI − z is exact).
constexpr double kScaledTanhAHi32 = static_cast<double>(static_cast<float>(kScaledTanhA));
constexpr double kScaledTanhALo32 = kScaledTanhA - kScaledTanhAHi32;
// In double, A = kScaledTanhA + A_LO64 (the decimal 1.7159 minus its double; activations.SCALED_TANH_A_LO64).
constexpr double kScaledTanhALo64 = 1.9184653865522706e-17;
constexpr double kLn2 = 0.69314718055994530942;
constexpr double kAsinhBig = 20.0;  // beyond |z| > 20, sinh(z) = sign(z)·e^|z|/2 to e^-40 relative

inline namespace BM_CAPABILITY {

template <class V>
struct Ops;

// Scalar primitives (host and device). f-suffixed C functions for float, plain ones for double.
#define BM_SCALAR_FN(name)                                   \
  static BM_HD float name(float a) { return ::name##f(a); } \
  static BM_HD double name(double a) { return ::name(a); }

struct ScalarFns {
  BM_SCALAR_FN(exp)
  BM_SCALAR_FN(log)
  BM_SCALAR_FN(log1p)
  BM_SCALAR_FN(expm1)
  BM_SCALAR_FN(tan)
  BM_SCALAR_FN(atan)
  BM_SCALAR_FN(asin)
  BM_SCALAR_FN(sin)
  BM_SCALAR_FN(cos)
  BM_SCALAR_FN(tanh)
  BM_SCALAR_FN(sinh)
  BM_SCALAR_FN(cosh)
  BM_SCALAR_FN(asinh)
  BM_SCALAR_FN(sqrt)
  // e = e^a and em = e^a − 1 for a ≤ 0 (one range reduction in the SIMD versions)
  template <class T>
  static BM_HD void exp_expm1(T a, T& e, T& em) { e = exp(a); em = expm1(a); }
  static BM_HD float abs(float a) { return ::fabsf(a); }
  static BM_HD double abs(double a) { return ::fabs(a); }
  static BM_HD float copysign(float a, float s) { return ::copysignf(a, s); }
  static BM_HD double copysign(double a, double s) { return ::copysign(a, s); }
};
#undef BM_SCALAR_FN

template <class T>
struct ScalarOps : ScalarFns {
  using S = T;  // scalar (compute) type
  using M = bool;
  static BM_HD T c(double v) { return static_cast<T>(v); }
  static BM_HD T select(bool m, T a, T b) { return m ? a : b; }
  static BM_HD bool lor(bool a, bool b) { return a || b; }
  // comparisons (false when either side is NaN)
  static BM_HD bool lt(T a, T b) { return a < b; }
  static BM_HD bool gt(T a, T b) { return a > b; }
  static BM_HD bool le(T a, T b) { return a <= b; }
  static BM_HD bool ge(T a, T b) { return a >= b; }
  static BM_HD bool eq(T a, T b) { return a == b; }
  static BM_HD bool any(bool m) { return m; }
  static BM_HD T neg(T a) { return -a; }
};
template <>
struct Ops<float> : ScalarOps<float> {};
template <>
struct Ops<double> : ScalarOps<double> {};

#define BM_OPS using O = Ops<V>
#define C(v) O::c(v)

// ---- shared pieces ----------------------------------------------------------------------------------------------

// smallest normal number of the compute type
template <class V>
BM_HD V tiny() {
  BM_OPS;
  return std::is_same_v<typename O::S, double> ? C(2.2250738585072014e-308) : C(1.17549435082228751e-38);
}

// max(a, b) / min(a, b) for a constant b, written as selects so NaN propagates (torch.clamp_min / clamp_max)
template <class V>
BM_HD V clamp_min(V a, V b) { BM_OPS; return O::select(O::lt(a, b), b, a); }
template <class V>
BM_HD V clamp_max(V a, V b) { BM_OPS; return O::select(O::gt(a, b), b, a); }

// torch.rsqrt: 1/√a
template <class V>
BM_HD V rsqrt(V a) { BM_OPS; return C(1.0) / O::sqrt(a); }

// sign(v) ∈ {−1, 0, 1}; NaN stays NaN
template <class V>
BM_HD V sign(V v) { BM_OPS; return O::select(O::gt(v, C(0.0)), C(1.0), O::select(O::lt(v, C(0.0)), C(-1.0), v)); }

// 1/√(1 + u²) without overflowing u²: for |u| > 1, (1/|u|) / √(1 + 1/u²)
template <class V>
BM_HD V inv_hypot1(V u) {
  BM_OPS;
  V a = O::abs(u);
  V r = C(1.0) / clamp_min(a, C(1.0));
  return O::select(O::gt(a, C(1.0)), r * rsqrt(C(1.0) + r * r), rsqrt(C(1.0) + a * a));
}

// A − t for scaled_tanh's A: (A_HI − t) + A_LO, A_HI the compute type's A (A_HI − t exact near the bound)
template <class V>
BM_HD V a_minus(V t) {
  BM_OPS;
  if constexpr (std::is_same_v<typename O::S, double>) return (C(kScaledTanhA) - t) + C(kScaledTanhALo64);
  else return (C(kScaledTanhAHi32) - t) + C(kScaledTanhALo32);
}

// atanh(z/a) = ½·log1p(2|z| / (a − |z|)), odd in z; a − |z| accurate near the bound (exact for a = 1, Sterbenz)
template <bool SCALED, class V>
BM_HD V atanh_scaled(V z) {
  BM_OPS;
  V t = O::abs(z);
  V am = SCALED ? a_minus(t) : C(1.0) - t;
  return O::copysign(C(0.5) * O::log1p(C(2.0) * t / am), z);
}

// d/du tanh(b·u) = 4t / (1 + t)², t = e^{−2b|u|}: no cancellation in 1 − tanh² at saturation
template <class V>
BM_HD V dtanh(V u, double b) {
  BM_OPS;
  V t = O::exp(C(-2.0 * b) * O::abs(u));
  return C(4.0) * t / ((C(1.0) + t) * (C(1.0) + t));
}

// logit(z) = log(z / (1 − z)); for z ≥ ¼ as log1p(w), w = (2z − 1)/(1 − z), 2z − 1 exact: accurate near z = ½.
// One logarithm for both branches: log1p(w) = log(v) − ((v − 1) − w)/v with v = fl(1 + w) (the correction
// restores the rounding error of 1 + w; Goldberg/Kahan)
template <class V>
BM_HD V logit(V z) {
  BM_OPS;
  auto lower = O::lt(z, C(0.25));
  V w = (C(2.0) * z - C(1.0)) / (C(1.0) - z);
  V v = O::select(lower, z / (C(1.0) - z), C(1.0) + w);
  V corr = O::select(O::lor(lower, O::eq(w, C(INFINITY))), C(0.0), ((v - C(1.0)) - w) / v);
  return O::log(v) - corr;
}

// 1 − z² as (1 − z)(1 + z): exact factors near ±1
template <class V>
BM_HD V one_minus_sq(V z) { BM_OPS; return (C(1.0) - z) * (C(1.0) + z); }

// σ(t) = 1 / (1 + e^{−t}) (torch.sigmoid's form; relative accuracy holds on both sides)
template <class V>
BM_HD V sigmoid(V t) { BM_OPS; return C(1.0) / (C(1.0) + O::exp(O::neg(t))); }

// asinh(u) = sign(u)·(log|u| + ln2) beyond |u| > 2^26 (the rest, 1/(4u²), is below fp64's ulp); library asinh
// below (some vector asinh overflow for |u| > √FLT_MAX)
template <class V>
BM_HD V asinh_stable(V u) {
  BM_OPS;
  V a = O::abs(u);
  auto big = O::gt(a, C(67108864.0));
  V big_y = O::copysign(O::log(a) + C(kLn2), u);
  return O::select(big, big_y, O::asinh(O::select(big, C(0.0), u)));
}

// isru(u) = u/√(1 + u²); for |u| > 1 as sign(u)/√(1 + 1/u²) (finite at ±inf)
template <class V>
BM_HD V isru(V u) {
  BM_OPS;
  V r = C(1.0) / clamp_min(O::abs(u), C(1.0));
  return O::select(O::gt(O::abs(u), C(1.0)), O::copysign(rsqrt(C(1.0) + r * r), u), u * rsqrt(C(1.0) + u * u));
}

// bent identity (u + h)/2 for u ≥ 0, 1/(2(h − u)) for u < 0 (no cancellation), h = √(u² + 1)
template <class V>
BM_HD V bent(V u) {
  BM_OPS;
  V h = C(1.0) / inv_hypot1(u);
  return O::select(O::ge(u, C(0.0)), C(0.5) * (u + h), C(0.5) / (h - u));
}

// ---- ρ⁻¹, ρ, ρ', (ρ⁻¹)' per activation (asinh has its own joint formulas below); p = softplus β ------------

template <int ACT, class V>
BM_HD V inv(V z, V p) {
  BM_OPS;
  if constexpr (ACT == SIGMOID) return logit(z);
  else if constexpr (ACT == TANH) return atanh_scaled<false>(z);
  else if constexpr (ACT == SCALED_TANH) return atanh_scaled<true>(z) / C(kScaledTanhB);
  else if constexpr (ACT == ATAN) return O::tan(z);
  else if constexpr (ACT == SIN) return O::asin(z);
  else if constexpr (ACT == ASINH) return O::sinh(z);
  // z / √(1 − z²)
  else if constexpr (ACT == ISRU) return z * rsqrt(one_minus_sq(z));
  // log(expm1(βz))/β = z + log(−expm1(−βz))/β: no overflow for large βz, accurate for small βz
  else if constexpr (ACT == SOFTPLUS) return z + O::log(O::neg(O::expm1(O::neg(p) * z))) / p;
  // inverse of the bent identity (u + √(u² + 1))/2: z − 1/(4z)
  else return z - C(0.25) / z;
}

template <int ACT, class V>
BM_HD V rho(V u, V p) {
  BM_OPS;
  if constexpr (ACT == SIGMOID) return sigmoid(u);
  else if constexpr (ACT == TANH) return O::tanh(u);
  else if constexpr (ACT == SCALED_TANH) return C(kScaledTanhA) * O::tanh(C(kScaledTanhB) * u);
  else if constexpr (ACT == ATAN) return O::atan(u);
  else if constexpr (ACT == SIN) return O::sin(u);
  else if constexpr (ACT == ASINH) return asinh_stable(u);
  else if constexpr (ACT == ISRU) return isru(u);
  else if constexpr (ACT == SOFTPLUS) {
    // softplus_β(u) = (max(βu, 0) + log1p(e^{−|βu|})) / β
    V t = p * u;
    return (clamp_min(t, C(0.0)) + O::log1p(O::exp(O::neg(O::abs(t))))) / p;
  } else return bent(u);
}

template <int ACT, class V>
BM_HD V drho(V u, V p) {
  BM_OPS;
  if constexpr (ACT == SIGMOID) {
    // σ'(u) = e^{−|u|} / (1 + e^{−|u|})²
    V e = O::exp(O::neg(O::abs(u)));
    return e / ((C(1.0) + e) * (C(1.0) + e));
  } else if constexpr (ACT == TANH) return dtanh(u, 1.0);
  else if constexpr (ACT == SCALED_TANH) return C(kScaledTanhA * kScaledTanhB) * dtanh(u, kScaledTanhB);
  else if constexpr (ACT == ATAN) return C(1.0) / (C(1.0) + u * u);
  else if constexpr (ACT == SIN) return O::cos(u);
  else if constexpr (ACT == ISRU) {
    // (1 + u²)^{−3/2}
    V r = inv_hypot1(u);
    return r * r * r;
  } else if constexpr (ACT == SOFTPLUS) return sigmoid(p * u);
  // ρ'(u) = (1 + u/h)/2 = (1 + isru(u))/2 for u ≥ 0;  ρ(u)/h for u < 0 (no cancellation)
  else return O::select(O::ge(u, C(0.0)), C(0.5) * (C(1.0) + isru(u)), bent(u) * inv_hypot1(u));
}

template <int ACT, class V>
BM_HD V dinv(V z, V iv, V p) {
  BM_OPS;
  if constexpr (ACT == SIGMOID) return C(1.0) / (z * (C(1.0) - z));
  else if constexpr (ACT == TANH) return C(1.0) / one_minus_sq(z);
  else if constexpr (ACT == SCALED_TANH) {
    // A / (B·(A − |z|)(A + |z|))
    V t = O::abs(z);
    return C(kScaledTanhA) / (C(kScaledTanhB) * a_minus(t) * (C(kScaledTanhA) + t));
  } else if constexpr (ACT == ATAN) return C(1.0) + iv * iv;
  else if constexpr (ACT == SIN) return rsqrt(one_minus_sq(z));
  else if constexpr (ACT == ISRU) {
    // (1 − z²)^{−3/2}
    V r = rsqrt(one_minus_sq(z));
    return r * r * r;
  } else if constexpr (ACT == SOFTPLUS) return C(-1.0) / O::expm1(O::neg(p) * z);
  else return C(1.0) + C(0.25) / (z * z);
}

// ---- asinh: ρ⁻¹ = sinh overflows for |z| > ~89 (fp32); beyond kAsinhBig work with log|u| -------------------------

// |z| = m > 20, s = sign(z):  u = x + sinh(z) = s·(e^m/2)·w,  w = 1 + 2·s·x·e^{−m};  L = log|u| = m − ln2 + log|w|
template <class V>
BM_HD void asinh_big(V x, V z, V& m, V& su, V& L) {
  BM_OPS;
  m = O::abs(z);
  V s = sign(z);
  V eh = O::exp(C(-0.5) * m);  // x·e^{−m} as (x·e^{−m/2})·e^{−m/2}: no underflow of e^{−m} for m up to ~2·87
  V xe = O::select(O::eq(O::abs(x), C(INFINITY)), x, (x * eh) * eh);
  V w = C(1.0) + C(2.0) * s * xe;
  su = s * sign(w);
  L = m - C(kLn2) + O::log(O::abs(w));
}

template <class V>
BM_HD V asinh_fwd(V x, V z) {
  BM_OPS;
  V m, su, L;
  asinh_big(x, z, m, su, L);
  // y = sign(u)·asinh(e^L);  asinh(e^L) = L + log(1 + √(1 + e^{−2L})) for L > 0, else asinh(e^L) directly
  V Lp = clamp_min(L, C(0.0));
  V big = su * O::select(O::gt(L, C(0.0)), L + O::log(C(1.0) + O::sqrt(C(1.0) + O::exp(C(-2.0) * Lp))),
                         O::asinh(O::exp(L)));
  V small = asinh_stable(x + O::sinh(clamp_max(clamp_min(z, C(-kAsinhBig)), C(kAsinhBig))));
  return O::select(O::gt(m, C(kAsinhBig)), big, small);
}

// ρ'(u) = 1/√(1 + u²);  ∂y/∂z = cosh(z)·ρ'(u)
template <class V>
BM_HD void asinh_bwd(V x, V z, V& d, V& dz) {
  BM_OPS;
  V m, su, L;
  asinh_big(x, z, m, su, L);
  V Lp = clamp_min(L, C(0.0)), Ln = clamp_max(L, C(0.0));
  V q = O::exp(C(-2.0) * Lp);
  // L > 0: ρ'(u) = e^{−L}/√(1 + e^{−2L});  cosh(z)·ρ'(u) = e^{m−ln2−L}/√(1 + e^{−2L})
  // L ≤ 0: ρ'(u) = 1/√(1 + e^{2L});         cosh(z)·ρ'(u) = e^{m−ln2}·ρ'(u)
  V d_big = O::select(O::gt(L, C(0.0)), O::exp(O::neg(Lp)) * rsqrt(C(1.0) + q), rsqrt(C(1.0) + O::exp(C(2.0) * Ln)));
  V dz_big = O::select(O::gt(L, C(0.0)), O::exp(m - C(kLn2) - L) * rsqrt(C(1.0) + q), O::exp(m - C(kLn2)) * d_big);
  V zs = clamp_max(clamp_min(z, C(-kAsinhBig)), C(kAsinhBig));
  V d_small = inv_hypot1(x + O::sinh(zs));
  V dz_small = O::cosh(zs) * d_small;
  d = O::select(O::gt(m, C(kAsinhBig)), d_big, d_small);
  dz = O::select(O::gt(m, C(kAsinhBig)), dz_big, dz_small);
}

// ---- tanh, scaled_tanh: no logarithm, no cancellation, one division ------------------------------------------
// y = A·tanh(B·x + atanh(w)), w = z/A (A = B = 1 for tanh). With T = tanh(B·x):  y = A·(w + T)/(1 + w·T).
// a = |w|, 1 − a exact (A − |z| via a_minus); e = e^{−2B|x|} = eh², |T| = (1 − e)/(1 + e), 1 − |T| = 2e/(1 + e),
// 1 − e = −expm1(−B|x|)·(1 + eh): every term is known to full relative accuracy. Numerator and denominator are
// carried times (1 + e), so one division gives y:
//   same signs:  y·D = ±(a·(1 + e) + (1 − e)),            D = (1 + e) + a·(1 − e)
//   opposite:    y·D = sign(x)·((1 − e) − a·(1 + e))  when |w| + |T| < 1,  else sign(x)·((1 − a)(1 + e) − 2e),
//                D = (1 − a)(1 + e) + 2a·e
//   ∂y/∂z = (1 − T²)/(1 + wT)² = (2·eh/D)²,  ∂y/∂x = A·B·(1 − w²)·∂y/∂z
template <bool SCALED, class V>
BM_HD void tanh_joint(V x, V z, V& y, V& dx, V& dz) {
  BM_OPS;
  const double A = SCALED ? kScaledTanhA : 1.0, B = SCALED ? kScaledTanhB : 1.0;
  V az = O::abs(z);
  V a = SCALED ? az / C(A) : az;
  V oma = SCALED ? a_minus(az) / C(A) : C(1.0) - az;
  V eh, ehm;
  O::exp_expm1(C(-B) * O::abs(x), eh, ehm);  // eh = e^{−B|x|}, ehm = eh − 1
  V e = eh * eh;
  V ope = C(1.0) + e;
  V ome = O::neg(ehm) * (eh + C(1.0));
  V aope = a * ope;
  auto same = O::ge(z * x, C(0.0));
  V diff = O::select(O::lt(aope + ome, ope), ome - aope, oma * ope - C(2.0) * e);
  V num = O::select(same, O::copysign(aope, z) + O::copysign(ome, x), O::copysign(C(1.0), x) * diff);
  V D = O::select(same, ope + a * ome, oma * ope + C(2.0) * a * e);
  y = SCALED ? C(A) * (num / D) : num / D;
  V q = eh / D;
  dz = C(4.0) * (q * q);
  dx = SCALED ? C(A * B) * (oma * (C(1.0) + a)) * dz : (oma * (C(1.0) + a)) * dz;
}

// ---- softplus_β: two exponentials, one logarithm -------------------------------------------------------------
// With t = βz, s = βx, c = 1 − e^{−t} = −expm1(−t) ∈ (0, 1]:  βu = s + t + log c,  e^{βu} = e^{s+t}·c, and with
// E = e^{−|s+t|}:
//   s + t ≤ 0:          e^{βu} = E·c ≤ 1:    β·y = log1p(E·c),     ∂y/∂x = E·c/(1 + E·c),  ∂y/∂z = E/(1 + E·c)
//   s + t > 0, c ≤ E:   e^{βu} = c/E ≤ 1:    β·y = log1p(c/E),     ∂y/∂x = c/(c + E),      ∂y/∂z = 1/(c + E)
//   s + t > 0, c > E:   βu > 0:              y = x + z + log(c + E)/β (= u + log1p(e^{−βu})/β)
// (∂y/∂x = σ(βu), ∂y/∂z = σ(βu)/c). Every sum is of positive terms; one logarithm serves the three cases, log1p(q)
// as log(v) − ((v − 1) − q)/v with v = fl(1 + q) (the correction restores the rounding error of 1 + q).
// Returns false, computing nothing, where c is subnormal or 0 in some lane (βz below the smallest normal: eps = 0
// or a tiny β): the case test c ≤ E and 1/(c + E) need c normal; the caller then uses the plain composition.
template <class V>
BM_HD bool softplus_joint(V x, V z, V p, V& y, V& dx, V& dz) {
  BM_OPS;
  V c = O::neg(O::expm1(O::neg(p) * z));
  if (O::any(O::lt(c, tiny<V>()))) return false;
  V xz = x + z;
  V st = p * xz;
  V E = O::exp(O::neg(O::abs(st)));
  auto low = O::le(st, C(0.0));
  auto logp = O::lor(low, O::le(c, E));  // β·y = log1p(q)
  V q = O::select(low, E * c, c / E);
  V v = O::select(logp, C(1.0) + q, c + E);
  V corr = O::select(logp, ((v - C(1.0)) - q) / v, C(0.0));
  V L = (O::log(v) - corr) / p;
  y = O::select(logp, L, xz + L);
  V r = C(1.0) / O::select(low, C(1.0) + E * c, c + E);
  dx = O::select(low, E * c, c) * r;
  dz = O::select(low, E, C(1.0)) * r;
  return true;
}

// ---- sigmoid: one exponential, no logarithm --------------------------------------------------------------------
// σ(x + logit(z)) = z / (z + (1 − z)·e^{−x}). With t = e^{−|x|} ∈ (0, 1] and D = z + (1 − z)·t (x ≥ 0) or
// D = z·t + (1 − z) (x < 0), both ≥ min(z, 1 − z) > 0:  y = z/D or z·t/D;  ∂y/∂z = t/D² (= σ'(u)·(ρ⁻¹)'(z));
// ∂y/∂x = σ'(u) = z(1 − z)·t/D². Every term is positive (no cancellation) and bounded (no overflow), and the
// error does not grow with |u| as it does through u = x + logit(z).
// Returns false, computing nothing, where z is subnormal or 0 in some lane (eps = 0): D and D² lose their
// precision or underflow there; the caller then uses the plain composition.
template <class V>
BM_HD bool sigmoid_joint(V x, V z, V& y, V& dz, V& dx) {
  BM_OPS;
  if (O::any(O::lt(z, tiny<V>()))) return false;
  // t = th², th = e^{−|x|/2}: products with th twice stay normal where t alone would be subnormal (|x| > 87)
  auto pos = O::ge(x, C(0.0));
  V th = O::exp(C(-0.5) * O::abs(x));
  V t = th * th;
  V omz = C(1.0) - z;
  V D = O::select(pos, z + omz * t, (z * th) * th + omz);
  y = O::select(pos, z / D, ((z * th) / D) * th);
  V q = th / D;
  dz = q * q;
  dx = z * omz * dz;
  return true;
}

// ---- forward / backward of one element (or one vector of elements) ----------------------------------------------

// zc = clamp(z, lo, hi) with NaN passing through; an infinite bound never clamps
template <class V>
BM_HD V clamp(V z, V lo, V hi) { BM_OPS; return O::select(O::lt(z, lo), lo, O::select(O::gt(z, hi), hi, z)); }

// y = ρ(x + ρ⁻¹(zc))
template <int ACT, class V>
BM_HD V forward(V x, V z, V lo, V hi, V p) {
  V zc = clamp(z, lo, hi);
  if constexpr (ACT == ASINH) {
    return asinh_fwd(x, zc);
  } else if constexpr (ACT == TANH || ACT == SCALED_TANH) {
    V y, dx, dz;
    tanh_joint<ACT == SCALED_TANH>(x, zc, y, dx, dz);
    return y;
  } else {
    if constexpr (ACT == SIGMOID || ACT == SOFTPLUS) {
      V y, dx, dz;
      bool joint;
      if constexpr (ACT == SIGMOID) joint = sigmoid_joint(x, zc, y, dz, dx);
      else joint = softplus_joint(x, zc, p, y, dx, dz);
      if (joint) return y;
    }
    return rho<ACT>(x + inv<ACT>(zc, p), p);
  }
}

// gx = g·ρ'(u);  gz = g·ρ'(u)·(ρ⁻¹)'(zc) inside [lo, hi], 0 outside;  both 0 where g == 0 (select, not product)
template <int ACT, class V>
BM_HD void backward(V g, V x, V z, V lo, V hi, V p, V& gx, V& gz) {
  BM_OPS;
  V zc = clamp(z, lo, hi);
  V d, dz;
  if constexpr (ACT == ASINH) {
    asinh_bwd(x, zc, d, dz);
  } else if constexpr (ACT == TANH || ACT == SCALED_TANH) {
    V y;
    tanh_joint<ACT == SCALED_TANH>(x, zc, y, d, dz);
  } else {
    bool joint = false;
    if constexpr (ACT == SIGMOID || ACT == SOFTPLUS) {
      V y;
      if constexpr (ACT == SIGMOID) joint = sigmoid_joint(x, zc, y, dz, d);
      else joint = softplus_joint(x, zc, p, y, d, dz);
    }
    if (!joint) {
      V iv = inv<ACT>(zc, p);
      d = drho<ACT>(x + iv, p);
      dz = d * dinv<ACT>(zc, iv, p);
    }
  }
  auto zero = O::eq(g, C(0.0));
  gx = O::select(zero, C(0.0), g * d);
  gz = O::select(O::lor(zero, O::lor(O::lt(z, lo), O::gt(z, hi))), C(0.0), g * dz);
}

#undef C
#undef BM_OPS

}  // namespace BM_CAPABILITY
}  // namespace bregman_math
