"""Registry of simulator back-ends: ``graph`` (ours, pure Python) and ``mattersim`` (C++, optional)."""
from __future__ import annotations

from ..errors import DependencyNotInstalled
from ..registry import Registry
from .graph_sim import Simulator

SIMULATORS: Registry = Registry("simulator")
SIMULATORS.register("graph", Simulator)


@SIMULATORS.register("mattersim")
def _mattersim_simulator():
    """The real C++ MatterSim, when ``import MatterSim`` works (it is not on PyPI)."""
    try:
        import MatterSim  # noqa: N813 - the module's own name
    except ImportError as e:
        raise DependencyNotInstalled(
            "the 'mattersim' back-end needs the C++ Matterport3D Simulator built with its Python bindings "
            "(github.com/peteanderson80/Matterport3DSimulator; add its build/ folder to PYTHONPATH). "
            "Note: the PyPI package named 'mattersim' is an unrelated chemistry model. "
            f"Original error: {e}"
        ) from e
    sim = MatterSim.Simulator()
    if not hasattr(sim, "setBatchSize"):
        raise DependencyNotInstalled("the installed MatterSim is older than v0.1 (no batched API); please upgrade")
    return sim


def make_simulator(backend: str = "graph"):
    """A new simulator of the named back-end (``SIMULATORS.names()`` lists them)."""
    return SIMULATORS.get(backend)()
