/* py_elementwise.c: glue for the elementwise family: the operator slots
 * (t + 2, 2 - t, t **= ..., -t, abs(t), comparisons), Tensor methods
 * (t.add(b, alpha=2), t.exp_(), t.clamp(min=0) ...) and the module
 * functions that dtrain/_ops/elementwise.py wraps.
 *
 * Each entry point is stamped from a descriptor (name, op, keywords) and
 * one of three modes: a method returning a new tensor, an in-place method
 * writing self, or a module function taking `input` and `out=`.
 */
#include "glue.h"

#include "../ops/elementwise.h"

enum { MODE_METHOD, MODE_INPLACE, MODE_FUNCTION };

/* Wraps the core's result; see py_tensor_methods.c on why it takes the
 * address of out. In place (out is self), returns self. */
static PyObject *
finish(dt_status s, dt_tensor **out, PyObject *self_out)
{
    if (s != DT_OK) {
        if (!self_out) {
            dt_tensor_release(*out);
        }
        return dt_py_raise(s);
    }
    return self_out ? Py_NewRef(self_out) : dt_py_wrap(*out);
}

/* The Tensor behind argument `arg` of `op` (borrowed), or NULL with a
 * TypeError naming both. */
static dt_tensor *
tensor_arg(PyObject *o, const char *op, const char *arg)
{
    dt_tensor *t = dt_py_unwrap(o);
    if (!t) {
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be Tensor, "
                     "not %s", op, arg, Py_TYPE(o)->tp_name);
    }
    return t;
}

/* The tensor to write into for out=: NULL (allocate) or a borrowed one. */
static int
out_arg(PyObject *o, dt_tensor **out, const char *name)
{
    *out = NULL;
    if (!o || o == Py_None) {
        return 0;
    }
    return (*out = tensor_arg(o, name, "out")) ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* operator slots                                                          */

/* `o` as an operator may take it (a new reference): a Tensor or a number,
 * NumPy scalars included (through __index__/__float__). NULL, with no
 * exception, for anything else: the slot then returns NotImplemented, so
 * `t == None` is False and `t + "x"` a TypeError, as Python does it. */
static PyObject *
operand(PyObject *o)
{
    if (dt_py_unwrap(o) || PyBool_Check(o) || PyLong_Check(o) ||
        PyFloat_Check(o)) {
        return Py_NewRef(o);
    }
    if (PySequence_Check(o) || PyUnicode_Check(o) || PyComplex_Check(o)) {
        return NULL;
    }
    PyObject *num = PyIndex_Check(o) ? PyNumber_Index(o)
                    : Py_TYPE(o)->tp_as_number &&
                            Py_TYPE(o)->tp_as_number->nb_float
                        ? PyNumber_Float(o)
                        : NULL;
    if (!num) {
        PyErr_Clear();
    }
    return num;
}

/* a op b where either may be a number, through the recording entry
 * points; pow by a number gets its own kernel (dt_pow dispatches). */
static dt_status
binary_core(dt_tensor **out, const dt_tensor *a, const dt_tensor *b, int op,
            const dt_tensor *alpha, dt_rounding mode)
{
    switch (op) {
    case DT_OP_ADD: return dt_add(out, a, b, alpha);
    case DT_OP_SUB: return dt_sub(out, a, b, alpha);
    case DT_OP_DIV: return dt_div(out, a, b, mode);
    case DT_OP_POW: return dt_pow(out, a, b);
    default: return dt_binary(out, a, b, (dt_op)op);
    }
}

static PyObject *
slot_binary(PyObject *a, PyObject *b, int op, bool inplace)
{
    PyObject *na = operand(a), *nb = na ? operand(b) : NULL, *res = NULL;
    dt_tensor *ta = NULL, *tb = NULL, *out = NULL;
    if (inplace && (!nb || !dt_py_unwrap(a))) {
        /* Not NotImplemented: for a Python subclass of TensorBase CPython
         * also routes += through sq_inplace_concat, which would hand the
         * NotImplemented back to the caller as the result. */
        PyErr_Format(PyExc_TypeError,
                     "unsupported operand type(s) for %s=: '%s' and '%s'",
                     op == DT_OP_ADD ? "+" : op == DT_OP_SUB ? "-"
                     : op == DT_OP_MUL ? "*" : "/",
                     Py_TYPE(a)->tp_name, Py_TYPE(b)->tp_name);
        goto done;
    }
    if (!na || !nb) {
        res = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    if (dt_py_as_tensor(na, &ta, dt_op_names[op], "self") < 0 ||
        dt_py_as_tensor(nb, &tb, dt_op_names[op], "other") < 0) {
        goto done;
    }
    out = inplace ? ta : NULL;
    res = finish(binary_core(&out, ta, tb, op, NULL, DT_ROUND_NONE), &out,
                 inplace ? a : NULL);
done:
    Py_XDECREF(na);
    Py_XDECREF(nb);
    dt_tensor_release(ta);
    dt_tensor_release(tb);
    return res;
}

PyObject *
dt_py_binary(PyObject *a, PyObject *b, int op)
{
    return slot_binary(a, b, op, false);
}

PyObject *
dt_py_binary_inplace(PyObject *a, PyObject *b, int op)
{
    return slot_binary(a, b, op, true);
}

PyObject *
dt_py_unary(PyObject *a, int op)
{
    dt_tensor *x = dt_py_unwrap(a), *out = NULL;
    if (!x) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    return finish(dt_unary(&out, x, (dt_op)op), &out, NULL);
}

/* ---------------------------------------------------------------------- */
/* binary methods and functions                                            */

typedef struct binop {
    const char *name;
    int op;
    const char *other;         /* keyword of the second operand */
    bool alpha, rounding;      /* takes alpha= / rounding_mode= */
} binop;

static int
parse_rounding(PyObject *o, dt_rounding *mode)
{
    *mode = DT_ROUND_NONE;
    if (!o || o == Py_None) {
        return 0;
    }
    const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    if (s && strcmp(s, "trunc") == 0) {
        *mode = DT_ROUND_TRUNC;
    } else if (s && strcmp(s, "floor") == 0) {
        *mode = DT_ROUND_FLOOR;
    } else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_RuntimeError, "div expected rounding_mode to be "
                     "one of None, 'trunc', or 'floor' but found %R", o);
    }
    return PyErr_Occurred() ? -1 : 0;
}

/* Parses (input,) other, *, [alpha], [rounding_mode], [out] by mode. */
static PyObject *
binary_entry(const binop *d, PyObject *self, PyObject *args, PyObject *kw,
             int mode)
{
    char *kwlist[6], fmt[24];
    PyObject *v[5] = {NULL, NULL, NULL, NULL, NULL}, *res = NULL;
    PyObject **a = &self, **b, **alpha = NULL, **rnd = NULL, **out_o = NULL;
    int n = 0;
    if (mode == MODE_FUNCTION) {
        kwlist[n] = "input";
        a = &v[n++];
    }
    kwlist[n] = (char *)d->other;
    b = &v[n++];
    if (d->alpha) {
        kwlist[n] = "alpha";
        alpha = &v[n++];
    }
    if (d->rounding) {
        kwlist[n] = "rounding_mode";
        rnd = &v[n++];
    }
    if (mode != MODE_INPLACE) {
        kwlist[n] = "out";
        out_o = &v[n++];
    }
    kwlist[n] = NULL;
    int npos = mode == MODE_FUNCTION ? 2 : 1;
    snprintf(fmt, sizeof fmt, "%.*s%s%.*s:%s%s", npos, "OO",
             n > npos ? "|$" : "", n - npos, "OOO", d->name,
             mode == MODE_INPLACE ? "_" : "");
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &v[0], &v[1],
                                     &v[2], &v[3], &v[4])) {
        return NULL;
    }
    dt_tensor *ta = NULL, *tb = NULL, *tal = NULL, *out = NULL;
    dt_rounding rmode;
    if (dt_py_as_tensor(*a, &ta, d->name, "input") < 0 ||
        dt_py_as_tensor(*b, &tb, d->name, d->other) < 0 ||
        (alpha && *alpha && *alpha != Py_None &&
         dt_py_as_tensor(*alpha, &tal, d->name, "alpha") < 0) ||
        parse_rounding(rnd ? *rnd : NULL, &rmode) < 0 ||
        out_arg(out_o ? *out_o : NULL, &out, d->name) < 0) {
        goto done;
    }
    if (mode == MODE_INPLACE) {
        out = ta;
    }
    PyObject *self_out = mode == MODE_INPLACE ? self
                         : out ? *out_o : NULL;
    res = finish(binary_core(&out, ta, tb, d->op, tal, rmode), &out,
                 self_out);
done:
    dt_tensor_release(ta);
    dt_tensor_release(tb);
    dt_tensor_release(tal);
    return res;
}

#define BINOP(NAME, OP, OTHER, ALPHA, ROUNDING)                           \
    static const binop binop_##NAME = {#NAME, OP, OTHER, ALPHA,          \
                                       ROUNDING};                         \
    static PyObject *                                                     \
    meth_##NAME(PyObject *self, PyObject *args, PyObject *kw)             \
    {                                                                     \
        return binary_entry(&binop_##NAME, self, args, kw, MODE_METHOD);  \
    }                                                                     \
    /* maximum and minimum have no in-place method in PyTorch */          \
    __attribute__((unused)) static PyObject *                             \
    meth_##NAME##_(PyObject *self, PyObject *args, PyObject *kw)          \
    {                                                                     \
        return binary_entry(&binop_##NAME, self, args, kw, MODE_INPLACE); \
    }                                                                     \
    static PyObject *                                                     \
    func_##NAME(PyObject *m, PyObject *args, PyObject *kw)                \
    {                                                                     \
        (void)m;                                                          \
        return binary_entry(&binop_##NAME, NULL, args, kw,                \
                            MODE_FUNCTION);                               \
    }

BINOP(add, DT_OP_ADD, "other", true, false)
BINOP(sub, DT_OP_SUB, "other", true, false)
BINOP(mul, DT_OP_MUL, "other", false, false)
BINOP(div, DT_OP_DIV, "other", false, true)
BINOP(pow, DT_OP_POW, "exponent", false, false)
BINOP(maximum, DT_OP_MAXIMUM, "other", false, false)
BINOP(minimum, DT_OP_MINIMUM, "other", false, false)
BINOP(eq, DT_OP_EQ, "other", false, false)
BINOP(ne, DT_OP_NE, "other", false, false)
BINOP(lt, DT_OP_LT, "other", false, false)
BINOP(le, DT_OP_LE, "other", false, false)
BINOP(gt, DT_OP_GT, "other", false, false)
BINOP(ge, DT_OP_GE, "other", false, false)

/* ---------------------------------------------------------------------- */
/* unary methods and functions                                             */

static PyObject *
unary_entry(int op, const char *name, PyObject *self, PyObject *args,
            PyObject *kw, int mode)
{
    static char *kwlist[] = {"input", "out", NULL};
    PyObject *in = self, *out_o = NULL;
    dt_tensor *out = NULL;
    if (mode == MODE_FUNCTION &&
        !PyArg_ParseTupleAndKeywords(args, kw, "O|$O", kwlist, &in, &out_o)) {
        return NULL;
    }
    dt_tensor *x = tensor_arg(in, name, "input");
    if (!x || out_arg(out_o, &out, name) < 0) {
        return NULL;
    }
    if (mode == MODE_INPLACE) {
        out = x;
    }
    PyObject *self_out = mode == MODE_INPLACE ? self : out ? out_o : NULL;
    return finish(dt_unary(&out, x, (dt_op)op), &out, self_out);
}

#define UNOP(NAME, OP)                                                    \
    static PyObject *                                                     \
    meth_##NAME(PyObject *self, PyObject *unused)                         \
    {                                                                     \
        (void)unused;                                                     \
        return unary_entry(OP, #NAME, self, NULL, NULL, MODE_METHOD);     \
    }                                                                     \
    static PyObject *                                                     \
    meth_##NAME##_(PyObject *self, PyObject *unused)                      \
    {                                                                     \
        (void)unused;                                                     \
        return unary_entry(OP, #NAME, self, NULL, NULL, MODE_INPLACE);    \
    }                                                                     \
    static PyObject *                                                     \
    func_##NAME(PyObject *m, PyObject *args, PyObject *kw)                \
    {                                                                     \
        (void)m;                                                          \
        return unary_entry(OP, #NAME, NULL, args, kw, MODE_FUNCTION);     \
    }

UNOP(neg, DT_OP_NEG)
UNOP(abs, DT_OP_ABS)
UNOP(exp, DT_OP_EXP)
UNOP(log, DT_OP_LOG)
UNOP(sqrt, DT_OP_SQRT)
UNOP(rsqrt, DT_OP_RSQRT)
UNOP(sin, DT_OP_SIN)
UNOP(cos, DT_OP_COS)
UNOP(tanh, DT_OP_TANH)
UNOP(sigmoid, DT_OP_SIGMOID)
UNOP(relu, DT_OP_RELU)

/* clamp(min=None, max=None): bounds are numbers or tensors */
static PyObject *
clamp_entry(PyObject *self, PyObject *args, PyObject *kw, int mode)
{
    static char *fn_kw[] = {"input", "min", "max", "out", NULL};
    static char *meth_kw[] = {"min", "max", NULL};
    PyObject *in = self, *lo_o = Py_None, *hi_o = Py_None, *out_o = NULL;
    PyObject *res = NULL;
    dt_tensor *x, *lo = NULL, *hi = NULL, *out = NULL;
    int ok = mode == MODE_FUNCTION
                 ? PyArg_ParseTupleAndKeywords(args, kw, "O|OO$O:clamp",
                                               fn_kw, &in, &lo_o, &hi_o,
                                               &out_o)
                 : PyArg_ParseTupleAndKeywords(args, kw, "|OO:clamp",
                                               meth_kw, &lo_o, &hi_o);
    if (!ok) {
        return NULL;
    }
    if (!(x = tensor_arg(in, "clamp", "input"))) {
        return NULL;
    }
    if ((lo_o != Py_None && dt_py_as_tensor(lo_o, &lo, "clamp", "min") < 0) ||
        (hi_o != Py_None && dt_py_as_tensor(hi_o, &hi, "clamp", "max") < 0) ||
        out_arg(out_o, &out, "clamp") < 0) {
        goto done;
    }
    if (mode == MODE_INPLACE) {
        out = x;
    }
    PyObject *self_out = mode == MODE_INPLACE ? self : out ? out_o : NULL;
    res = finish(dt_clamp(&out, x, lo, hi), &out, self_out);
done:
    dt_tensor_release(lo);
    dt_tensor_release(hi);
    return res;
}

static PyObject *
meth_clamp(PyObject *self, PyObject *args, PyObject *kw)
{
    return clamp_entry(self, args, kw, MODE_METHOD);
}

static PyObject *
meth_clamp_(PyObject *self, PyObject *args, PyObject *kw)
{
    return clamp_entry(self, args, kw, MODE_INPLACE);
}

static PyObject *
func_clamp(PyObject *m, PyObject *args, PyObject *kw)
{
    (void)m;
    return clamp_entry(NULL, args, kw, MODE_FUNCTION);
}

/* gelu(input, approximate='none'), as torch.nn.functional.gelu */
static PyObject *
func_gelu(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"input", "approximate", NULL};
    const char *approx = "none";
    PyObject *in;
    dt_tensor *x, *out = NULL;
    (void)m;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|s:gelu", kwlist, &in,
                                     &approx) ||
        !(x = tensor_arg(in, "gelu", "input"))) {
        return NULL;
    }
    bool tanh_form = strcmp(approx, "tanh") == 0;
    if (!tanh_form && strcmp(approx, "none") != 0) {
        PyErr_SetString(PyExc_RuntimeError, "gelu: approximate argument must "
                        "be either none or tanh.");
        return NULL;
    }
    return finish(dt_unary(&out, x, tanh_form ? DT_OP_GELU_TANH : DT_OP_GELU),
                  &out, NULL);
}

/* where(condition, input, other, *, out=None); the method is
 * self.where(condition, other). */
static PyObject *
where_entry(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *fn_kw[] = {"condition", "input", "other", "out", NULL};
    static char *meth_kw[] = {"condition", "other", NULL};
    PyObject *c_o, *x_o = self, *y_o, *out_o = NULL, *res = NULL;
    dt_tensor *cond, *x = NULL, *y = NULL, *out = NULL;
    int ok = self ? PyArg_ParseTupleAndKeywords(args, kw, "OO:where", meth_kw,
                                                &c_o, &y_o)
                  : PyArg_ParseTupleAndKeywords(args, kw, "OOO|$O:where",
                                                fn_kw, &c_o, &x_o, &y_o,
                                                &out_o);
    if (!ok || !(cond = tensor_arg(c_o, "where", "condition"))) {
        return NULL;
    }
    if (dt_py_as_tensor(x_o, &x, "where", "input") == 0 &&
        dt_py_as_tensor(y_o, &y, "where", "other") == 0 &&
        out_arg(out_o, &out, "where") == 0) {
        res = finish(dt_where(&out, cond, x, y), &out,
                     out ? out_o : NULL);
    }
    dt_tensor_release(x);
    dt_tensor_release(y);
    return res;
}

static PyObject *
meth_where(PyObject *self, PyObject *args, PyObject *kw)
{
    return where_entry(self, args, kw);
}

static PyObject *
func_where(PyObject *m, PyObject *args, PyObject *kw)
{
    (void)m;
    return where_entry(NULL, args, kw);
}

/* ---------------------------------------------------------------------- */
/* tables                                                                  */

#define KW(f) (PyCFunction)(void (*)(void))(f), METH_VARARGS | METH_KEYWORDS
#define BIN_METHODS(NAME, SIG)                                            \
    {#NAME, KW(meth_##NAME), #NAME SIG},                                  \
    {#NAME "_", KW(meth_##NAME##_), #NAME "_" SIG " (in place)"}
#define UN_METHODS(NAME)                                                  \
    {#NAME, meth_##NAME, METH_NOARGS, #NAME "()"},                        \
    {#NAME "_", meth_##NAME##_, METH_NOARGS, #NAME "_() (in place)"}

PyMethodDef dt_py_elementwise_methods[] = {
    BIN_METHODS(add, "(other, *, alpha=1)"),
    BIN_METHODS(sub, "(other, *, alpha=1)"),
    BIN_METHODS(mul, "(other)"),
    BIN_METHODS(div, "(other, *, rounding_mode=None)"),
    BIN_METHODS(pow, "(exponent)"),
    BIN_METHODS(eq, "(other)"),
    BIN_METHODS(ne, "(other)"),
    BIN_METHODS(lt, "(other)"),
    BIN_METHODS(le, "(other)"),
    BIN_METHODS(gt, "(other)"),
    BIN_METHODS(ge, "(other)"),
    {"subtract", KW(meth_sub), "subtract(other, *, alpha=1)"},
    {"multiply", KW(meth_mul), "multiply(other)"},
    {"divide", KW(meth_div), "divide(other, *, rounding_mode=None)"},
    {"true_divide", KW(meth_div), "true_divide(other)"},
    {"maximum", KW(meth_maximum), "maximum(other)"},
    {"minimum", KW(meth_minimum), "minimum(other)"},
    {"where", KW(meth_where), "where(condition, other)"},
    {"clamp", KW(meth_clamp), "clamp(min=None, max=None)"},
    {"clamp_", KW(meth_clamp_), "clamp_(min=None, max=None) (in place)"},
    {"clip", KW(meth_clamp), "clip(min=None, max=None)"},
    {"clip_", KW(meth_clamp_), "clip_(min=None, max=None) (in place)"},
    UN_METHODS(neg), UN_METHODS(abs), UN_METHODS(exp), UN_METHODS(log),
    UN_METHODS(sqrt), UN_METHODS(rsqrt), UN_METHODS(sin), UN_METHODS(cos),
    UN_METHODS(tanh), UN_METHODS(sigmoid), UN_METHODS(relu),
    {"negative", meth_neg, METH_NOARGS, "negative()"},
    {"absolute", meth_abs, METH_NOARGS, "absolute()"},
    {NULL} /* sentinel */
};

#define FN(NAME, SIG) {#NAME, KW(func_##NAME), #NAME SIG}
PyMethodDef dt_py_elementwise_functions[] = {
    FN(add, "(input, other, *, alpha=1, out=None)"),
    FN(sub, "(input, other, *, alpha=1, out=None)"),
    FN(mul, "(input, other, *, out=None)"),
    FN(div, "(input, other, *, rounding_mode=None, out=None)"),
    FN(pow, "(input, exponent, *, out=None)"),
    FN(maximum, "(input, other, *, out=None)"),
    FN(minimum, "(input, other, *, out=None)"),
    FN(eq, "(input, other, *, out=None)"),
    FN(ne, "(input, other, *, out=None)"),
    FN(lt, "(input, other, *, out=None)"),
    FN(le, "(input, other, *, out=None)"),
    FN(gt, "(input, other, *, out=None)"),
    FN(ge, "(input, other, *, out=None)"),
    FN(where, "(condition, input, other, *, out=None)"),
    FN(clamp, "(input, min=None, max=None, *, out=None)"),
    FN(gelu, "(input, approximate='none')"),
    FN(neg, "(input, *, out=None)"), FN(abs, "(input, *, out=None)"),
    FN(exp, "(input, *, out=None)"), FN(log, "(input, *, out=None)"),
    FN(sqrt, "(input, *, out=None)"), FN(rsqrt, "(input, *, out=None)"),
    FN(sin, "(input, *, out=None)"), FN(cos, "(input, *, out=None)"),
    FN(tanh, "(input, *, out=None)"),
    FN(sigmoid, "(input, *, out=None)"),
    FN(relu, "(input, *, out=None)"),
    {NULL} /* sentinel */
};
