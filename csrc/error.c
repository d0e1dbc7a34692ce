/* error.c: the thread-local last-error message behind dt_status. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "dt.h"

#define DT_ERROR_LEN 1024

static _Thread_local char last_error[DT_ERROR_LEN];

dt_status
dt_fail(dt_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *
dt_last_error(void)
{
    return last_error[0] ? last_error : "unknown error";
}

_Noreturn void
dt_abort_(const char *file, int line, const char *expr)
{
    fprintf(stderr, "dtrain: internal error at %s:%d: DT_ASSERT(%s)\n", file,
            line, expr);
    abort();
}
