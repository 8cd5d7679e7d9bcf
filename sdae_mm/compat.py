"""Compatibility of mmengine 0.10.7 with torch >= 2.6, applied when ``sdae_mm`` is imported.

torch 2.6 made ``torch.load`` default to ``weights_only=True``. mmengine 0.10.7 calls
``torch.load(filename, map_location=...)`` without ``weights_only``, so a full training
checkpoint, whose ``message_hub`` holds :class:`mmengine.logging.HistoryBuffer` objects and
numpy scalars/arrays, is refused and training cannot resume.

Rather than turning the safe loader off, we allow-list exactly the classes that mmengine's
own checkpoints contain. ``HistoryBuffer`` pickles its statistic methods as
``getattr(HistoryBuffer, 'mean')``; instead of allowing ``builtins.getattr`` itself, that
global resolves to :func:`_history_buffer_getattr`, which only returns the statistics
registered on ``HistoryBuffer`` and refuses every other attribute. Nothing in installed
packages is edited, and a checkpoint carrying any other pickled object is still refused by
torch's safe loader.
"""
import pickle

import numpy as np
import torch

__all__ = ['CHECKPOINT_SAFE_GLOBALS', 'apply']


def _numpy_safe_globals():
    """numpy objects that appear in pickled scalars and arrays."""
    try:  # numpy >= 1.25 exposes the dtype classes; numpy 2 moved ``core``.
        from numpy import dtypes
        dtype_classes = [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    except ImportError:  # pragma: no cover
        dtype_classes = []
    try:
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover  (numpy >= 2)
        from numpy._core.multiarray import _reconstruct, scalar
    return [_reconstruct, scalar, np.ndarray, np.dtype] + dtype_classes


def _history_buffer_getattr(obj, name):
    """``getattr`` for the unpickler, limited to ``HistoryBuffer``'s statistic methods."""
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); the safe loader only resolves '
        'HistoryBuffer statistics this way')


def _mmengine_safe_globals():
    """mmengine objects stored in the ``message_hub`` of every Runner checkpoint."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
            (_history_buffer_getattr, '__builtin__.getattr')]


CHECKPOINT_SAFE_GLOBALS = _numpy_safe_globals() + _mmengine_safe_globals()


def apply():
    """Allow-list the globals of mmengine checkpoints for ``torch.load``.

    Idempotent; a no-op on torch versions without ``add_safe_globals``.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(CHECKPOINT_SAFE_GLOBALS)


apply()
