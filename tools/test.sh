#!/usr/bin/env bash
# Sets everything up (tools/setup.sh), then runs the test suite twice: once
# on the normal build and once on the AddressSanitizer + UBSan build, then
# restores the normal build. libstdc++ is preloaded with ASan so ASan can
# intercept C++ exceptions (Gloo's, torch's) thrown from libraries loaded
# later; without it those throws abort the process.
# Extra arguments go to pytest (e.g. tools/test.sh -k matmul).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
.venv/bin/python -m pytest -q "$@"

if [ "${DTRAIN_SKIP_SANITIZE:-0}" = "0" ] && [ $# -eq 0 ]; then
    echo "== sanitizer build (ASan + UBSan) =="
    DTRAIN_SANITIZE=1 bash tools/setup.sh
    # ASan must be loaded before the interpreter; leaks from CPython itself
    # are not ours, so leak detection is left to the leak test.
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        .venv/bin/python -m pytest -q -p no:cacheprovider
    bash tools/setup.sh
fi
