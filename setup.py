"""Build step for the optional C accelerator (everything else lives in pyproject.toml).

``mwhost.runtime._accel`` (host/runtime/_accel.c and the parts it includes) is built with
the machine's C compiler by ``pip install`` (``./scripts/setup.sh``). It is optional: when it cannot be built the install
still succeeds and the host runs its pure-Python path (host/runtime/accel.py selects).
"""

import pathlib

from setuptools import Extension, setup

# the accelerator's parts, which host/runtime/_accel.c includes (one translation unit)
ACCEL_PARTS = sorted(str(path) for path in pathlib.Path("host/runtime/_accel_parts").glob("*.h"))

setup(ext_modules=[Extension("mwhost.runtime._accel", sources=["host/runtime/_accel.c"], depends=ACCEL_PARTS,
                             extra_compile_args=["-O2", "-std=c11"], optional=True),
                   # the epoch ticker as a C thread (host/runtime/ticker.py falls back to Python)
                   Extension("mwhost.runtime._ticker", sources=["host/runtime/_ticker.c"],
                             extra_compile_args=["-O2"], optional=True)])
