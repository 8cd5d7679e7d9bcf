from .cosine import CosineDistanceLoss

__all__ = ['CosineDistanceLoss']
from .smooth_l1 import MaskedSmoothL1Loss  # noqa: E402

__all__ += ['MaskedSmoothL1Loss']
