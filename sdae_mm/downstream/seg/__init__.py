"""mmseg transfer: the ViT backbone that loads sdae-mm checkpoints, and the demo data."""
from .digit_scenes import DigitScenesDataset
from .vit import SdMIMSegViT

__all__ = ['SdMIMSegViT', 'DigitScenesDataset']
