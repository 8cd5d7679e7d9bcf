from .cosine import CosineDistanceLoss
from .smooth_l1 import MaskedSmoothL1Loss

__all__ = ['CosineDistanceLoss', 'MaskedSmoothL1Loss']
