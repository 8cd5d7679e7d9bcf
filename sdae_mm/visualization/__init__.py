from .masks import add_panel_titles, mask_view_titles, render_mask_views

__all__ = ['add_panel_titles', 'mask_view_titles', 'render_mask_views']
