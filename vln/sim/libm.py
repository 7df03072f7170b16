"""The C library's ``atan2f``, ``atan2``, ``sin`` and ``cos``, applied element-wise to NumPy arrays.

MatterSim computes ``rel_heading`` with the single-precision ``atan2f`` of float32 operands and
``rel_elevation`` with the double ``atan2``, both from the C math library it is linked against.
Neither can be reproduced bit for bit with NumPy alone:

* ``float32(atan2(double))`` is the correctly rounded angle, while ``atan2f`` (glibc's, for one)
  is not: the two differ by one float32 ulp in about a quarter of the visible entries of the
  36-view sweep of the R2R graphs.
* ``np.arctan2`` may not call the C library at all: NumPy dispatches to its own SIMD kernels on
  some CPUs (SVML on AVX-512 machines), which differ from libm in the last bits.

So this module calls the C library's own functions. It hands their addresses to NumPy's generic
C loops ``PyUFunc_ff_f`` / ``PyUFunc_dd_d`` / ``PyUFunc_d_d`` (entries of NumPy's ufunc C-API
table, which keeps its indices across releases, as compiled extensions rely on them): one ctypes
call then applies the function to a whole array with no Python per element. If that table cannot
be reached, or a self-check against direct calls fails, every element is computed with a direct
ctypes call instead (same bits, about 1 microsecond per element). ``sin``/``cos`` serve the
EnvDrop angle features, which the original code computes with Python's ``math.sin``/``math.cos``
(the C library's), where NumPy's ``sin``/``cos`` may again use SIMD kernels.

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

#: The C library functions we call: name -> (NumPy dtype, number of arguments, index of NumPy's
#: generic loop for that signature in its ufunc C-API table, ``__ufunc_api.h``).
FUNCTIONS = {
    "atan2f": (np.float32, 2, 14),  # PyUFunc_ff_f
    "atan2": (np.float64, 2, 15),   # PyUFunc_dd_d
    "sin": (np.float64, 1, 5),      # PyUFunc_d_d
    "cos": (np.float64, 1, 5),      # PyUFunc_d_d
}
UFUNC_LOOP_NAMES = {14: "PyUFunc_ff_f", 15: "PyUFunc_dd_d", 5: "PyUFunc_d_d"}

_LOOP = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ssize_t),
                         ctypes.POINTER(ctypes.c_ssize_t), ctypes.c_void_p)


@lru_cache(maxsize=None)
def c_math_library() -> ctypes.CDLL:
    """The C math library of this process (``libm`` on POSIX, the UCRT on Windows)."""
    if sys.platform == "win32":
        return ctypes.CDLL("ucrtbase")
    # find_library gives None where no libm is registered: then the symbols of the running
    # process, whose libm Python itself uses.
    return ctypes.CDLL(ctypes.util.find_library("m"))


@lru_cache(maxsize=None)
def scalar_function(name: str):
    """ctypes wrapper of the C library's scalar function ``name`` (a key of :data:`FUNCTIONS`)."""
    dtype, nargs, _ = FUNCTIONS[name]
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    fn = getattr(c_math_library(), name)
    fn.argtypes, fn.restype = [ctype] * nargs, ctype
    return fn


@lru_cache(maxsize=None)
def _ufunc_api_table():
    """NumPy's ufunc C-API table (an array of addresses), or None if unreachable."""
    try:
        try:
            from numpy._core import _multiarray_umath as umath
        except ImportError:  # NumPy 1.x
            from numpy.core import _multiarray_umath as umath
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        return (ctypes.c_void_p * (max(UFUNC_LOOP_NAMES) + 1)).from_address(get(umath._UFUNC_API, None))
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        log.warning("NumPy's ufunc C-API table is unreachable (%s): C library functions are called once "
                    "per element (same results, slower)", e)
        return None


#: Below this many elements, direct calls cost less than setting up NumPy's loop.
SMALL = 16


def _per_element(name: str, *args: np.ndarray) -> np.ndarray:
    """``name`` applied by direct calls, one element at a time (1-D contiguous inputs)."""
    fn = scalar_function(name)
    return np.fromiter(map(fn, *(a.tolist() for a in args)), dtype=args[0].dtype, count=args[0].size)


@lru_cache(maxsize=None)
def _address(name: str) -> int:
    return ctypes.cast(scalar_function(name), ctypes.c_void_p).value


_POINTERS = {n: ctypes.c_void_p * n for n in (2, 3)}
_STEPS = {(n, size): (ctypes.c_ssize_t * n)(*[size] * n) for n in (2, 3) for size in (4, 8)}


def _looped(loop, name: str, *args: np.ndarray) -> np.ndarray:
    """``name`` applied by NumPy's generic C loop to 1-D contiguous inputs of its dtype."""
    out = np.empty_like(args[0])
    arrays = args + (out,)
    pointers = _POINTERS[len(arrays)](*(a.__array_interface__["data"][0] for a in arrays))
    loop(pointers, (ctypes.c_ssize_t * 1)(out.size), _STEPS[len(arrays), out.itemsize], _address(name))
    return out


@lru_cache(maxsize=None)
def _vector_loop(name: str):
    """NumPy's generic loop for ``name``, after checking it against direct calls; None to call per element."""
    table = _ufunc_api_table()
    if table is None:
        return None
    dtype, nargs, index = FUNCTIONS[name]
    loop = _LOOP(table[index])
    rng = np.random.default_rng(0)
    probe = [np.concatenate([rng.normal(size=61) * 10.0 ** rng.integers(-8, 8, size=61), special]).astype(dtype)
             for special in ([0.0, -0.0, 1.0, -1.0], [-0.0, 0.0, 0.0, -3.0])[:nargs]]
    if _looped(loop, name, *probe).tobytes() != _per_element(name, *probe).tobytes():
        log.warning("NumPy's generic loop disagrees with direct calls of %s: calling it per element", name)
        return None
    return loop


def apply(name: str, *args) -> np.ndarray:
    """The C library's function ``name`` (a key of :data:`FUNCTIONS`) applied element-wise.

    Arguments are converted to the function's dtype (round to nearest) and broadcast together.
    """
    dtype, nargs, _ = FUNCTIONS[name]
    if len(args) != nargs:
        raise TypeError(f"{name} takes {nargs} arguments, got {len(args)}")
    arrays = [np.asarray(a, dtype=dtype) for a in args]
    if nargs > 1 and arrays[0].shape != arrays[1].shape:
        arrays = np.broadcast_arrays(*arrays)
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    size = flat[0].size
    loop = _vector_loop(name) if size >= SMALL else None
    out = _looped(loop, name, *flat) if loop is not None else _per_element(name, *flat)
    return out.reshape(shape)


def atan2f(y, x) -> np.ndarray:
    """The C library's single-precision ``atan2f(y, x)`` of each pair (float32 in, float32 out).

    Inputs are converted to float32 (round to nearest) and broadcast. Radians in [-pi, pi].
    """
    return apply("atan2f", y, x)


def atan2(y, x) -> np.ndarray:
    """The C library's double ``atan2(y, x)`` of each pair (float64), radians in [-pi, pi]."""
    return apply("atan2", y, x)


def sin(x) -> np.ndarray:
    """The C library's double ``sin`` (what Python's ``math.sin`` calls) of each element of ``x`` (radians)."""
    return apply("sin", x)


def cos(x) -> np.ndarray:
    """The C library's double ``cos`` (what Python's ``math.cos`` calls) of each element of ``x`` (radians)."""
    return apply("cos", x)
