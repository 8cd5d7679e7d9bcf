"""sdae-mm: self-distilled masked image modeling on the OpenMMLab stack.

Importing this package applies the small compatibility layer for the current torch
(:mod:`sdae_mm.compat`) and registers every module: algorithms, transforms and hooks in
mmpretrain's registries, the layer-decay constructor in mmengine's root registry, and the
downstream modules in mmseg's and mmdet's.
"""
from . import compat  # noqa: F401  (must come first)
from .version import __version__
from . import datasets, engine, models  # noqa: F401,E402
from . import downstream  # noqa: F401,E402

__all__ = ['__version__']
