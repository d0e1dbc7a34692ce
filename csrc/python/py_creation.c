/* py_creation.c: glue for creation ops, the random draws and generators.
 *
 * dtrain/_ops/creation.py resolves defaults (dtype, size spelling,
 * generator) and calls these private functions with concrete arguments.
 * A generator crosses into Python as a capsule around its dt_generator;
 * None means the default generator.
 */
#include "glue.h"
#include "../ops/creation.h"
#include "../rng.h"

#define GEN_CAPSULE "dtrain.Generator"

/* See py_tensor_methods.c: takes &out because C does not order argument
 * evaluation. */
static PyObject *
finish(dt_status s, dt_tensor **out)
{
    if (s != DT_OK) {
        dt_tensor_release(*out);
        return dt_py_raise(s);
    }
    return dt_py_wrap(*out);
}

/* "O&" converter: None -> NULL (the default generator), or a capsule. */
static int
gen_converter(PyObject *o, void *out)
{
    if (o == Py_None) {
        *(dt_generator **)out = NULL;
        return 1;
    }
    if (!PyCapsule_IsValid(o, GEN_CAPSULE)) {
        PyErr_Format(PyExc_TypeError, "expected a dtrain.Generator handle, "
                     "got %s", Py_TYPE(o)->tp_name);
        return 0;
    }
    *(dt_generator **)out = PyCapsule_GetPointer(o, GEN_CAPSULE);
    return 1;
}

/* Reads an int or float as int64, truncating floats toward zero. */
static int
as_int64(PyObject *o, int64_t *out)
{
    PyObject *i = PyNumber_Long(o);
    long long v = i ? PyLong_AsLongLong(i) : -1;
    Py_XDECREF(i);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* generators                                                              */

static void
gen_capsule_free(PyObject *capsule)
{
    dt_generator_free(PyCapsule_GetPointer(capsule, GEN_CAPSULE));
}

static PyObject *
py_generator_new(PyObject *module, PyObject *arg)
{
    (void)module;
    unsigned long long seed = PyLong_AsUnsignedLongLong(arg);
    if (seed == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    dt_generator *g = dt_generator_new(seed);
    if (!g) {
        return PyErr_NoMemory();
    }
    PyObject *cap = PyCapsule_New(g, GEN_CAPSULE, gen_capsule_free);
    if (!cap) {
        dt_generator_free(g);
    }
    return cap;
}

static PyObject *
py_default_generator(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyCapsule_New(dt_generator_default(), GEN_CAPSULE, NULL);
}

static PyObject *
py_generator_state(PyObject *module, PyObject *arg)
{
    (void)module;
    dt_generator *g;
    if (!gen_converter(arg, &g)) {
        return NULL;
    }
    g = g ? g : dt_generator_default();
    return Py_BuildValue("KK", (unsigned long long)g->seed,
                         (unsigned long long)__atomic_load_n(
                             &g->offset, __ATOMIC_RELAXED));
}

static PyObject *
py_generator_set_state(PyObject *module, PyObject *args)
{
    (void)module;
    dt_generator *g;
    unsigned long long seed, offset;
    if (!PyArg_ParseTuple(args, "O&KK:_generator_set_state", gen_converter,
                          &g, &seed, &offset)) {
        return NULL;
    }
    g = g ? g : dt_generator_default();
    dt_generator_manual_seed(g, seed);
    dt_generator_reserve(g, offset);
    Py_RETURN_NONE;
}

/* _philox((c0, c1, c2, c3), (k0, k1)) -> the four output words, for the
 * known-answer tests. */
static PyObject *
py_philox(PyObject *module, PyObject *args)
{
    (void)module;
    unsigned int c[4], k[2];
    uint32_t ctr[4], key[2], out[4];
    if (!PyArg_ParseTuple(args, "(IIII)(II):_philox", &c[0], &c[1], &c[2],
                          &c[3], &k[0], &k[1])) {
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        ctr[i] = c[i];
    }
    key[0] = k[0];
    key[1] = k[1];
    dt_philox4x32_10(out, ctr, key);
    return Py_BuildValue("(kkkk)", (unsigned long)out[0],
                         (unsigned long)out[1], (unsigned long)out[2],
                         (unsigned long)out[3]);
}

/* ---------------------------------------------------------------------- */
/* deterministic creation                                                  */

/* _full(size, fill_value_or_None, dtype, op): None fills zeros. */
static PyObject *
py_full(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *size, *fill;
    dt_dtype dtype = DT_DEFAULT_FLOAT;
    const char *op;
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL, *value = NULL;
    if (!PyArg_ParseTuple(args, "O!OO&s:_full", &PyTuple_Type, &size, &fill,
                          dt_py_dtype_converter, &dtype, &op)) {
        return NULL;
    }
    int ndim = dt_py_parse_shape(size, shape, op);
    if (ndim < 0 ||
        (fill != Py_None && dt_py_as_tensor(fill, &value, op,
                                            "fill_value") < 0)) {
        return NULL;
    }
    dt_status s = dt_full_forward(&out, value, shape, ndim, dtype,
                                  DT_DEVICE_CPU, op);
    dt_tensor_release(value);
    return finish(s, &out);
}

static PyObject *
py_empty(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *size;
    dt_dtype dtype = DT_DEFAULT_FLOAT;
    const char *op;
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "O!O&s:_empty", &PyTuple_Type, &size,
                          dt_py_dtype_converter, &dtype, &op)) {
        return NULL;
    }
    int ndim = dt_py_parse_shape(size, shape, op);
    if (ndim < 0) {
        return NULL;
    }
    return finish(dt_empty_forward(&out, shape, ndim, dtype, DT_DEVICE_CPU,
                                   op), &out);
}

/* _arange(start, end, step, dtype): integral dtypes run in int64. */
static PyObject *
py_arange(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *a[3];
    dt_dtype dtype = DT_DEFAULT_FLOAT;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "OOOO&:_arange", &a[0], &a[1], &a[2],
                          dt_py_dtype_converter, &dtype)) {
        return NULL;
    }
    if (dt_dtype_is_integral(dtype)) {
        int64_t v[3];
        for (int i = 0; i < 3; i++) {
            if (as_int64(a[i], &v[i]) < 0) {
                return NULL;
            }
        }
        return finish(dt_arange_int_forward(&out, v[0], v[1], v[2], dtype,
                                            DT_DEVICE_CPU), &out);
    }
    double v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = PyFloat_AsDouble(a[i]);
        if (v[i] == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    return finish(dt_arange_forward(&out, v[0], v[1], v[2], dtype,
                                    DT_DEVICE_CPU), &out);
}

static PyObject *
py_linspace(PyObject *module, PyObject *args)
{
    (void)module;
    double start, end;
    long long steps;
    dt_dtype dtype = DT_DEFAULT_FLOAT;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "ddLO&:linspace", &start, &end, &steps,
                          dt_py_dtype_converter, &dtype)) {
        return NULL;
    }
    return finish(dt_linspace_forward(&out, start, end, steps, dtype,
                                      DT_DEVICE_CPU), &out);
}

static PyObject *
py_eye(PyObject *module, PyObject *args)
{
    (void)module;
    long long n, m;
    dt_dtype dtype = DT_DEFAULT_FLOAT;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "LLO&:eye", &n, &m, dt_py_dtype_converter,
                          &dtype)) {
        return NULL;
    }
    return finish(dt_eye_forward(&out, n, m, dtype, DT_DEVICE_CPU), &out);
}

/* ---------------------------------------------------------------------- */
/* random creation                                                         */

/* _rand(size, dtype, gen) and _randn: `normal` picks the distribution. */
static PyObject *
rand_common(PyObject *args, bool normal)
{
    PyObject *size;
    dt_dtype dtype = DT_DEFAULT_FLOAT;
    dt_generator *g;
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    const char *op = normal ? "randn" : "rand";
    if (!PyArg_ParseTuple(args, "O!O&O&", &PyTuple_Type, &size,
                          dt_py_dtype_converter, &dtype, gen_converter,
                          &g)) {
        return NULL;
    }
    int ndim = dt_py_parse_shape(size, shape, op);
    if (ndim < 0) {
        return NULL;
    }
    dt_status s = normal ? dt_randn_forward(&out, shape, ndim, dtype,
                                            DT_DEVICE_CPU, g)
                         : dt_rand_forward(&out, shape, ndim, dtype,
                                           DT_DEVICE_CPU, g);
    return finish(s, &out);
}

static PyObject *
py_rand(PyObject *module, PyObject *args)
{
    (void)module;
    return rand_common(args, false);
}

static PyObject *
py_randn(PyObject *module, PyObject *args)
{
    (void)module;
    return rand_common(args, true);
}

static PyObject *
py_randint(PyObject *module, PyObject *args)
{
    (void)module;
    long long low, high;
    PyObject *size;
    dt_dtype dtype = DT_INT64;
    dt_generator *g;
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "LLO!O&O&:randint", &low, &high,
                          &PyTuple_Type, &size, dt_py_dtype_converter,
                          &dtype, gen_converter, &g)) {
        return NULL;
    }
    int ndim = dt_py_parse_shape(size, shape, "randint");
    if (ndim < 0) {
        return NULL;
    }
    return finish(dt_randint_forward(&out, low, high, shape, ndim, dtype,
                                     DT_DEVICE_CPU, g), &out);
}

static PyObject *
py_randperm(PyObject *module, PyObject *args)
{
    (void)module;
    long long n;
    dt_dtype dtype = DT_INT64;
    dt_generator *g;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "LO&O&:randperm", &n, dt_py_dtype_converter,
                          &dtype, gen_converter, &g)) {
        return NULL;
    }
    return finish(dt_randperm_forward(&out, n, dtype, DT_DEVICE_CPU, g),
                  &out);
}

/* ---------------------------------------------------------------------- */
/* in-place draws                                                         */

static PyObject *
inplace_draw(PyObject *args, const char *fmt, bool normal)
{
    dt_tensor *t;
    double a, b;
    dt_generator *g;
    if (!PyArg_ParseTuple(args, fmt, dt_py_tensor_converter, &t, &a, &b,
                          gen_converter, &g)) {
        return NULL;
    }
    dt_status s = normal ? dt_normal_(t, a, b, g) : dt_uniform_(t, a, b, g);
    if (s != DT_OK) {
        return dt_py_raise(s);
    }
    Py_RETURN_NONE;
}

static PyObject *
py_uniform_(PyObject *module, PyObject *args)
{
    (void)module;
    return inplace_draw(args, "O&ddO&:uniform_", false);
}

static PyObject *
py_normal_(PyObject *module, PyObject *args)
{
    (void)module;
    return inplace_draw(args, "O&ddO&:normal_", true);
}

static PyObject *
py_bernoulli_(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *t;
    double p;
    dt_generator *g;
    if (!PyArg_ParseTuple(args, "O&dO&:bernoulli_", dt_py_tensor_converter,
                          &t, &p, gen_converter, &g)) {
        return NULL;
    }
    dt_status s = dt_bernoulli_(t, p, g);
    if (s != DT_OK) {
        return dt_py_raise(s);
    }
    Py_RETURN_NONE;
}

static PyObject *
py_bernoulli(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *p, *out = NULL;
    dt_generator *g;
    if (!PyArg_ParseTuple(args, "O&O&:bernoulli", dt_py_tensor_converter, &p,
                          gen_converter, &g)) {
        return NULL;
    }
    return finish(dt_bernoulli_forward(&out, p, g), &out);
}

PyMethodDef dt_py_creation_functions[] = {
    {"_full", py_full, METH_VARARGS, "_full(size, fill_or_None, dtype, op)"},
    {"_empty", py_empty, METH_VARARGS, "_empty(size, dtype, op)"},
    {"_arange", py_arange, METH_VARARGS, "_arange(start, end, step, dtype)"},
    {"_linspace", py_linspace, METH_VARARGS,
     "_linspace(start, end, steps, dtype)"},
    {"_eye", py_eye, METH_VARARGS, "_eye(n, m, dtype)"},
    {"_rand", py_rand, METH_VARARGS, "_rand(size, dtype, gen)"},
    {"_randn", py_randn, METH_VARARGS, "_randn(size, dtype, gen)"},
    {"_randint", py_randint, METH_VARARGS,
     "_randint(low, high, size, dtype, gen)"},
    {"_randperm", py_randperm, METH_VARARGS, "_randperm(n, dtype, gen)"},
    {"_uniform_", py_uniform_, METH_VARARGS, "_uniform_(t, from, to, gen)"},
    {"_normal_", py_normal_, METH_VARARGS, "_normal_(t, mean, std, gen)"},
    {"_bernoulli_", py_bernoulli_, METH_VARARGS, "_bernoulli_(t, p, gen)"},
    {"_bernoulli", py_bernoulli, METH_VARARGS, "_bernoulli(p, gen)"},
    {"_generator_new", py_generator_new, METH_O, "_generator_new(seed)"},
    {"_default_generator", py_default_generator, METH_NOARGS, NULL},
    {"_generator_state", py_generator_state, METH_O,
     "_generator_state(gen) -> (seed, offset)"},
    {"_generator_set_state", py_generator_set_state, METH_VARARGS,
     "_generator_set_state(gen, seed, offset)"},
    {"_philox", py_philox, METH_VARARGS,
     "_philox(counter4, key2) -> 4 words of Philox4x32-10 (for tests)"},
    {NULL} /* sentinel */
};
