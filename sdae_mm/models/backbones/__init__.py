from .mim_vit import MIMVisionTransformer

__all__ = ['MIMVisionTransformer']
