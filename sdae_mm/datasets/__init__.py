from . import transforms  # noqa: F401
from .samplers import SampleIndex, SeededSampler, sample_seeds

__all__ = ['SampleIndex', 'SeededSampler', 'sample_seeds']
