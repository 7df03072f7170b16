"""The C library's ``atan2f`` and ``atan2``, applied element-wise to NumPy arrays.

MatterSim computes ``rel_heading`` with the single-precision ``atan2f`` of float32 operands and
``rel_elevation`` with the double ``atan2``, both from the C math library it is linked against.
Neither can be reproduced bit for bit with NumPy alone:

* ``float32(atan2(double))`` is the correctly rounded angle, while ``atan2f`` (glibc's, for one)
  is not: the two differ by one float32 ulp in about a quarter of the visible entries of the
  36-view sweep of the R2R graphs.
* ``np.arctan2`` may not call the C library at all: NumPy dispatches to its own SIMD kernels on
  some CPUs (SVML on AVX-512 machines), which differ from libm in the last bits.

So this module calls the C library's own functions. It hands their addresses to NumPy's generic
C loops ``PyUFunc_ff_f`` / ``PyUFunc_dd_d`` (entries 14 and 15 of NumPy's ufunc C-API table,
which keeps its indices across releases, as compiled extensions rely on them): one ctypes call
then applies ``atan2f`` / ``atan2`` to a whole array with no Python per element. If that table
cannot be reached, or a self-check against direct calls fails, every element is computed with a
direct ctypes call instead (same bits, about 1 microsecond per element).

Platform dependence: the results are those of *this* machine's C library (glibc's libm on Linux),
which is what MatterSim built on the same machine computes. Another libm (an older or newer glibc,
musl, macOS, Windows' UCRT) may differ from it in the last bit; so may a MatterSim compiled with
fused multiply-add contraction (``-march=native`` with FMA), which changes the float32 operands.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)

#: Indices of the generic loops in NumPy's ufunc C-API table (``__ufunc_api.h``).
UFUNC_API_FF_F = 14
UFUNC_API_DD_D = 15

_LOOP = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ssize_t),
                         ctypes.POINTER(ctypes.c_ssize_t), ctypes.c_void_p)


@lru_cache(maxsize=None)
def c_math_library() -> ctypes.CDLL:
    """The C math library of this process (``libm`` on POSIX, the UCRT on Windows)."""
    if sys.platform == "win32":
        return ctypes.CDLL("ucrtbase")
    name = ctypes.util.find_library("m")
    # None: symbols of the running process, whose libm NumPy and Python already use.
    return ctypes.CDLL(name)


@lru_cache(maxsize=None)
def scalar_functions() -> dict:
    """``{"atan2f": f, "atan2": f}``: ctypes wrappers of the C library's scalar functions."""
    lib = c_math_library()
    out = {}
    for name, ctype in (("atan2f", ctypes.c_float), ("atan2", ctypes.c_double)):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = [ctype, ctype], ctype
        out[name] = fn
    return out


def _ufunc_api_loops() -> tuple | None:
    """NumPy's ``PyUFunc_ff_f`` and ``PyUFunc_dd_d`` as ctypes functions, or None if unreachable."""
    try:
        try:
            from numpy._core import _multiarray_umath as umath
        except ImportError:  # NumPy 1.x
            from numpy.core import _multiarray_umath as umath
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        table = (ctypes.c_void_p * (UFUNC_API_DD_D + 1)).from_address(get(umath._UFUNC_API, None))
        return _LOOP(table[UFUNC_API_FF_F]), _LOOP(table[UFUNC_API_DD_D])
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        log.warning("NumPy's ufunc C-API table is unreachable (%s): the C library's atan2f/atan2 are "
                    "called once per element (same results, slower)", e)
        return None


def _per_element(name: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    fn = scalar_functions()[name]
    return np.fromiter(map(fn, y.ravel().tolist(), x.ravel().tolist()), dtype=y.dtype, count=y.size).reshape(y.shape)


def _looped(loop, name: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(y)
    args = (ctypes.c_void_p * 3)(y.ctypes.data, x.ctypes.data, out.ctypes.data)
    size = (ctypes.c_ssize_t * 1)(y.size)
    steps = (ctypes.c_ssize_t * 3)(y.itemsize, y.itemsize, y.itemsize)
    loop(args, size, steps, ctypes.cast(scalar_functions()[name], ctypes.c_void_p).value)
    return out


@lru_cache(maxsize=None)
def _vector_loops() -> dict:
    """``{name: loop}`` for the vectorised path, after checking it against direct calls."""
    loops = _ufunc_api_loops()
    if loops is None:
        return {}
    rng = np.random.default_rng(0)
    probe = np.concatenate([rng.normal(size=(2, 61)) * 10.0 ** rng.integers(-8, 8, size=(2, 61)),
                            [[0.0, -0.0, 1.0, -1.0], [-0.0, 0.0, 0.0, -3.0]]], axis=1)
    out = {}
    for name, loop, dtype in (("atan2f", loops[0], np.float32), ("atan2", loops[1], np.float64)):
        y, x = (np.ascontiguousarray(p, dtype=dtype) for p in probe)
        if _looped(loop, name, y, x).tobytes() != _per_element(name, y, x).tobytes():
            log.warning("NumPy's generic loop disagrees with direct calls of %s: calling it per element", name)
            continue
        out[name] = loop
    return out


def _apply(name: str, dtype, y, x) -> np.ndarray:
    y, x = np.broadcast_arrays(np.asarray(y, dtype=dtype), np.asarray(x, dtype=dtype))
    shape = y.shape
    y, x = np.ascontiguousarray(y).ravel(), np.ascontiguousarray(x).ravel()
    if y.size == 0:
        return np.empty(shape, dtype=dtype)
    loop = _vector_loops().get(name)
    return (_looped(loop, name, y, x) if loop is not None else _per_element(name, y, x)).reshape(shape)


def atan2f(y, x) -> np.ndarray:
    """The C library's single-precision ``atan2f(y, x)`` of each pair (float32 in, float32 out).

    Inputs are converted to float32 (round to nearest) and broadcast. Radians in [-pi, pi].
    """
    return _apply("atan2f", np.float32, y, x)


def atan2(y, x) -> np.ndarray:
    """The C library's double ``atan2(y, x)`` of each pair (float64), radians in [-pi, pi]."""
    return _apply("atan2", np.float64, y, x)
