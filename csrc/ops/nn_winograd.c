/* nn_winograd.c: 3x3 stride-1 convolutions by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", CVPR 2016): each 2x2 output tile is
 *
 *     Y = A^T [ (G g G^T) . (B^T d B) ] A       (. elementwise, 4x4)
 *
 * for the 4x4 input patch d under it, so a tile costs 16 multiplies per
 * (input, output) channel pair instead of 36. Summed over input channels
 * the 16 products become 16 GEMMs (O x C) @ (C x tiles): 2.25x fewer
 * flops than im2col + GEMM, with the same GEMM shapes doing the work.
 *
 *   forward       out = winograd(x, w) (+ bias)
 *   grad input    a forward of grad out with the kernels rotated by 180
 *                 degrees and in/out channels swapped, padding 2 - p
 *   grad weight   dU = sum over tiles of (A dY A^T) . (B^T d B), 16 GEMMs;
 *                 dW = G^T dU G
 *
 * Tiles are processed in blocks of whole tile rows (about 256 tiles), so
 * the transformed buffers stay small (in cache for the GEMMs right after)
 * whatever the batch size.
 */
#include <stdlib.h>

#include "nn.h"

#define BLOCK_TILES 256

typedef struct wino {
    int64_t N, C, O;        /* batch, input and output channels */
    int64_t H, W, ph, pw;   /* input size and padding */
    int64_t OH, OW, TH, TW; /* output size and tiles per image */
} wino;

static void
wino_init(wino *p, int64_t N, int64_t C, int64_t O, int64_t H, int64_t W,
          int64_t ph, int64_t pw)
{
    *p = (wino){N, C, O, H, W, ph, pw, H + 2 * ph - 2, W + 2 * pw - 2, 0, 0};
    p->TH = (p->OH + 1) / 2;
    p->TW = (p->OW + 1) / 2;
}

bool
dt_nnc_winograd_ok(const dt_nnc_geom *g, int64_t C, int64_t O,
                   int64_t groups, dt_dtype cdt)
{
    return (cdt == DT_FLOAT32 || cdt == DT_FLOAT64) && groups == 1 &&
           g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 &&
           g->dh == 1 && g->dw == 1 && g->ph <= 2 && g->pw <= 2 &&
           C >= 16 && O >= 16 && g->OH >= 2 && g->OW >= 2;
}

/* ---------------------------------------------------------------------- */
/* transforms, one copy per element type                                   */

#define T float
#define SFX(f) f##_f32
#include "nn_winograd_gen.h"
#undef T
#undef SFX
#define T double
#define SFX(f) f##_f64
#include "nn_winograd_gen.h"
#undef T
#undef SFX

#define DISPATCH(cdt, name, ...)                                          \
    ((cdt) == DT_FLOAT32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

/* ---------------------------------------------------------------------- */
/* drivers                                                                 */

/* Tile rows per block: about BLOCK_TILES tile slots (TW + 1 a row, see
 * nn_winograd_gen.h), at least one row. */
static int64_t
rows_per_block(const wino *p)
{
    int64_t r = BLOCK_TILES / (p->TW + 1);
    return r > 0 ? r : 1;
}

/* Scratch for one pass: U (16 x rows x cols), the input transform V and
 * the product/gradient transform M, per block. NULL on out of memory. */
static char *
scratch(size_t *u_bytes, size_t *v_bytes, const wino *p, size_t isz)
{
    int64_t TB = rows_per_block(p) * (p->TW + 1);
    *u_bytes = (size_t)(16 * p->O * p->C) * isz;
    *v_bytes = (size_t)(16 * p->C * TB) * isz;
    size_t m_bytes = (size_t)(16 * p->O * TB) * isz;
    size_t buf = (size_t)(4 * (TB + p->TW + 2)) * isz;
    return malloc(*u_bytes + *v_bytes + m_bytes + buf);
}

/* out (N, O, OH, OW) = conv of x (N, C, H, W) with w, bias (O) or NULL.
 * flip: w is (C, O, 3, 3) and is used rotated with channels swapped (the
 * grad-input convolution). */
static dt_status
wino_conv(dt_dtype cdt, void *out, const void *x, const void *w,
          const void *bias, const wino *p, bool flip)
{
    size_t isz = dt_dtype_size(cdt), ub, vb;
    char *mem = scratch(&ub, &vb, p, isz);
    if (!mem) {
        return dt_fail(DT_ERR_NOMEM, "conv2d: out of memory (winograd)");
    }
    char *U = mem, *V = mem + ub;
    int64_t rows = p->N * p->TH, rb = rows_per_block(p);
    char *M = V + vb;
    void *buf = M + (size_t)(16 * p->O * rb * (p->TW + 1)) * isz;
    DISPATCH(cdt, weights, (void *)U, w, p->O, p->C, flip);
    for (int64_t R0 = 0; R0 < rows; R0 += rb) {
        int64_t R1 = R0 + rb < rows ? R0 + rb : rows;
        int64_t TB = (R1 - R0) * (p->TW + 1);
        DISPATCH(cdt, input, (void *)V, x, p, R0, R1, buf);
        for (int xi = 0; xi < 16; xi++) {
            dt_nnc_gemm(cdt, false, false, p->O, TB, p->C,
                        U + (size_t)(xi * p->O * p->C) * isz, p->C,
                        V + (size_t)(xi * p->C * TB) * isz, TB, false,
                        M + (size_t)(xi * p->O * TB) * isz, TB);
        }
        DISPATCH(cdt, output, out, (void *)M, bias, p, R0, R1, buf);
    }
    free(mem);
    return DT_OK;
}

dt_status
dt_nnc_winograd_forward(dt_dtype cdt, void *out, const void *x,
                        const void *w, const void *bias, int64_t N,
                        int64_t C, int64_t O, const dt_nnc_geom *g)
{
    wino p;
    wino_init(&p, N, C, O, g->H, g->W, g->ph, g->pw);
    return wino_conv(cdt, out, x, w, bias, &p, false);
}

dt_status
dt_nnc_winograd_grad_input(dt_dtype cdt, void *gx, const void *gy,
                           const void *w, int64_t N, int64_t C, int64_t O,
                           const dt_nnc_geom *g)
{
    /* a "forward" from O channels of OH x OW to C channels of H x W */
    wino p;
    wino_init(&p, N, O, C, g->OH, g->OW, 2 - g->ph, 2 - g->pw);
    return wino_conv(cdt, gx, gy, w, NULL, &p, true);
}

dt_status
dt_nnc_winograd_grad_weight(dt_dtype cdt, void *gw, const void *gy,
                            const void *x, int64_t N, int64_t C, int64_t O,
                            const dt_nnc_geom *g)
{
    wino p;
    wino_init(&p, N, C, O, g->H, g->W, g->ph, g->pw);
    size_t isz = dt_dtype_size(cdt), ub, vb;
    char *mem = scratch(&ub, &vb, &p, isz);
    if (!mem) {
        return dt_fail(DT_ERR_NOMEM, "conv2d: out of memory (winograd)");
    }
    char *dU = mem, *V = mem + ub;
    int64_t rows = p.N * p.TH, rb = rows_per_block(&p);
    char *Z = V + vb;
    void *buf = Z + (size_t)(16 * p.O * rb * (p.TW + 1)) * isz;
    for (int64_t R0 = 0; R0 < rows; R0 += rb) {
        int64_t R1 = R0 + rb < rows ? R0 + rb : rows;
        int64_t TB = (R1 - R0) * (p.TW + 1);
        DISPATCH(cdt, input, (void *)V, x, &p, R0, R1, buf);
        DISPATCH(cdt, gradout, (void *)Z, gy, &p, R0, R1, buf);
        for (int xi = 0; xi < 16; xi++) {
            dt_nnc_gemm(cdt, false, true, p.O, p.C, TB,
                        Z + (size_t)(xi * p.O * TB) * isz, TB,
                        V + (size_t)(xi * p.C * TB) * isz, TB, R0 > 0,
                        dU + (size_t)(xi * p.O * p.C) * isz, p.C);
        }
    }
    if (rows == 0) {
        memset(dU, 0, ub);
    }
    DISPATCH(cdt, wgrad, gw, (const void *)dU, p.O, p.C);
    free(mem);
    return DT_OK;
}
