// Inlined float32 exp, expm1, log, log1p and tanh on AVX2 / AVX-512 vectors (at::vec::Vectorized<float>): cheaper
// than Sleef's out-of-line calls and free of subnormal intermediates, which are very slow on some CPUs (microcode
// assists). Accuracy: within ~1.5 ulp over the whole range; NaN in, NaN
// out; exp flushes results below FLT_MIN (e^x for x < −87.34) to 0. Included by vec_kernels.h for those ISAs only.
#pragma once

#include <ATen/cpu/vec/vec.h>
#include <immintrin.h>

namespace bregman_math {
inline namespace BM_CAPABILITY {
namespace vmath {

using Vf = at::vec::Vectorized<float>;

#if defined(CPU_CAPABILITY_AVX512)
// 2^n for integer-valued n in [−126, 127]
inline Vf pow2i(const Vf& n) {
  __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
  return _mm512_castsi512_ps(_mm512_slli_epi32(i, 23));
}
// x = m·2^e with m ∈ [0.5, 1), for finite normal x > 0
inline Vf frexp(const Vf& x, Vf& e) {
  __m512i b = _mm512_castps_si512(x);
  e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 23), _mm512_set1_epi32(126)));
  return _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
}
#else
inline Vf pow2i(const Vf& n) {
  __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  return _mm256_castsi256_ps(_mm256_slli_epi32(i, 23));
}
inline Vf frexp(const Vf& x, Vf& e) {
  __m256i b = _mm256_castps_si256(x);
  e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(126)));
  return _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
}
#endif

// Comparisons and selects. AVX-512: masks live in mask registers (a compare writes one, a blend reads it);
// AVX2: all-ones lanes of a vector (the blend reads the sign bits). Ordered predicates (false on NaN) except ne.
#if defined(CPU_CAPABILITY_AVX512)
using Mf = __mmask16;
inline Mf lt(const Vf& a, const Vf& b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline Mf gt(const Vf& a, const Vf& b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline Mf eq(const Vf& a, const Vf& b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
inline Mf ne(const Vf& a, const Vf& b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
inline Vf sel(Mf m, const Vf& a, const Vf& b) { return _mm512_mask_blend_ps(m, b, a); }
inline bool any(Mf m) { return m != 0; }
#else
using Mf = Vf;
inline Mf lt(const Vf& a, const Vf& b) { return a < b; }
inline Mf gt(const Vf& a, const Vf& b) { return a > b; }
inline Mf eq(const Vf& a, const Vf& b) { return a == b; }
inline Mf ne(const Vf& a, const Vf& b) { return a != b; }
inline Vf sel(const Mf& m, const Vf& a, const Vf& b) { return Vf::blendv(b, a, m); }
inline bool any(const Mf& m) { return m.zero_mask() != (1 << Vf::size()) - 1; }
#endif

// c_n·x^n + … + c_1·x + c_0 by Horner's rule, coefficients from the highest: horner(x, c_n, …, c_0)
inline Vf horner_acc(const Vf& acc, const Vf&) { return acc; }
template <class... Cs>
inline Vf horner_acc(const Vf& acc, const Vf& x, float c, Cs... rest) {
  return horner_acc(at::vec::fmadd(acc, x, Vf(c)), x, rest...);
}
template <class... Cs>
inline Vf horner(const Vf& x, float top, Cs... rest) { return horner_acc(Vf(top), x, rest...); }

// x = n·ln2 + r, |r| ≤ ln2/2 (Cody–Waite, ln2 = C1 + C2 with C1 exact in 9 bits); returns r, sets n
inline Vf reduce(const Vf& x, Vf& n) {
  n = (x * Vf(1.44269504088896341f)).round();
  Vf r = at::vec::fmadd(n, Vf(-0.693359375f), x);
  return at::vec::fmadd(n, Vf(2.12194440e-4f), r);
}

// e^r − 1 for |r| ≤ ln2/2: r + r²·(1/2! + r/3! + … + r⁶/8!) (Taylor, truncation < 2^-30 relative)
inline Vf expm1_poly(const Vf& r) {
  Vf q = horner(r, 1.0f / 40320, 1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f);
  return at::vec::fmadd(q, r * r, r);
}

constexpr float kExpHi = 88.72283935546875f;  // largest x with finite e^x
constexpr float kExpLo = -87.33654022216797f;  // e^x < FLT_MIN below

// e^x = 2^n·(1 + p(r)), 2^n applied in two halves so that n ∈ [−126, 128] never leaves the normal range
inline Vf exp(const Vf& x) {
  Vf xc = sel(gt(x, Vf(kExpHi)), Vf(kExpHi), sel(lt(x, Vf(kExpLo)), Vf(kExpLo), x));
  Vf n;
  Vf p = expm1_poly(reduce(xc, n)) + Vf(1.0f);
  Vf n1 = (n * Vf(0.5f)).floor();
  Vf y = p * pow2i(n1) * pow2i(n - n1);
  return sel(gt(x, Vf(kExpHi)), Vf(INFINITY), sel(lt(x, Vf(kExpLo)), Vf(0.0f), y));
}

// e^x − 1 = p(r) for n = 0, else 2^n·p(r) + (2^n − 1); −1 below −17.33 (e^x < 2^-25), inf above kExpHi
inline Vf expm1(const Vf& x) {
  Vf xc = sel(gt(x, Vf(kExpHi)), Vf(kExpHi), sel(lt(x, Vf(-18.0f)), Vf(-18.0f), x));
  Vf n;
  Vf p = expm1_poly(reduce(xc, n));
  Vf n1 = (n * Vf(0.5f)).floor();
  Vf s1 = pow2i(n1), s2 = pow2i(n - n1);
  Vf t = s1 * s2;
  // n ≤ 127: t = 2^n exact, t − 1 exact to float; n = 128 (x near kExpHi): (p + 1)·2^64·2^64 − 1
  Vf y = sel(gt(n, Vf(127.0f)), (p + Vf(1.0f)) * s1 * s2 - Vf(1.0f), at::vec::fmadd(t, p, t - Vf(1.0f)));
  y = sel(eq(n, Vf(0.0f)), p, y);
  return sel(gt(x, Vf(kExpHi)), Vf(INFINITY), sel(lt(x, Vf(-18.0f)), Vf(-1.0f), y));
}

// e^x and e^x − 1 for x ≤ 0 from one reduction: with t = 2^n (normal for x ≥ kExpLo), e^x = t + t·p(r) and
// e^x − 1 = t·p(r) + (t − 1) (t − 1 exact for n ≥ −24, ≈ −1 below); e^x = 0 below kExpLo, NaN stays NaN
inline void exp_expm1(const Vf& x, Vf& e, Vf& em) {
  Vf xc = sel(lt(x, Vf(kExpLo)), Vf(kExpLo), x);
  Vf n;
  Vf p = expm1_poly(reduce(xc, n));
  Vf t = pow2i(n);
  e = sel(lt(x, Vf(kExpLo)), Vf(0.0f), at::vec::fmadd(t, p, t));
  em = at::vec::fmadd(t, p, t - Vf(1.0f));
}

// log x = e·ln2 + log(1 + f), x = 2^e·(1 + f), 1 + f ∈ [√½, √2); log(1 + f) = f − f²/2 + f³·P(f) (Cephes logf)
inline Vf log(const Vf& x) {
  const Vf tiny(1.17549435e-38f);
  const Mf sub = lt(x, tiny);
  Vf xs = sel(sub, x * Vf(8388608.0f), x);  // subnormals: scale by 2^23
  Vf e;
  Vf m = frexp(xs, e);
  e = sel(sub, e - Vf(23.0f), e);
  const Mf small = lt(m, Vf(0.707106781186547524f));
  Vf f = sel(small, m + m - Vf(1.0f), m - Vf(1.0f));
  e = sel(small, e - Vf(1.0f), e);
  Vf z = f * f;
  Vf y = horner(f, 7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
                -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f);
  y = y * f * z;
  y = at::vec::fmadd(e, Vf(-2.12194440e-4f), y);
  y = at::vec::fmadd(z, Vf(-0.5f), y);
  Vf r = at::vec::fmadd(e, Vf(0.693359375f), f + y);
  // log(+inf) = inf, log(0) = −inf, log(x < 0) = NaN, NaN stays NaN
  r = sel(eq(x, Vf(INFINITY)), x, r);
  r = sel(eq(x, Vf(0.0f)), Vf(-INFINITY), r);
  return sel(lt(x, Vf(0.0f)), Vf(NAN), sel(ne(x, x), x, r));
}

// log1p(w) = log(u) − ((u − 1) − w)/u with u = fl(1 + w): the correction restores the rounding error of 1 + w
inline Vf log1p(const Vf& w) {
  Vf u = w + Vf(1.0f);
  Vf r = log(u) - ((u - Vf(1.0f)) - w) / u;
  r = sel(eq(u, Vf(0.0f)), Vf(-INFINITY), r);
  return sel(eq(w, Vf(INFINITY)), w, r);
}

// tanh(u): |u| < 0.625: u + u³·P(u²); else sign(u)·(1 − 2/(e^{2|u|} + 1)) (Cephes tanhf)
inline Vf tanh(const Vf& u) {
  Vf a = u.abs();
  Vf big = Vf(1.0f) - Vf(2.0f) / (exp(a + a) + Vf(1.0f));
  Vf z = u * u;
  Vf p = horner(z, -5.70498872745e-3f, 2.06390887954e-2f, -5.37397155531e-2f, 1.33314422036e-1f, -3.33332819422e-1f);
  Vf small = at::vec::fmadd(p * z, u, u);
  return sel(lt(a, Vf(0.625f)), small, big.abs() | (u & Vf(-0.0f)));
}

// tan z for |z| ≤ π/2: |z| ≤ π/4: z + z³·P(z²) (Cephes tanf); else cot(r) = 1/r − r·Q(r²) (Taylor to r¹³,
// truncation < 1e-9 at r = π/4) at r = π/2 − |z| = (PIO2_HI − |z|) + PIO2_LO, the first difference exact
// (Sterbenz), r and 1/r carried to ~double-float accuracy (within one ulp, like Sleef's u10). One division. Callers with larger |z| use Sleef (any_beyond_pio2 is the check).
constexpr float kPio2Hi = 1.57079637050628662109375f;  // fp32(π/2) > π/2
constexpr float kPio2Lo = -4.37113900018624283e-8f;    // π/2 − kPio2Hi
inline bool any_beyond_pio2(const Vf& z) { return any(gt(z.abs(), Vf(kPio2Hi))); }
inline Vf tan_pio2(const Vf& z) {
  Vf a = z.abs();
  const Mf big = gt(a, Vf(0.785398163397448f));
  Vf rh = Vf(kPio2Hi) - a;
  Vf r = sel(big, rh + Vf(kPio2Lo), a);
  Vf rl = Vf(kPio2Lo) - (r - rh);  // r + rl = π/2 − |z| to ~2^-48 (fast two-sum, |rh| ≥ |PIO2_LO| on big lanes)
  Vf w = r * r;
  Vf p = horner(w, 9.38540185543e-3f, 3.11992232697e-3f, 2.44301354525e-2f, 5.34112807005e-2f, 1.33387994085e-1f,
                3.33331568548e-1f);
  Vf q = horner(w, 2.19259478518737778e-7f, 2.1644042808063972085e-6f, 2.1377799155576933355e-5f,
                2.1164021164021164021e-4f, 2.1164021164021164021e-3f, 2.2222222222222222222e-2f,
                3.3333333333333333333e-1f);
  // 1/(r + rl) = inv·(1 + e), e = (1 − inv·r) − rl·inv (the residual of the division, exact by fma, plus rl)
  Vf inv = Vf(1.0f) / sel(big, r, Vf(1.0f));
  Vf e = at::vec::fmadd(rl.neg(), inv, at::vec::fmadd(inv.neg(), r, Vf(1.0f)));
  Vf cot = inv + at::vec::fmadd(inv, e, (q * r).neg());
  Vf t = sel(big, cot, at::vec::fmadd(p * w, r, r));
  return t ^ (z & Vf(-0.0f));  // odd in z (t < 0 for fp32(π/2) > π/2: a flip, not an or)
}

// atan u: |u| > tan(3π/8): π/2 + atan(−1/|u|); |u| > tan(π/8): π/4 + atan((|u| − 1)/(|u| + 1)); then
// w + w³·P(w²) for |w| ≤ tan(π/8) (Cephes atanf), the multiple of π/4 added in two parts last. One division.
inline Vf atan(const Vf& u) {
  Vf a = u.abs();
  const Mf hi = gt(a, Vf(2.414213562373095f));
  const Mf mid = gt(a, Vf(0.4142135623730950f));
  Vf w = sel(hi, Vf(-1.0f), sel(mid, a - Vf(1.0f), a)) / sel(hi, a, sel(mid, a + Vf(1.0f), Vf(1.0f)));
  Vf k = sel(hi, Vf(2.0f), sel(mid, Vf(1.0f), Vf(0.0f)));  // result = k·π/4 + atan(w)
  Vf z = w * w;
  Vf p = horner(z, 8.05374449538e-2f, -1.38776856032e-1f, 1.99777106478e-1f, -3.33329491539e-1f);
  Vf r = at::vec::fmadd(p * z, w, w);
  // π/4 = PIO4_HI + PIO4_LO
  r = at::vec::fmadd(k, Vf(-2.18556950009e-8f), r);
  r = at::vec::fmadd(k, Vf(0.785398185253143310546875f), r);
  return r | (u & Vf(-0.0f));
}

}  // namespace vmath
}  // namespace BM_CAPABILITY
}  // namespace bregman_math
