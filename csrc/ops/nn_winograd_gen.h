/* nn_winograd_gen.h: the Winograd F(2x2, 3x3) transforms for one element
 * type, included by nn_winograd.c once per type with
 *   T        float or double
 *   SFX(f)   f's name for that type (f##_f32, f##_f64)
 * (see nn_winograd.c for the algorithm and the buffer layouts).
 *
 * Each transform works on a block of tiles: the 4x4 patches (or 2x2
 * gradient tiles) are first gathered into one array per patch position,
 * D[k][t]; then the arithmetic is a plain loop over all tiles t of the
 * block, spelled out so it vectorises whatever the image width.
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

/* D[4 * k + j][t0 + tx] = input row 2 ty - ph + k, column 2 tx + j - pw
 * (zero in the padding), for one channel plane. Read straight from the
 * plane: the tiles whose columns are all inside take the unchecked loop. */
static void
SFX(gather)(T *restrict D, int64_t TB, int64_t t0, const T *plane,
            const wino *p, int64_t ty)
{
    int64_t TW = p->TW, pw = p->pw, W = p->W;
    /* tiles tx in [in0, in1) have 0 <= 2 tx - pw and 2 tx + 3 - pw < W */
    int64_t in0 = (pw + 1) / 2, lim = W + pw - 4;
    int64_t in1 = lim >= 0 ? lim / 2 + 1 : 0;
    in1 = in1 < TW ? in1 : TW;
    in0 = in0 < in1 ? in0 : in1;
    for (int k = 0; k < 4; k++) {
        int64_t ih = 2 * ty - p->ph + k;
        T *d0 = D + 4 * k * TB + t0, *d1 = d0 + TB, *d2 = d1 + TB;
        T *d3 = d2 + TB;
        if (ih < 0 || ih >= p->H) {
            for (int64_t tx = 0; tx < TW; tx++) {
                d0[tx] = d1[tx] = d2[tx] = d3[tx] = 0;
            }
            continue;
        }
        const T *src = plane + ih * W;
        for (int64_t tx = in0; tx < in1; tx++) {
            const T *e = src + 2 * tx - pw;
            d0[tx] = e[0];
            d1[tx] = e[1];
            d2[tx] = e[2];
            d3[tx] = e[3];
        }
        for (int64_t tx = 0; tx < TW; tx++) {
            if (tx >= in0 && tx < in1) {
                tx = in1 - 1;     /* skip the interior, done above */
                continue;
            }
            T e[4];
            for (int jj = 0; jj < 4; jj++) {
                int64_t iw = 2 * tx + jj - pw;
                e[jj] = iw >= 0 && iw < W ? src[iw] : (T)0;
            }
            d0[tx] = e[0];
            d1[tx] = e[1];
            d2[tx] = e[2];
            d3[tx] = e[3];
        }
    }
}

/* v[xi * st + t] = (B^T d B)[xi] for the gathered patches D[k][t]. The
 * results go through a chunk buffer with a fixed row stride, so the
 * compiler sees 16 independent output rows and vectorises over t. */
DT_NNC_CLONES static void
SFX(input_math)(T *restrict v, int64_t st, const T *restrict D, int64_t TB)
{
    const T *D0 = D, *D1 = D + 4 * TB, *D2 = D + 8 * TB, *D3 = D + 12 * TB;
    T out[16][CHUNK];
    for (int64_t c0 = 0; c0 < TB; c0 += CHUNK) {
        int64_t nc = TB - c0 < CHUNK ? TB - c0 : CHUNK;
        for (int64_t u = 0; u < nc; u++) {
            int64_t t = c0 + u;
            /* B^T d: column j of rows 0..3 (patch row k is Dk[j]) */
#define BT_COL(j)                                                         \
    T a0##j = D0[(j) * TB + t] - D2[(j) * TB + t];                        \
    T a1##j = D1[(j) * TB + t] + D2[(j) * TB + t];                        \
    T a2##j = D2[(j) * TB + t] - D1[(j) * TB + t];                        \
    T a3##j = D1[(j) * TB + t] - D3[(j) * TB + t];
            BT_COL(0) BT_COL(1) BT_COL(2) BT_COL(3)
#undef BT_COL
            /* (.) B: row i */
#define B_ROW(i)                                                          \
    out[4 * (i) + 0][u] = a##i##0 - a##i##2;                              \
    out[4 * (i) + 1][u] = a##i##1 + a##i##2;                              \
    out[4 * (i) + 2][u] = a##i##2 - a##i##1;                              \
    out[4 * (i) + 3][u] = a##i##1 - a##i##3;
            B_ROW(0) B_ROW(1) B_ROW(2) B_ROW(3)
#undef B_ROW
        }
        for (int xi = 0; xi < 16; xi++) {
            memcpy(v + xi * st + c0, out[xi], (size_t)nc * sizeof(T));
        }
    }
}

/* V[xi][c][t] = B^T d B for the tiles of rows [R0, R1) (tile row R is
 * image R / TH, row R % TH). buf: 16 * TB. */
static void
SFX(input)(T *V, const T *x, const wino *p, int64_t R0, int64_t R1, T *buf)
{
    int64_t TB = (R1 - R0) * p->TW;
    T *D = buf;
    for (int64_t c = 0; c < p->C; c++) {
        for (int64_t R = R0; R < R1; R++) {
            int64_t n = R / p->TH;
            SFX(gather)(D, TB, (R - R0) * p->TW,
                        x + (n * p->C + c) * p->H * p->W, p, R % p->TH);
        }
        SFX(input_math)(V + c * TB, p->C * TB, D, TB);
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
    int64_t TB = (R1 - R0) * p->TW, pairs = p->OW / 2;
    for (int64_t o = 0; o < p->O; o++) {
        SFX(output_math)(buf, M + o * TB, p->O * TB, TB,
                         bias ? bias[o] : (T)0);
        for (int64_t R = R0; R < R1; R++) {
            int64_t n = R / p->TH, ty = R % p->TH, t0 = (R - R0) * p->TW;
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
 * (through a chunk buffer, as in input_math). */
DT_NNC_CLONES static void
SFX(gradout_math)(T *restrict z, int64_t st, const T *restrict Y,
                  int64_t TB)
{
    T out[16][CHUNK];
    for (int64_t c0 = 0; c0 < TB; c0 += CHUNK) {
        int64_t nc = TB - c0 < CHUNK ? TB - c0 : CHUNK;
        for (int64_t u = 0; u < nc; u++) {
            int64_t t = c0 + u;
            T y00 = Y[t], y01 = Y[TB + t], y10 = Y[2 * TB + t];
            T y11 = Y[3 * TB + t];
            /* row k of A dY is (r0, r1); row k of (A dY) A^T from it */
#define AT_ROW(k, r0, r1)                                                 \
    {                                                                     \
        T q0 = (r0), q1 = (r1);                                           \
        out[4 * (k) + 0][u] = q0;                                         \
        out[4 * (k) + 1][u] = q0 + q1;                                    \
        out[4 * (k) + 2][u] = q0 - q1;                                    \
        out[4 * (k) + 3][u] = -q1;                                        \
    }
            AT_ROW(0, y00, y01)
            AT_ROW(1, y00 + y10, y01 + y11)
            AT_ROW(2, y00 - y10, y01 - y11)
            AT_ROW(3, -y10, -y11)
#undef AT_ROW
        }
        for (int xi = 0; xi < 16; xi++) {
            memcpy(z + xi * st + c0, out[xi], (size_t)nc * sizeof(T));
        }
    }
}

/* Z[xi][o][t] = A dY A^T for the output-gradient tiles of rows [R0, R1)
 * (zero beyond OH x OW). buf: 4 * TB. */
static void
SFX(gradout)(T *Z, const T *gy, const wino *p, int64_t R0, int64_t R1,
             T *buf)
{
    int64_t TB = (R1 - R0) * p->TW, pairs = p->OW / 2;
    for (int64_t o = 0; o < p->O; o++) {
        for (int64_t R = R0; R < R1; R++) {
            int64_t n = R / p->TH, ty = R % p->TH, t0 = (R - R0) * p->TW;
            const T *g = gy + ((n * p->O + o) * p->OH + 2 * ty) * p->OW;
            for (int q = 0; q < 2; q++, g += p->OW) {
                T *ye = buf + 2 * q * TB + t0, *yo = ye + TB;
                if (2 * ty + q >= p->OH) {
                    memset(ye, 0, (size_t)p->TW * sizeof(T));
                    memset(yo, 0, (size_t)p->TW * sizeof(T));
                    continue;
                }
                for (int64_t tx = 0; tx < pairs; tx++) {
                    ye[tx] = g[2 * tx];
                    yo[tx] = g[2 * tx + 1];
                }
                if (p->OW & 1) {
                    ye[pairs] = g[2 * pairs];
                    yo[pairs] = 0;
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
