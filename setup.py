"""Builds the native share check (Cython + C) during `pip install .`."""

import platform

from Cython.Build import cythonize
from setuptools import Extension, setup

extra_compile_args = ["-O3", "-std=c11", "-Wall"]
if platform.machine().lower() in ("x86_64", "amd64"):
    # SHA-NI code carries its own target attribute; the rest stays baseline x86-64.
    extra_compile_args.append("-mtune=generic")

sha256d = Extension(
    "pool.native._sha256d",
    sources=[
        "native/_sha256d.pyx",
        "native/sharecheck.c",
        "native/sha256_portable.c",
        "native/sha256_shani.c",
        "native/sha256_armv8.c",
    ],
    include_dirs=["native"],
    extra_compile_args=extra_compile_args,
)

setup(ext_modules=cythonize([sha256d], language_level=3, compiler_directives={"embedsignature": True}))
