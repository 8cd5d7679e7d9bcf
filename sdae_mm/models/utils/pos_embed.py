"""Fixed 2-D sine-cosine position embeddings (MAE convention)."""
import torch
from mmpretrain.models.utils import build_2d_sincos_position_embedding


def sincos_pos_embed(grid: int, dims: int, cls_token: bool = True) -> torch.Tensor:
    """Sine-cosine embedding of a ``grid x grid`` patch grid, ``(1, [1 +] grid**2, dims)``.

    The cls position (when present) is all zeros, as in MAE. This is mmpretrain's
    implementation, which equals MAE's numpy one (checked in the tests).
    """
    return build_2d_sincos_position_embedding(grid, dims, cls_token=cls_token).float()
