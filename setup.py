"""Builds dtrain._C from csrc/ (C11, plus C++ for the Gloo shim later).

Switches (environment variables):
  DTRAIN_NATIVE=1    add -march=native (default: portable x86-64 code)
  DTRAIN_SANITIZE=1  AddressSanitizer + UBSan, -O1 -g (run tests with
                     LD_PRELOAD=$(gcc -print-file-name=libasan.so))
  DTRAIN_DEBUG=1     -O0 -g
"""
import glob
import os

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def flag(name):
    return os.environ.get(name, "0") not in ("", "0")


common = ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
          "-fno-strict-aliasing"]
opt = ["-O3"]
link = []
if flag("DTRAIN_DEBUG"):
    opt = ["-O0", "-g"]
if flag("DTRAIN_SANITIZE"):
    opt = ["-O1", "-g", "-fno-omit-frame-pointer",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    link += ["-fsanitize=address,undefined"]
if flag("DTRAIN_NATIVE"):
    opt.append("-march=native")

C_FLAGS = ["-std=gnu11"] + common + opt
CXX_FLAGS = ["-std=c++17"] + common + opt


class BuildExt(build_ext):
    """Compiles .c and .cc sources of one extension with their own flags."""

    def build_extension(self, ext):
        original = self.compiler._compile

        def compile_one(obj, src, ext_, cc_args, extra_postargs, pp_opts):
            lang = CXX_FLAGS if src.endswith((".cc", ".cpp")) else C_FLAGS
            original(obj, src, ext_, cc_args, lang, pp_opts)

        self.compiler._compile = compile_one
        try:
            super().build_extension(ext)
        finally:
            self.compiler._compile = original


sources = sorted(glob.glob("csrc/**/*.c", recursive=True)
                 + glob.glob("csrc/**/*.cc", recursive=True))

ext = Extension(
    "dtrain._C",
    sources=sources,
    include_dirs=["csrc", numpy.get_include()],
    libraries=["openblas", "m", "gloo"],
    extra_link_args=link,
    depends=glob.glob("csrc/**/*.h", recursive=True),
)

setup(ext_modules=[ext], cmdclass={"build_ext": BuildExt})
