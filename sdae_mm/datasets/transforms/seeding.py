"""Seeding a sample's augmentation from the seed its index carries."""
import random
import warnings

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

_MASK32 = 0xFFFFFFFF


@TRANSFORMS.register_module()
class SeedPerSample(BaseTransform):
    """Seed python's and numpy's global random generators from the sample's own seed.

    With :class:`~sdae_mm.datasets.SeededSampler`, ``results['sample_idx']`` carries a
    seed derived from the run's seed, the epoch and the index; the transforms after this
    one (crops, flips, masks: all draw from numpy's or python's global generator) then give
    the same output for that sample whichever worker process draws it, and in a resumed
    run. torch's generator is left alone: no transform of the pretraining pipelines uses
    it, and in a main-process loader it drives the model (drop path).

    Without a seeded index (another sampler, or a dataset wrapper that maps indices) it
    leaves the generators as they are, and warns once.

    **Required keys:** ``sample_idx``.
    """

    def __init__(self) -> None:
        self._warned = False

    def transform(self, results: dict) -> dict:
        """Seed the generators; ``results`` is returned unchanged."""
        seed = getattr(results.get('sample_idx'), 'seed', None)
        if seed is None:
            if not self._warned:
                warnings.warn('SeedPerSample: the sample index carries no seed (use '
                              "sampler=dict(type='SeededSampler')); augmentations are "
                              'drawn from the worker streams')
                self._warned = True
            return results
        random.seed(seed)
        np.random.seed((seed & _MASK32, seed >> 32))
        return results
