"""clipvil core: navigation graphs, the MatterSim-compatible simulator, datasets and metrics.

``import vln`` is light: it never imports torch, MatterSim or habitat-sim.
"""
__version__ = "0.1.0"
