/* nn_types_gen.h: compiles the kernel template named by NN_GEN (a quoted
 * file name) once for float and once for double, with the per-type
 * macros nn_rows_gen.h describes (plus NN_LOG1P, NN_SIGMOID and NN_SQRT
 * for the templates that use them). Every nn_*.c includes its template
 * through here, so the float and double math is spelt in one place:
 *
 *   #define NN_GEN "nn_ce_gen.h"
 *   #include "nn_types_gen.h"
 *
 * The file includes itself once more, with NN_F64_PASS set, for the
 * double pass.
 */
#include <math.h>

#include "ew_math.h"

#ifndef NN_F64_PASS
#define NN_T float
#define NN_S(name) name##_f32
#define NN_EXP(x) ew_expf(x)
#define NN_LOG(x) logf(x)
#define NN_LOG1P(x) log1pf(x)
#define NN_SIGMOID(x) ew_sigmoidf(x)
#define NN_SQRT(x) sqrtf(x)
#else
#define NN_T double
#define NN_S(name) name##_f64
#define NN_EXP(x) exp(x)
#define NN_LOG(x) log(x)
#define NN_LOG1P(x) log1p(x)
#define NN_SIGMOID(x) (1 / (1 + exp(-(x))))
#define NN_SQRT(x) sqrt(x)
#endif

#include NN_GEN

#undef NN_T
#undef NN_S
#undef NN_EXP
#undef NN_LOG
#undef NN_LOG1P
#undef NN_SIGMOID
#undef NN_SQRT

#ifndef NN_F64_PASS
#define NN_F64_PASS
#include "nn_types_gen.h"
#undef NN_F64_PASS
#undef NN_GEN
#endif
