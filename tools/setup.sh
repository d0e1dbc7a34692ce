#!/usr/bin/env bash
# Sets up a development environment on a fresh Debian machine:
#   system packages (apt-get), a virtual environment in .venv with the
#   Python packages, and an in-place build of dtrain._C.
# Environment:
#   DTRAIN_SANITIZE=1  build with AddressSanitizer + UBSan (see setup.py)
#   DTRAIN_NATIVE=1    build with -march=native
#   DTRAIN_NO_TORCH=1  skip installing torch (the tests' reference oracle)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in build-essential libopenblas-dev libgloo-dev iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${need_apt[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
        "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
py=.venv/bin/python
want="numpy pytest pytest-timeout setuptools wheel scikit-learn"
if [ "${DTRAIN_NO_TORCH:-0}" = "0" ]; then
    want="$want torch==2.13.0"
fi
# pip is quick when everything is present already
$py -m pip install -q $want

# Rebuild from scratch when the build switches change.
flags="sanitize=${DTRAIN_SANITIZE:-0} native=${DTRAIN_NATIVE:-0} debug=${DTRAIN_DEBUG:-0}"
stamp=build/.dtrain-flags
force=""
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$flags" ]; then
    force="--force"
fi
# ccache (when installed) makes the full rebuilds setuptools does cheap
if command -v ccache >/dev/null 2>&1; then
    export CC="${CC:-ccache gcc}" CXX="${CXX:-ccache g++}"
fi
echo "setup: building dtrain._C ($flags)"
$py setup.py -q build_ext --inplace -j "$(nproc)" $force
mkdir -p build && echo "$flags" > "$stamp"
# make this checkout importable from anywhere in the venv (like pip -e)
site=$($py -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$site/dtrain-checkout.pth"
