from .crop import ClampedRandomResizedCrop, DecodeRandomResizedCrop
from .masking import MultiFoldMaskGenerator, RandomPatchMaskGenerator
from .seeding import SeedPerSample

__all__ = [
    'RandomPatchMaskGenerator', 'MultiFoldMaskGenerator', 'DecodeRandomResizedCrop',
    'ClampedRandomResizedCrop', 'SeedPerSample'
]
