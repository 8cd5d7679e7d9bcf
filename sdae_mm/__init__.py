"""sdae-mm: self-distilled masked image modeling on the OpenMMLab stack.

Importing this package applies the small compatibility layer for the current torch
(:mod:`sdae_mm.compat`) and registers the pretraining modules: algorithms, transforms,
hooks and schedulers in mmpretrain's registries, the layer-decay constructor in mmengine's
root registry.

The mmseg and mmdet transfer modules are not imported here: the configs that use them
import them (``custom_imports=dict(imports=['sdae_mm', 'sdae_mm.downstream.seg'])``, or
``.det``), so that pretraining does not pay for them (see docs/speed.md).
"""
from . import compat  # noqa: F401  (must come first)
from . import datasets, engine, models  # noqa: F401,I100,I202
from .version import __version__

__all__ = ['__version__']
