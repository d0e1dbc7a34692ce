/* nn_winograd_gen.h: the Winograd F(2x2, 3x3) transforms for one element
 * type, included by nn_winograd.c once per type with
 *   T        float or double
 *   SFX(f)   f's name for that type (f##_f32, f##_f64)
 * (see nn_winograd.c for the algorithm and the buffer layouts).
 *
 * Each transform's arithmetic is one plain loop over all tile slots of a
 * block (spelled out so it vectorises whatever the image width); the
 * input side reads its 4x4 patches at fixed offsets from the polyphase
 * parts of the input, the gradient side from gathered 2x2 tiles.
 */

/* U[xi][a][b] = G g G^T for g = w[a][b] (w: (A, B, 3, 3)), or with flip
 * g = w[b][a] rotated by 180 degrees (w: (B, A, 3, 3)). */
static void
SFX(weights)(T *U, const T *w, int64_t A, int64_t B, bool flip)
{
    int64_t st = A * B;
    for (int64_t a = 0; a < A; a++) {
        for (int64_t b = 0; b < B; b++) {
            const T *src = w + (flip ? b * A + a : a * B + b) * 9;
            T g[9], q[4][3];
            for (int k = 0; k < 9; k++) {
                g[k] = src[flip ? 8 - k : k];
            }
            for (int j = 0; j < 3; j++) {
                q[0][j] = g[j];
                q[1][j] = (g[j] + g[3 + j] + g[6 + j]) * (T)0.5;
                q[2][j] = (g[j] - g[3 + j] + g[6 + j]) * (T)0.5;
                q[3][j] = g[6 + j];
            }
            T *u = U + a * B + b;
            for (int i = 0; i < 4; i++) {
                u[(4 * i + 0) * st] = q[i][0];
                u[(4 * i + 1) * st] = (q[i][0] + q[i][1] + q[i][2]) * (T)0.5;
                u[(4 * i + 2) * st] = (q[i][0] - q[i][1] + q[i][2]) * (T)0.5;
                u[(4 * i + 3) * st] = q[i][2];
            }
        }
    }
}

/* The four polyphase parts of the zero-padded input rows that tile rows
 * [ty0, ty0 + nr - 1) need: P[2 a + b][r][s] = padded (2 (ty0 + r) + a,
 * 2 s + b), r < nr, s < TWp, each part plen long (one spare at the end).
 * Patch element (k, j) of tile (ty0 + r, s) is then part (k & 1, j & 1)
 * at [r + k / 2][s + j / 2]: a fixed offset from slot r * TWp + s. */
static void
SFX(polyphase)(T *restrict P, int64_t plen, const T *plane, const wino *p,
               int64_t ty0, int64_t nr)
{
    int64_t TWp = p->TW + 1, W = p->W, pw = p->pw;
    for (int a = 0; a < 2; a++) {
        for (int b = 0; b < 2; b++) {
            /* slots s with 0 <= 2 s + b - pw < W */
            int64_t lo = pw - b > 0 ? (pw - b + 1) / 2 : 0;
            int64_t hi = W - 1 + pw - b >= 0 ? (W - 1 + pw - b) / 2 + 1 : 0;
            hi = hi < TWp ? hi : TWp;
            lo = lo < hi ? lo : hi;
            T *part = P + (2 * a + b) * plen;
            for (int64_t r = 0; r < nr; r++) {
                int64_t ih = 2 * (ty0 + r) + a - p->ph;
                T *dst = part + r * TWp;
                if (ih < 0 || ih >= p->H) {
                    memset(dst, 0, (size_t)TWp * sizeof(T));
                    continue;
                }
                const T *src = plane + ih * W + b - pw;
                for (int64_t s = 0; s < lo; s++) {
                    dst[s] = 0;
                }
                for (int64_t s = lo; s < hi; s++) {
                    dst[s] = src[2 * s];
                }
                for (int64_t s = hi; s < TWp; s++) {
                    dst[s] = 0;
                }
            }
            part[nr * TWp] = 0;
        }
    }
}

/* v[xi * st + t] = (B^T d B)[xi] for slots t < n of the polyphase parts
 * (see polyphase). ivdep: the 16 output rows never overlap (st >= n),
 * which the compiler cannot see, and without it would not vectorise. */
DT_NNC_CLONES static void
SFX(input_math)(T *restrict v, int64_t st, const T *restrict P,
                int64_t plen, int64_t n, int64_t TWp)
{
#pragma GCC ivdep
    for (int64_t t = 0; t < n; t++) {
#define D(k, j)                                                           \
    P[(2 * ((k) & 1) + ((j) & 1)) * plen + ((k) >> 1) * TWp + ((j) >> 1) + t]
        /* B^T d, column j */
#define BT_COL(j)                                                         \
    T a0##j = D(0, j) - D(2, j);                                          \
    T a1##j = D(1, j) + D(2, j);                                          \
    T a2##j = D(2, j) - D(1, j);                                          \
    T a3##j = D(1, j) - D(3, j);
        BT_COL(0) BT_COL(1) BT_COL(2) BT_COL(3)
#undef BT_COL
#undef D
        /* (.) B, row i */
#define B_ROW(i)                                                          \
    v[(4 * (i) + 0) * st + t] = a##i##0 - a##i##2;                        \
    v[(4 * (i) + 1) * st + t] = a##i##1 + a##i##2;                        \
    v[(4 * (i) + 2) * st + t] = a##i##2 - a##i##1;                        \
    v[(4 * (i) + 3) * st + t] = a##i##1 - a##i##3;
        B_ROW(0) B_ROW(1) B_ROW(2) B_ROW(3)
#undef B_ROW
    }
}

/* V[xi][c][t] = B^T d B for the tiles of rows [R0, R1) (tile row R is
 * image R / TH, row R % TH; slot t = (R - R0) * TWp + tx, where the last
 * slot of each row, tx = TW, is a spare that the output side ignores).
 * buf: 4 * (TB + TWp + 1). */
static void
SFX(input)(T *V, const T *x, const wino *p, int64_t R0, int64_t R1, T *buf)
{
    int64_t TWp = p->TW + 1, TB = (R1 - R0) * TWp;
    for (int64_t R = R0; R < R1;) {
        int64_t n = R / p->TH, ty0 = R % p->TH;
        int64_t nt = p->TH - ty0 < R1 - R ? p->TH - ty0 : R1 - R;
        int64_t plen = (nt + 1) * TWp + 1;
        for (int64_t c = 0; c < p->C; c++) {
            SFX(polyphase)(buf, plen, x + (n * p->C + c) * p->H * p->W, p,
                           ty0, nt + 1);
            SFX(input_math)(V + c * TB + (R - R0) * TWp, p->C * TB, buf,
                            plen, nt * TWp, TWp);
        }
        R += nt;
    }
}

/* Y[q][t] (q = 2 * row + column of the 2x2 tile) = A^T m A + b for the
 * products m[xi * st + t]. */
DT_NNC_CLONES static void
SFX(output_math)(T *restrict Y, const T *restrict m, int64_t st, int64_t TB,
                 T b)
{
    for (int64_t t = 0; t < TB; t++) {
        T s0[4], s1[4];
        for (int j = 0; j < 4; j++) {            /* A^T m */
            T m0 = m[j * st + t], m1 = m[(4 + j) * st + t];
            T m2 = m[(8 + j) * st + t], m3 = m[(12 + j) * st + t];
            s0[j] = m0 + m1 + m2;
            s1[j] = m1 - m2 - m3;
        }
        Y[t] = s0[0] + s0[1] + s0[2] + b;        /* (.) A */
        Y[TB + t] = s0[1] - s0[2] - s0[3] + b;
        Y[2 * TB + t] = s1[0] + s1[1] + s1[2] + b;
        Y[3 * TB + t] = s1[1] - s1[2] - s1[3] + b;
    }
}

/* out tiles of rows [R0, R1) = A^T M A (+ bias), clipped to OH x OW.
 * buf: 4 * TB. */
static void
SFX(output)(T *out, const T *M, const T *bias, const wino *p, int64_t R0,
            int64_t R1, T *buf)
{
    int64_t TWp = p->TW + 1, TB = (R1 - R0) * TWp, pairs = p->OW / 2;
    for (int64_t o = 0; o < p->O; o++) {
        SFX(output_math)(buf, M + o * TB, p->O * TB, TB,
                         bias ? bias[o] : (T)0);
        for (int64_t R = R0; R < R1; R++) {
            int64_t n = R / p->TH, ty = R % p->TH, t0 = (R - R0) * TWp;
            T *r = out + ((n * p->O + o) * p->OH + 2 * ty) * p->OW;
            for (int q = 0; q < 2 && 2 * ty + q < p->OH; q++, r += p->OW) {
                const T *ye = buf + 2 * q * TB + t0, *yo = ye + TB;
                for (int64_t tx = 0; tx < pairs; tx++) {
                    r[2 * tx] = ye[tx];
                    r[2 * tx + 1] = yo[tx];
                }
                if (p->OW & 1) {
                    r[2 * pairs] = ye[pairs];
                }
            }
        }
    }
}

/* z[xi * st + t] = (A dY A^T)[xi] for the gathered 2x2 tiles Y[q][t]
 * (ivdep as in input_math). */
DT_NNC_CLONES static void
SFX(gradout_math)(T *restrict z, int64_t st, const T *restrict Y,
                  int64_t TB)
{
#pragma GCC ivdep
    for (int64_t t = 0; t < TB; t++) {
        T y00 = Y[t], y01 = Y[TB + t], y10 = Y[2 * TB + t];
        T y11 = Y[3 * TB + t];
        /* row k of A dY is (r0, r1); row k of (A dY) A^T from it */
#define AT_ROW(k, r0, r1)                                                 \
    {                                                                     \
        T q0 = (r0), q1 = (r1);                                           \
        z[(4 * (k) + 0) * st + t] = q0;                                   \
        z[(4 * (k) + 1) * st + t] = q0 + q1;                              \
        z[(4 * (k) + 2) * st + t] = q0 - q1;                              \
        z[(4 * (k) + 3) * st + t] = -q1;                                  \
    }
        AT_ROW(0, y00, y01)
        AT_ROW(1, y00 + y10, y01 + y11)
        AT_ROW(2, y00 - y10, y01 - y11)
        AT_ROW(3, -y10, -y11)
#undef AT_ROW
    }
}

/* Z[xi][o][t] = A dY A^T for the output-gradient tiles of rows [R0, R1)
 * (zero beyond OH x OW). buf: 4 * TB. */
static void
SFX(gradout)(T *Z, const T *gy, const wino *p, int64_t R0, int64_t R1,
             T *buf)
{
    int64_t TWp = p->TW + 1, TB = (R1 - R0) * TWp, pairs = p->OW / 2;
    for (int64_t o = 0; o < p->O; o++) {
        for (int64_t R = R0; R < R1; R++) {
            int64_t n = R / p->TH, ty = R % p->TH, t0 = (R - R0) * TWp;
            const T *g = gy + ((n * p->O + o) * p->OH + 2 * ty) * p->OW;
            for (int q = 0; q < 2; q++, g += p->OW) {
                T *ye = buf + 2 * q * TB + t0, *yo = ye + TB;
                /* zeros: rows past OH, the odd last column, the spare */
                memset(ye, 0, (size_t)TWp * sizeof(T));
                memset(yo, 0, (size_t)TWp * sizeof(T));
                if (2 * ty + q >= p->OH) {
                    continue;
                }
                for (int64_t tx = 0; tx < pairs; tx++) {
                    ye[tx] = g[2 * tx];
                    yo[tx] = g[2 * tx + 1];
                }
                if (p->OW & 1) {
                    ye[pairs] = g[2 * pairs];
                }
            }
        }
        SFX(gradout_math)(Z + o * TB, p->O * TB, buf, TB);
    }
}

/* gw[o][c] = G^T dU[.][o][c] G (3x3 from 4x4). */
static void
SFX(wgrad)(T *gw, const T *dU, int64_t O, int64_t C)
{
    int64_t st = O * C;
    for (int64_t oc = 0; oc < O * C; oc++) {
        T u[4][4], q[3][4];
        for (int k = 0; k < 16; k++) {
            u[k / 4][k % 4] = dU[k * st + oc];
        }
        for (int j = 0; j < 4; j++) {
            T h = (u[1][j] + u[2][j]) * (T)0.5;
            q[0][j] = u[0][j] + h;
            q[1][j] = (u[1][j] - u[2][j]) * (T)0.5;
            q[2][j] = h + u[3][j];
        }
        T *g = gw + oc * 9;
        for (int i = 0; i < 3; i++) {
            T h = (q[i][1] + q[i][2]) * (T)0.5;
            g[3 * i + 0] = q[i][0] + h;
            g[3 * i + 1] = (q[i][1] - q[i][2]) * (T)0.5;
            g[3 * i + 2] = h + q[i][3];
        }
    }
}
