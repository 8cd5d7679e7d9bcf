from .cosine import CosineDistanceLoss

__all__ = ['CosineDistanceLoss']
