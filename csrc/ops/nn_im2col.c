/* nn_im2col.c: im2col and col2im, the reshuffles that turn a convolution
 * into a GEMM (see nn.h for the layouts).
 *
 * Row (c, ki, kj) of the columns holds, for every output position
 * (oh, ow), the input pixel that kernel tap meets there. For one row the
 * output columns whose pixel lies inside the image form one range
 * [lo, hi), and the output rows likewise, computed once per tap, so the
 * inner loops are plain copies with zero fill on either side and no
 * per-pixel bounds test. At stride 1 with OW == W (a "same" convolution)
 * a tap's valid rows are one contiguous input span: one memcpy, then the
 * few padding columns are zeroed.
 */
#include "nn.h"

/* The outputs o in [*lo, *hi) with 0 <= o * stride + off < size. */
static inline void
valid_range(int64_t *lo, int64_t *hi, int64_t off, int64_t stride,
            int64_t size, int64_t out)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = size - 1 - off < 0 ? 0 : (size - 1 - off) / stride + 1;
    l = l < out ? l : out;
    h = h < out ? h : out;
    *lo = l;
    *hi = h > l ? h : l;
}

/* The walk both directions share: for every kernel tap (c, ki, kj) with
 * its column row `row`, the valid output columns [lo, hi) and output rows
 * [oh_lo, oh_hi) (those whose input row lies inside the image), TAP runs;
 * `plane` is channel c's offset and offw the tap's column offset. */
#define IM2COL_WALK(T, COLS, ...)                                         \
    do {                                                                  \
        int64_t L_ = g->OH * g->OW;                                       \
        for (int64_t c = 0; c < g->C; c++) {                              \
            int64_t plane = c * g->H * g->W;                              \
            for (int64_t ki = 0; ki < g->kh; ki++) {                      \
                int64_t offh = ki * g->dh - g->ph, oh_lo, oh_hi;          \
                valid_range(&oh_lo, &oh_hi, offh, g->sh, g->H, g->OH);    \
                for (int64_t kj = 0; kj < g->kw; kj++) {                  \
                    T *row = (COLS) + ((c * g->kh + ki) * g->kw + kj) * L_; \
                    int64_t offw = kj * g->dw - g->pw, lo, hi;            \
                    valid_range(&lo, &hi, offw, g->sw, g->W, g->OW);      \
                    __VA_ARGS__;                                             \
                }                                                         \
            }                                                             \
        }                                                                 \
    } while (0)

/* Input index of output (oh, ow) for the current tap. */
#define SRC(oh, ow)                                                       \
    (plane + ((oh) * g->sh + offh) * g->W + (ow) * g->sw + offw)

#define IM2COL_DEF(NAME, T)                                               \
    static void                                                           \
    NAME(T *cols, const T *img, const dt_nnc_geom *g)                     \
    {                                                                     \
        /* stride 1 and OW == W: the valid rows of a tap are one           \
         * contiguous input span; copy it whole, then zero the columns    \
         * that fell outside the image (clipped to the plane). */         \
        bool span = g->sh == 1 && g->sw == 1 && g->OW == g->W;            \
        int64_t HW = g->H * g->W;                                         \
        IM2COL_WALK(T, cols, {                                            \
            memset(row, 0, (size_t)(oh_lo * g->OW) * sizeof(T));          \
            memset(row + oh_hi * g->OW, 0,                                \
                   (size_t)((g->OH - oh_hi) * g->OW) * sizeof(T));        \
            if (span && oh_hi > oh_lo) {                                  \
                int64_t s0 = SRC(oh_lo, 0) - plane;                       \
                int64_t e0 = s0 + (oh_hi - oh_lo) * g->OW;                \
                int64_t cs = s0 > 0 ? s0 : 0, ce = e0 < HW ? e0 : HW;     \
                T *d0 = row + oh_lo * g->OW;                              \
                memcpy(d0 + (cs - s0), img + plane + cs,                  \
                       (size_t)(ce - cs) * sizeof(T));                    \
                for (int64_t oh = oh_lo; oh < oh_hi; oh++) {              \
                    T *dst = row + oh * g->OW;                            \
                    for (int64_t ow = 0; ow < lo; ow++) {                 \
                        dst[ow] = 0;                                      \
                    }                                                     \
                    for (int64_t ow = hi; ow < g->OW; ow++) {             \
                        dst[ow] = 0;                                      \
                    }                                                     \
                }                                                         \
                continue;                                                 \
            }                                                             \
            for (int64_t oh = oh_lo; oh < oh_hi; oh++) {                  \
                T *dst = row + oh * g->OW;                                \
                const T *src = img + SRC(oh, lo);                         \
                for (int64_t ow = 0; ow < lo; ow++) {                     \
                    dst[ow] = 0;                                          \
                }                                                         \
                for (int64_t ow = lo; ow < hi; ow++) {                    \
                    dst[ow] = src[(ow - lo) * g->sw];                     \
                }                                                         \
                for (int64_t ow = hi; ow < g->OW; ow++) {                 \
                    dst[ow] = 0;                                          \
                }                                                         \
            }                                                             \
        });                                                               \
    }

/* The span trick of im2col in reverse: zero the column entries that
 * belong to padding (cols is scratch), then add the whole span at once. */
#define COL2IM_DEF(NAME, T)                                               \
    static void                                                           \
    NAME(T *img, T *cols, const dt_nnc_geom *g)                           \
    {                                                                     \
        bool span = g->sh == 1 && g->sw == 1 && g->OW == g->W;            \
        int64_t HW = g->H * g->W;                                         \
        IM2COL_WALK(T, cols, {                                            \
            if (span && oh_hi > oh_lo) {                                  \
                for (int64_t oh = oh_lo; oh < oh_hi; oh++) {              \
                    T *src = row + oh * g->OW;                            \
                    for (int64_t ow = 0; ow < lo; ow++) {                 \
                        src[ow] = 0;                                      \
                    }                                                     \
                    for (int64_t ow = hi; ow < g->OW; ow++) {             \
                        src[ow] = 0;                                      \
                    }                                                     \
                }                                                         \
                int64_t s0 = SRC(oh_lo, 0) - plane;                       \
                int64_t e0 = s0 + (oh_hi - oh_lo) * g->OW;                \
                int64_t cs = s0 > 0 ? s0 : 0, ce = e0 < HW ? e0 : HW;     \
                const T *src = row + oh_lo * g->OW + (cs - s0);           \
                T *dst = img + plane + cs;                                \
                for (int64_t k = 0; k < ce - cs; k++) {                   \
                    dst[k] += src[k];                                     \
                }                                                         \
                continue;                                                 \
            }                                                             \
            for (int64_t oh = oh_lo; oh < oh_hi; oh++) {                  \
                const T *src = row + oh * g->OW;                          \
                T *dst = img + SRC(oh, lo);                               \
                if (g->sw == 1) {                                         \
                    for (int64_t ow = lo; ow < hi; ow++) {                \
                        dst[ow - lo] += src[ow];                          \
                    }                                                     \
                } else {                                                  \
                    for (int64_t ow = lo; ow < hi; ow++) {                \
                        dst[(ow - lo) * g->sw] += src[ow];                \
                    }                                                     \
                }                                                         \
            }                                                             \
        });                                                               \
    }

IM2COL_DEF(im2col_f32, float)
IM2COL_DEF(im2col_f64, double)
IM2COL_DEF(im2col_i64, int64_t)
COL2IM_DEF(col2im_f32, float)
COL2IM_DEF(col2im_f64, double)

void
dt_nnc_im2col(dt_dtype cdt, void *cols, const void *img,
              const dt_nnc_geom *g)
{
    switch (cdt) {
    case DT_FLOAT32: im2col_f32(cols, img, g); break;
    case DT_FLOAT64: im2col_f64(cols, img, g); break;
    default: im2col_i64(cols, img, g); break;
    }
}

void
dt_nnc_col2im(dt_dtype cdt, void *img, void *cols, const dt_nnc_geom *g)
{
    if (cdt == DT_FLOAT32) {
        col2im_f32(img, cols, g);
    } else {
        DT_ASSERT(cdt == DT_FLOAT64);
        col2im_f64(img, cols, g);
    }
}
