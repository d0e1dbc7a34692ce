/* nn_conv.c: conv2d forward and backward (NCHW, and unbatched CHW): the
 * checks, and the im2col + GEMM path; 3x3 stride-1 convolutions with
 * enough channels go to Winograd instead (nn_winograd.c).
 *
 * Forward, per sample and group: im2col into one reused buffer, then one
 * GEMM  out (Og, OH*OW) = W_g (Og, Cg*kh*kw) @ cols, with the bias
 * pre-filled into out (beta = 1). A 1x1 kernel at stride 1 without
 * padding needs no im2col: the input already is the column matrix.
 *
 * Backward, per sample and group: grad W_g += G (Og, L) @ cols^T, with
 * cols recomputed rather than kept from the forward (so only x and W are
 * saved, as in PyTorch); grad cols = W_g^T @ G, scattered back by
 * col2im; grad b sums G over positions while each sample is in cache.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include "nn.h"

typedef struct conv_args {
    int64_t N, C, H, W, O, Cg, Og, groups;
    dt_nnc_geom g;
    bool direct;      /* 1x1, stride 1, no padding: no im2col needed */
    bool wino;        /* 3x3, stride 1: Winograd F(2x2, 3x3) */
} conv_args;

/* "[2, 4, 10, 10]", as PyTorch prints sizes in its messages. */
static void
size_list(char *buf, size_t n, const dt_tensor *t)
{
    dt_nnc_size_list(buf, n, t->shape, t->ndim);
}

static dt_status
check_params(const int64_t *stride, const int64_t *padding,
             const int64_t *dilation, int64_t groups)
{
    if (groups <= 0) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: non-positive groups is not "
                       "supported");
    }
    for (int i = 0; i < 2; i++) {
        if (stride[i] <= 0) {
            return dt_fail(DT_ERR_RUNTIME, "conv2d: non-positive stride is "
                           "not supported");
        }
        if (padding[i] < 0) {
            return dt_fail(DT_ERR_RUNTIME, "conv2d: negative padding is not "
                           "supported");
        }
        if (dilation[i] <= 0) {
            return dt_fail(DT_ERR_RUNTIME, "conv2d: non-positive dilation is "
                           "not supported");
        }
    }
    return DT_OK;
}

static dt_status
check_tensors(const dt_tensor *x, const dt_tensor *w, const dt_tensor *b,
              int64_t groups)
{
    char sx[160], sw[160], sb[160];
    size_list(sx, sizeof sx, x);
    size_list(sw, sizeof sw, w);
    if (x->ndim != 3 && x->ndim != 4) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: Expected 3D (unbatched) or "
                       "4D (batched) input to conv2d, but got input of "
                       "size: %s", sx);
    }
    if (w->ndim != 4) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: expected a 4D weight "
                       "(out_channels, in_channels / groups, kH, kW), but "
                       "got weight of size %s", sw);
    }
    if (x->dtype != w->dtype || (b && b->dtype != x->dtype)) {
        bool bias = x->dtype == w->dtype;
        return dt_fail(DT_ERR_RUNTIME, "conv2d: Input type (%s) and %s type "
                       "(%s) should be the same", dt_dtype_name(x->dtype),
                       bias ? "bias" : "weight",
                       dt_dtype_name(bias ? b->dtype : w->dtype));
    }
    int64_t O = w->shape[0], C = x->shape[x->ndim - 3];
    if (O == 0 || O % groups) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: Given groups=%" PRId64
                       ", expected weight to be %s %" PRId64 " at dimension "
                       "0, but got weight of size %s instead", groups,
                       O ? "divisible by" : "at least", O ? groups : 1, sw);
    }
    if (C != w->shape[1] * groups) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: Given groups=%" PRId64 ", "
                       "weight of size %s, expected input%s to have %" PRId64
                       " channels, but got %" PRId64 " channels instead",
                       groups, sw, sx, w->shape[1] * groups, C);
    }
    if (b && (b->ndim != 1 || b->shape[0] != O)) {
        size_list(sb, sizeof sb, b);
        return dt_fail(DT_ERR_RUNTIME, "conv2d: Given weight of size %s, "
                       "expected bias to be 1-dimensional with %" PRId64
                       " elements, but got bias of size %s instead", sw, O,
                       sb);
    }
    DT_TRY(dt_check_same_device(x, w, "conv2d"));
    return b ? dt_check_same_device(x, b, "conv2d") : DT_OK;
}

static dt_status
conv_setup(conv_args *a, const dt_tensor *x, const dt_tensor *w,
           const dt_tensor *b, const int64_t *stride, const int64_t *padding,
           const int64_t *dilation, int64_t groups)
{
    DT_TRY(check_params(stride, padding, dilation, groups));
    DT_TRY(check_tensors(x, w, b, groups));
    int lead = x->ndim - 3;
    dt_nnc_geom *g = &a->g;
    a->N = lead ? x->shape[0] : 1;
    a->C = x->shape[lead];
    a->O = w->shape[0];
    a->groups = groups;
    a->Cg = w->shape[1];
    a->Og = a->O / groups;
    *g = (dt_nnc_geom){a->Cg, x->shape[lead + 1], x->shape[lead + 2],
                       w->shape[2], w->shape[3], stride[0], stride[1],
                       padding[0], padding[1], dilation[0], dilation[1], 0,
                       0};
    int64_t ekh = g->dh * (g->kh - 1) + 1, ekw = g->dw * (g->kw - 1) + 1;
    int64_t ph = g->H + 2 * g->ph, pw = g->W + 2 * g->pw;
    if (ph < ekh || pw < ekw) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: Calculated padded input "
                       "size per channel: (%" PRId64 " x %" PRId64 "). "
                       "Kernel size: (%" PRId64 " x %" PRId64 "). Kernel "
                       "size can't be greater than actual input size", ph,
                       pw, ekh, ekw);
    }
    g->OH = (ph - ekh) / g->sh + 1;
    g->OW = (pw - ekw) / g->sw + 1;
    if (g->OH * g->OW > INT_MAX || a->Cg * g->kh * g->kw > INT_MAX ||
        a->O > INT_MAX) {
        return dt_fail(DT_ERR_RUNTIME, "conv2d: sizes are too large for "
                       "BLAS");
    }
    a->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 &&
                g->ph == 0 && g->pw == 0;
    dt_dtype cdt = DT_FLOAT32;
    a->wino = dt_nnc_compute_dtype(&cdt, x->dtype, "conv2d") == DT_OK &&
              dt_nnc_winograd_ok(g, a->C, a->O, groups, cdt);
    return DT_OK;
}

/* n copies of the element at val (4 or 8 bytes) into dst. */
static void
fill_row(void *dst, const void *val, int64_t n, size_t isz)
{
    if (isz == 4) {
        uint32_t v, *d = dst;
        memcpy(&v, val, 4);
        for (int64_t i = 0; i < n; i++) {
            d[i] = v;
        }
    } else {
        uint64_t v, *d = dst;
        memcpy(&v, val, 8);
        for (int64_t i = 0; i < n; i++) {
            d[i] = v;
        }
    }
}

/* res (N, O, OH, OW) in the compute dtype from contiguous xc, wc, bc. */
static dt_status
conv_compute(dt_tensor *res, const dt_tensor *xc, const dt_tensor *wc,
             const dt_tensor *bc, const conv_args *a, dt_dtype cdt)
{
    const dt_nnc_geom *g = &a->g;
    size_t isz = dt_dtype_size(cdt);
    int64_t L = g->OH * g->OW, Kg = a->Cg * g->kh * g->kw, HW = g->H * g->W;
    if (a->wino) {
        return dt_nnc_winograd_forward(cdt, dt_tensor_data(res),
                                       dt_tensor_data(xc), dt_tensor_data(wc),
                                       bc ? dt_tensor_data(bc) : NULL, a->N,
                                       a->C, a->O, g);
    }
    char *cols = NULL;
    if (!a->direct && Kg * L > 0) {
        cols = malloc((size_t)(Kg * L) * isz);
        if (!cols) {
            return dt_fail(DT_ERR_NOMEM, "conv2d: out of memory for the "
                           "im2col buffer");
        }
    }
    const char *x = dt_tensor_data(xc), *w = dt_tensor_data(wc);
    const char *b = bc ? dt_tensor_data(bc) : NULL;
    char *o = dt_tensor_data(res);
    for (int64_t n = 0; n < a->N; n++) {
        for (int64_t grp = 0; grp < a->groups; grp++) {
            const char *img = x + (size_t)((n * a->C + grp * a->Cg) * HW) *
                                      isz;
            char *on = o + (size_t)((n * a->O + grp * a->Og) * L) * isz;
            for (int64_t r = 0; b && r < a->Og; r++) {
                fill_row(on + (size_t)(r * L) * isz,
                         b + (size_t)(grp * a->Og + r) * isz, L, isz);
            }
            const char *src = img;
            if (cols) {
                dt_nnc_im2col(cdt, cols, img, g);
                src = cols;
            }
            dt_nnc_gemm(cdt, false, false, a->Og, L, Kg,
                        w + (size_t)(grp * a->Og * Kg) * isz, Kg, src, L,
                        b != NULL, on, L);
        }
    }
    free(cols);
    return DT_OK;
}

dt_status
dt_conv2d_forward(dt_tensor **out, const dt_tensor *x, const dt_tensor *w,
                  const dt_tensor *b, const int64_t *stride,
                  const int64_t *padding, const int64_t *dilation,
                  int64_t groups)
{
    conv_args a;
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(conv_setup(&a, x, w, b, stride, padding, dilation, groups));
    DT_TRY(dt_nnc_compute_dtype(&cdt, x->dtype, "conv2d"));
    int64_t shape[4] = {a.N, a.O, a.g.OH, a.g.OW};
    int lead = x->ndim == 4;
    dt_tensor *xc = NULL, *wc = NULL, *bc = NULL, *res = NULL;
    dt_status s = dt_nnc_prep(&xc, x, cdt);
    if (s == DT_OK) {
        s = dt_nnc_prep(&wc, w, cdt);
    }
    if (s == DT_OK && b) {
        s = dt_nnc_prep(&bc, b, cdt);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&res, shape + 1 - lead, 3 + lead, cdt,
                            DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        s = conv_compute(res, xc, wc, bc, &a, cdt);
    }
    if (s == DT_OK) {
        s = dt_nnc_deliver(out, res, x->dtype, "conv2d");
        res = NULL;
    }
    dt_tensor_release(res);
    dt_tensor_release(xc);
    dt_tensor_release(wc);
    dt_tensor_release(bc);
    return s;
}

/* ---------------------------------------------------------------------- */
/* backward                                                                */

/* gb[o] += the sum of sample n's gradient plane o, while it is still in
 * cache from that sample's GEMMs. */
static void
bias_grad_add(double *gb, const char *G, const conv_args *a, int64_t n,
              int64_t L, dt_dtype cdt)
{
    for (int64_t o = 0; o < a->O; o++) {
        int64_t base = (n * a->O + o) * L;
        gb[o] += cdt == DT_FLOAT32
                     ? dt_nnc_sum_f32((const float *)G + base, L)
                     : dt_nnc_sum_f64((const double *)G + base, L);
    }
}

/* The buffers one backward pass works with. */
typedef struct conv_grads {
    const char *x, *w, *G;      /* contiguous, compute dtype */
    char *gx, *gw;              /* NULL when not wanted; zero-filled */
    char *cols, *gcols;         /* im2col scratch */
    double *gb;                 /* bias gradient sums; NULL: not wanted */
} conv_grads;

/* grad x and grad W for sample n, group grp. */
static void
conv_backward_one(const conv_grads *k, const conv_args *a, int64_t n,
                  int64_t grp, dt_dtype cdt)
{
    const dt_nnc_geom *g = &a->g;
    size_t isz = dt_dtype_size(cdt);
    int64_t L = g->OH * g->OW, Kg = a->Cg * g->kh * g->kw, HW = g->H * g->W;
    size_t img_off = (size_t)((n * a->C + grp * a->Cg) * HW) * isz;
    size_t w_off = (size_t)(grp * a->Og * Kg) * isz;
    const char *G = k->G + (size_t)((n * a->O + grp * a->Og) * L) * isz;
    if (k->gw) {
        const char *src = k->x + img_off;
        if (!a->direct) {
            dt_nnc_im2col(cdt, k->cols, src, g);
            src = k->cols;
        }
        dt_nnc_gemm(cdt, false, true, a->Og, Kg, L, G, L, src, L, true,
                    k->gw + w_off, Kg);
    }
    if (k->gx) {
        char *dst = a->direct ? k->gx + img_off : k->gcols;
        dt_nnc_gemm(cdt, true, false, Kg, L, a->Og, k->w + w_off, Kg, G, L,
                    false, dst, L);
        if (!a->direct) {
            dt_nnc_col2im(cdt, k->gx + img_off, k->gcols, g);
        }
    }
}

/* Both gradients by Winograd (written whole, not accumulated). */
static dt_status
conv_backward_wino(const conv_grads *k, const conv_args *a, dt_dtype cdt)
{
    if (k->gx) {
        DT_TRY(dt_nnc_winograd_grad_input(cdt, k->gx, k->G, k->w, a->N, a->C,
                                          a->O, &a->g));
    }
    if (k->gw) {
        DT_TRY(dt_nnc_winograd_grad_weight(cdt, k->gw, k->G, k->x, a->N,
                                           a->C, a->O, &a->g));
    }
    return DT_OK;
}

/* xc (wanted for grad W) and wc (for grad x) are NULL when not needed;
 * x and w give the gradients' shapes. */
static dt_status
conv_backward_run(dt_node *n, dt_tensor **gi, const dt_tensor *x,
                  const dt_tensor *xc, const dt_tensor *w,
                  const dt_tensor *wc, const dt_tensor *G,
                  const conv_args *a, dt_dtype cdt)
{
    size_t isz = dt_dtype_size(cdt);
    int64_t L = a->g.OH * a->g.OW, Kg = a->Cg * a->g.kh * a->g.kw;
    bool want_x = wc != NULL, want_w = xc != NULL;
    conv_grads k = {xc ? dt_tensor_data(xc) : NULL,
                    wc ? dt_tensor_data(wc) : NULL, dt_tensor_data(G), NULL,
                    NULL, NULL, NULL, NULL};
    dt_status s = DT_OK;
    /* the GEMM path accumulates into zeros; Winograd writes every value */
    dt_status (*alloc)(dt_tensor **, const int64_t *, int, dt_dtype,
                       dt_device) = a->wino ? dt_tensor_empty
                                            : dt_tensor_zeros;
    if (want_x) {
        s = alloc(&gi[0], x->shape, x->ndim, cdt, DT_DEVICE_CPU);
        k.gx = s == DT_OK ? dt_tensor_data(gi[0]) : NULL;
    }
    if (s == DT_OK && want_w) {
        s = alloc(&gi[1], w->shape, w->ndim, cdt, DT_DEVICE_CPU);
        k.gw = s == DT_OK ? dt_tensor_data(gi[1]) : NULL;
    }
    if (s == DT_OK && !a->direct && !a->wino && Kg * L > 0) {
        k.cols = want_w ? malloc((size_t)(Kg * L) * isz) : NULL;
        k.gcols = want_x ? malloc((size_t)(Kg * L) * isz) : NULL;
        if ((want_w && !k.cols) || (want_x && !k.gcols)) {
            s = dt_fail(DT_ERR_NOMEM, "conv2d: out of memory in backward");
        }
    }
    if (s == DT_OK && n->num_inputs > 2 && dt_node_needs_grad(n, 2)) {
        k.gb = calloc((size_t)a->O, sizeof *k.gb);
        s = k.gb ? dt_tensor_empty(&gi[2], &a->O, 1, cdt, DT_DEVICE_CPU)
                 : dt_fail(DT_ERR_NOMEM, "conv2d: out of memory in backward");
    }
    if (s == DT_OK && a->wino) {
        s = conv_backward_wino(&k, a, cdt);
    }
    for (int64_t i = 0; s == DT_OK && i < a->N; i++) {
        for (int64_t grp = 0; !a->wino && (k.gx || k.gw) &&
                              grp < a->groups; grp++) {
            conv_backward_one(&k, a, i, grp, cdt);
        }
        if (k.gb) {
            bias_grad_add(k.gb, k.G, a, i, L, cdt);
        }
    }
    for (int64_t o = 0; s == DT_OK && k.gb && o < a->O; o++) {
        if (cdt == DT_FLOAT32) {
            ((float *)dt_tensor_data(gi[2]))[o] = (float)k.gb[o];
        } else {
            ((double *)dt_tensor_data(gi[2]))[o] = k.gb[o];
        }
    }
    free(k.cols);
    free(k.gcols);
    free(k.gb);
    return s;
}

/* saved: x, w; iargs: stride, padding, dilation (pairs), groups. */
static dt_status
dt_conv2d_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *x, *w, *xc = NULL, *wc = NULL, *gc = NULL;
    DT_TRY(dt_node_saved(&x, n, 0));
    DT_TRY(dt_node_saved(&w, n, 1));
    conv_args a;
    dt_dtype cdt = DT_FLOAT32;
    const int64_t *ia = n->iargs;
    DT_TRY(conv_setup(&a, x, w, NULL, ia, ia + 2, ia + 4, ia[6]));
    DT_TRY(dt_nnc_compute_dtype(&cdt, x->dtype, "conv2d"));
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK && dt_node_needs_grad(n, 1)) {
        s = dt_nnc_prep(&xc, x, cdt);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 0)) {
        s = dt_nnc_prep(&wc, w, cdt);
    }
    if (s == DT_OK) {
        s = conv_backward_run(n, gi, x, xc, w, wc, gc, &a, cdt);
    }
    dt_tensor_release(xc);
    dt_tensor_release(wc);
    dt_tensor_release(gc);
    return s;
}

dt_status
dt_conv2d(dt_tensor **out, const dt_tensor *x, const dt_tensor *w,
          const dt_tensor *b, const int64_t *stride, const int64_t *padding,
          const int64_t *dilation, int64_t groups)
{
    DT_TRY(dt_conv2d_forward(out, x, w, b, stride, padding, dilation,
                             groups));
    const dt_tensor *in[3] = {x, w, b}, *save[2] = {x, w};
    dt_node *node = NULL;
    DT_TRY(dt_nnc_record(out, &node, "ConvolutionBackward0",
                         dt_conv2d_backward, in, b ? 3 : 2, save, 2));
    if (node) {
        int64_t args[7] = {stride[0],   stride[1],   padding[0], padding[1],
                           dilation[0], dilation[1], groups};
        memcpy(node->iargs, args, sizeof args);
        node->num_iargs = 7;
    }
    return DT_OK;
}
