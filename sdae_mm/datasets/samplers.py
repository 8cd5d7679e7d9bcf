"""A sampler whose indices carry a per-sample seed, for reproducible data augmentation.

Data-loader workers draw their crops and masks from random streams seeded once, when the
worker starts; a run resumed from a checkpoint restarts those streams and draws different
augmentations from an uninterrupted run. :class:`SeededSampler` instead gives every sample
a seed derived from the sampler's seed, the epoch and the sample's index, and the
:class:`~sdae_mm.datasets.transforms.SeedPerSample` transform seeds the random generators
from it before the sample's augmentations: a sample's augmentation no longer depends on
which worker draws it, how many workers there are, or whether the run was resumed.
"""
from typing import Iterator

import numpy as np
from mmengine.dataset import DefaultSampler
from mmpretrain.registry import DATA_SAMPLERS

_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, a bijection of uint64 (arrays wrap on overflow)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def sample_seeds(seed: int, epoch: int, indices) -> np.ndarray:
    """64-bit seeds of the samples ``indices`` in ``epoch`` of a run seeded ``seed``.

    Distinct indices get distinct seeds within an epoch (the mixing is a bijection).

    Args:
        seed (int): The run's (sampler's) seed.
        epoch (int): The epoch.
        indices (array-like of int): Dataset indices.

    Returns:
        np.ndarray: uint64 seeds, one per index.
    """
    key = _splitmix64(np.array([seed & _MASK64], dtype=np.uint64))
    key = _splitmix64(key ^ np.array([epoch & _MASK64], dtype=np.uint64))
    return _splitmix64(key ^ np.asarray(indices, dtype=np.uint64))


class SampleIndex(int):
    """A dataset index that carries the sample's seed (``.seed``).

    It is an ``int`` everywhere a dataset uses its index; mmengine's ``BaseDataset`` passes
    it on as ``results['sample_idx']``, where :class:`SeedPerSample` reads the seed.
    """

    def __new__(cls, index: int, seed: int) -> 'SampleIndex':
        obj = super().__new__(cls, index)
        obj.seed = int(seed)
        return obj

    def __reduce__(self):
        return SampleIndex, (int(self), self.seed)

    def __repr__(self) -> str:
        return f'SampleIndex({int(self)}, seed={self.seed})'

    def __str__(self) -> str:
        return str(int(self))


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` whose indices carry per-sample seeds.

    The order of the indices is ``DefaultSampler``'s (same seed, same epoch, same order);
    each index is a :class:`SampleIndex` whose seed is :func:`sample_seeds` of the
    sampler's seed, the epoch set by ``DistSamplerSeedHook`` and the index. Put
    :class:`~sdae_mm.datasets.transforms.SeedPerSample` first in the pipeline.

    Args:
        dataset (Dataset): The dataset.
        shuffle (bool): Whether to shuffle. Defaults to True.
        seed (int, optional): Seed of the shuffle and of the samples; the Runner passes its
            own. Defaults to None (a random seed shared by all ranks).
        round_up (bool): As ``DefaultSampler``. Defaults to True.
    """

    def __iter__(self) -> Iterator[SampleIndex]:
        indices = list(super().__iter__())
        seeds = sample_seeds(self.seed, self.epoch, indices)
        return iter([SampleIndex(i, s) for i, s in zip(indices, seeds.tolist())])
