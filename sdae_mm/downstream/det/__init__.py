"""Detection transfer (mmdet 3.3): backbones, neck and helpers registered in mmdet's scope.

* :class:`PlainViT`: ViT + multi-scale adapter for Mask R-CNN with FPN (BEiT/iBOT/CAE
  benchmark).
* :class:`ViTDet`: windowed/global attention ViT with relative positions (ViTDet).
* :class:`SimpleFPN`: ViTDet's simple feature pyramid.
* ``LN2d``: channel LayerNorm for LN-normalised convolutions (SimpleFPN, RoI heads).
* :class:`Fp16CompressionHook`: fp16 gradient all-reduce (ViTDet recipe).
"""
from .attention import RelPosAttention, ViTDetLayer  # noqa: F401
from .checkpoint import CheckpointMismatchError, load_converted_backbone  # noqa: F401
from .hooks import Fp16CompressionHook  # noqa: F401
from .layer_norm import LayerNorm2d  # noqa: F401
from .plain_vit import PlainViT  # noqa: F401
from .simple_fpn import SimpleFPN  # noqa: F401
from .vitdet import ViTDet  # noqa: F401

__all__ = [
    'PlainViT', 'ViTDet', 'SimpleFPN', 'LayerNorm2d', 'RelPosAttention', 'ViTDetLayer',
    'Fp16CompressionHook', 'CheckpointMismatchError', 'load_converted_backbone'
]
