/* ew_math.h: branch-free float32 exp, tanh, sigmoid and GELU (and GELU's
 * derivatives) for the elementwise loops. libm's expf/tanhf are calls GCC
 * cannot vectorise; these are plain arithmetic and bitwise selects, so a
 * loop over them becomes AVX2/AVX-512 code under the loops' target_clones.
 *
 * Accuracy (against double-precision libm over dense sweeps): ew_expf
 * within 1 ulp, ew_tanhf within 1.3 ulp, ew_gelu_erf within 8 ulp for
 * |x| < 2 and 13 ulp for x > -5.6 (results under 1e-7 beyond: 2e-5
 * relative). PyTorch's own float32 GELU is off by up to 1.5e-7 absolute.
 * Both GELU derivatives are within 6e-7 absolute over [-12, 12]
 * (PyTorch's float32 ones: 1e-6).
 */
#ifndef DT_EW_MATH_H
#define DT_EW_MATH_H

#include <stdint.h>
#include <string.h>

/* Forced: an out-of-line call stops the loop around it vectorising (GCC
 * declines to inline the larger ones once two loops use them). */
#define EW_MATH static inline __attribute__((always_inline))

EW_MATH float
ew_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

EW_MATH uint32_t
ew_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* c ? a : b as bit operations on values already computed, so GCC's
 * if-conversion never has to execute floating-point work conditionally
 * (which it refuses for AVX2 under the default -ftrapping-math). */
EW_MATH float
ew_select(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(c != 0);
    return ew_bits_float((ew_float_bits(a) & m) | (ew_float_bits(b) & ~m));
}

/* The same for doubles. */
EW_MATH double
ew_selectd(int c, double a, double b)
{
    uint64_t m = 0u - (uint64_t)(c != 0), ua, ub, r;
    double d;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    r = (ua & m) | (ub & ~m);
    memcpy(&d, &r, sizeof d);
    return d;
}

/* 2**k for integer k in [-126, 127], built from the exponent bits. */
EW_MATH float
ew_exp2i(int32_t k)
{
    return ew_bits_float((uint32_t)(k + 127) << 23);
}

/* exp(r) for |r| <= ln2/2 (Cephes polynomial), shared by the exps. */
EW_MATH float
ew_exp_reduced(float r)
{
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * (r * r) + r + 1.0f;
}

/* exp(x): x = k ln2 + r with |r| <= ln2/2; 2**k is applied in two halves
 * so that results down to the subnormals (k = -150) and up to overflow
 * (k = 128) come out right. */
EW_MATH float
ew_expf(float x)
{
    float xc = ew_select(x > -104.0f, x, -104.0f);   /* NaN -> -104 */
    xc = ew_select(xc < 88.8f, xc, 88.8f);
    /* round to nearest by the 1.5 * 2**23 trick (rintf is a call on
     * baseline x86-64) */
    float kf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = kf * -0.693359375f + xc;
    r = kf * 2.12194440e-4f + r;
    float p = ew_exp_reduced(r);
    int32_t k = (int32_t)kf;
    int32_t k1 = k >> 1;
    float y = p * ew_exp2i(k1) * ew_exp2i(k - k1);
    return ew_select(x == x, y, x);
}

/* x Phi(x) = x/2 erfc(-x/sqrt 2). With t = |x|/sqrt 2 and
 * s = 1/(1 + 0.4 t), erfc(t) = R(s) exp(-t^2) where R is a degree-8
 * polynomial in s, minimax over t in [0, 6] (relative error 1.2e-8); its
 * coefficients below carry the factor 1/2. Then
 *   x Phi(x) = max(x, 0) - |x| erfc(t) / 2
 * for either sign, so the loop has no selects, and for x < 0 the result
 * comes from erfc itself, not from 1 + erf(z), so the negative tail keeps
 * its relative accuracy. exp(-x^2/2) is clamped at exp(-87) (a normal
 * float); past |x| = 13 that leaves results below 1e-36 instead of 0.
 * The parts: R(s)/2 is returned, exp(-x^2/2) stored in *e. */
EW_MATH float
ew_gelu_erfc_parts(float x, float *e)
{
    float ax = __builtin_fabsf(x);
    float s = 1.0f / (1.0f + ax * 0.28284271247461903f);
    float r = 4.22743334085e-02f;
    r = r * s - 2.24215447795e-01f;
    r = r * s + 4.02936237270e-01f;
    r = r * s - 2.63619276635e-01f;
    r = r * s + 2.63455433210e-01f;
    r = r * s + 4.14172338770e-02f;
    r = r * s + 1.26534561430e-01f;
    r = r * s + 1.11123444810e-01f;
    r = r * s + 9.34744253150e-05f;
    float a = -0.5f * (x * x);
    a = ew_select(a > -87.0f, a, -87.0f);
    float kf = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float rr = kf * -0.693359375f + a;
    rr = kf * 2.12194440e-4f + rr;
    *e = ew_exp_reduced(rr) * ew_exp2i((int32_t)kf);
    return r;
}

EW_MATH float
ew_gelu_erf(float x)
{
    float e, r = ew_gelu_erfc_parts(x, &e);
    float ax = __builtin_fabsf(x);
    float h = ew_select(ax < 1e4f, ax, 1e4f) * (r * e);   /* |x| erfc(t)/2 */
    return ew_select(x > 0.0f, x, 0.0f) - h;
}

/* d/dx x Phi(x) = Phi(x) + x phi(x), from the same two parts: with
 * q = erfc(t)/2 = r e, Phi(x) is 1 - q for x > 0 and q otherwise, and
 * phi(x) = e / sqrt(2 pi). */
EW_MATH float
ew_gelu_erf_grad(float x)
{
    float e, r = ew_gelu_erfc_parts(x, &e);
    float q = r * e;
    float xc = ew_select(__builtin_fabsf(x) < 1e4f, x, 0.0f);
    float cdf = ew_select(x > 0.0f, 1.0f - q, q);
    return cdf + xc * (e * 0.39894228040143267794f);
}

/* tanh(x): an odd minimax polynomial below |x| = 0.625 (relative error
 * 4e-9), 1 - 2/(exp(2|x|) + 1) above, where it no longer cancels. */
EW_MATH float
ew_tanhf(float x)
{
    float ax = __builtin_fabsf(x), s = x * x;
    float q = -5.7170340296e-03f;
    q = q * s + 2.0650577946e-02f;
    q = q * s - 5.3743495392e-02f;
    q = q * s + 1.3331491257e-01f;
    q = q * s - 3.3333283924e-01f;
    float small = x + (x * s) * q;
    float big = 1.0f - 2.0f / (ew_expf(2.0f * ax) + 1.0f);
    return ew_select(ax < 0.625f, small, __builtin_copysignf(big, x));
}

/* The tanh approximation: x/2 (1 + tanh(u)) = x sigmoid(2u), with
 * u = sqrt(2/pi) (x + 0.044715 x^3). */
EW_MATH float
ew_gelu_tanh(float x)
{
    float u2 = 1.595769121605730711f * ((0.044715f * x) * (x * x) + x);
    return x / (1.0f + ew_expf(-u2));
}

/* PyTorch's derivative of the tanh form:
 * (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
EW_MATH float
ew_gelu_tanh_grad(float x)
{
    const float beta = 0.797884560802865355879892f, kappa = 0.044715f;
    float x_sq = x * x;
    float x_cube = x_sq * x;
    float t = ew_tanhf(beta * (x + kappa * x_cube));
    float left_d = 0.5f * (1.0f + t);
    float inner_d = beta * (1.0f + 3.0f * kappa * x_sq);
    return left_d + (0.5f * x) * (1.0f - t * t) * inner_d;
}

EW_MATH float
ew_sigmoidf(float x)
{
    return 1.0f / (1.0f + ew_expf(-x));
}

#endif /* DT_EW_MATH_H */
