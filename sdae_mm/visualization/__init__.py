from .masks import render_mask_views

__all__ = ['render_mask_views']
