"""Simulators with the interface of ``MatterSim.Simulator``.

``vln.sim.Simulator`` is the pure-Python navigation-graph simulator. The real C++ MatterSim is an
optional back-end (``make_simulator("mattersim")``) behind the same interface.
"""
from .graph_sim import Simulator, r2r_simulator, shared_navgraph
from .state import SimState, ViewPoint
from .backends import SIMULATORS, make_simulator

__all__ = ["Simulator", "r2r_simulator", "SimState", "ViewPoint", "SIMULATORS", "make_simulator", "shared_navgraph"]
