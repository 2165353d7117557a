"""gro_core: the GRO objective, its presets, and the engine that trains with it.

Pure PyTorch + transformers; never imports the server, worker or dashboard.
"""

__version__ = "0.1.0"
