/* py_creation.c: glue for creation ops and the RNG (stub). */
#include "glue.h"

PyMethodDef dt_py_creation_functions[] = {{NULL} /* sentinel */};
