"""Build of pyconc's C core, pyconc._core, from csrc/.

Environment switches:
  PYCONC_DEBUG=1                      asserts on, -O0 -g
  PYCONC_SANITIZE=address,undefined   build with those sanitizers (run with the runtime preloaded)
  PYCONC_WERROR=1                     turn every warning into an error (CI sets it)
"""
import glob
import os

from setuptools import Extension, setup

cflags = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-missing-field-initializers", "-fvisibility=hidden"]
ldflags = []
macros = []

if os.environ.get("PYCONC_DEBUG") == "1":
    cflags += ["-O0", "-g3", "-UNDEBUG"]
    macros.append(("PYCONC_DEBUG", "1"))
else:
    cflags += ["-O2"]

sanitize = os.environ.get("PYCONC_SANITIZE", "").strip()
if sanitize:
    cflags += ["-fsanitize=" + sanitize, "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
               "-g", "-UNDEBUG"]
    ldflags += ["-fsanitize=" + sanitize]
    macros.append(("PYCONC_SANITIZE", "1"))

if os.environ.get("PYCONC_WERROR") == "1":
    cflags.append("-Werror")

setup(
    ext_modules=[
        Extension(
            "pyconc._core",
            sources=sorted(glob.glob("csrc/*.c") + glob.glob("csrc/*/*.c")),
            depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*/*.h")),
            include_dirs=["csrc"] + sorted(d for d in glob.glob("csrc/*") if os.path.isdir(d)),
            define_macros=macros,
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
)
