from .masking import MultiFoldMaskGenerator, RandomPatchMaskGenerator

__all__ = ['RandomPatchMaskGenerator', 'MultiFoldMaskGenerator']
