"""sdae-mm: self-distilled masked image modeling on the OpenMMLab stack.

Importing this package applies the small compatibility layer for the current torch
(:mod:`sdae_mm.compat`) and registers every module: algorithms, transforms and hooks in
mmpretrain's registries, the layer-decay constructor in mmengine's root registry, and the
downstream modules in mmseg's and mmdet's.

mmdet and mmseg need mmcv's compiled ops. On a pretraining-only node with an mmcv built
without them (``mmcv-lite``), the downstream modules are not registered and a warning
says so; pretraining, conversion and classification transfer work as usual.
"""
import warnings

from . import compat  # noqa: F401  (must come first)
from .version import __version__
from . import datasets, engine, models  # noqa: F401,E402


def _mmcv_has_ops() -> bool:
    try:
        import mmcv.ops  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


if _mmcv_has_ops():
    from . import downstream  # noqa: F401,E402
else:  # pragma: no cover  (exercised on mmcv-lite installs only)
    warnings.warn('mmcv has no compiled ops (mmcv-lite?): the mmseg/mmdet transfer modules of '
                  'sdae_mm are not registered. Install mmcv with ops for segmentation and '
                  'detection transfer (tools/setup_env.sh builds it).')

__all__ = ['__version__']
