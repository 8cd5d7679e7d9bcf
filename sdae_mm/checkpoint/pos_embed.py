"""The one position-embedding resizer (mmpretrain's ``resize_pos_embed``, bicubic).

Bicubic with ``align_corners=False`` on the patch grid, extra (class-token) positions kept,
as the official MAE ``interpolate_pos_embed`` does.
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import resize_pos_embed as _mmpretrain_resize

__all__ = ['split_pos_embed_length', 'resize_pos_embed', 'resize_rel_pos_table']


def split_pos_embed_length(length: int, extra_first: Sequence[int] = (1, 0),
                           what: str = 'pos_embed') -> Tuple[int, Tuple[int, int]]:
    """Number of extra tokens and the square grid of a position embedding's length.

    Args:
        length (int): Positions of the embedding.
        extra_first (Sequence[int]): Extra-token counts to try, in order.
        what (str): Name used in the error message.

    Returns:
        tuple[int, tuple[int, int]]: Extra tokens and ``(side, side)``.
    """
    for extra in extra_first:
        side = math.isqrt(length - extra) if length - extra > 0 else 0
        if side > 0 and side * side == length - extra:
            return extra, (side, side)
    raise ValueError(f'{what} has {length} positions: not a square grid of patches plus '
                     f'{" or ".join(map(str, extra_first))} extra token(s)')


def resize_pos_embed(pos_embed: torch.Tensor, src_grid: Sequence[int],
                     dst_grid: Sequence[int], num_extra_tokens: int = 1) -> torch.Tensor:
    """Resize a ``(1, E + H*W, C)`` position embedding to ``(1, E + H'*W', C)``.

    Args:
        pos_embed (torch.Tensor): The embedding, extra positions first.
        src_grid (Sequence[int]): ``(H, W)``.
        dst_grid (Sequence[int]): ``(H', W')``.
        num_extra_tokens (int): Extra (class-token) positions, kept as they are.

    Returns:
        torch.Tensor: The resized embedding (a new tensor).
    """
    src_grid, dst_grid = tuple(src_grid), tuple(dst_grid)
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1 or \
            pos_embed.shape[1] != num_extra_tokens + src_grid[0] * src_grid[1]:
        raise ValueError(f'pos_embed of shape {tuple(pos_embed.shape)} does not fit a '
                         f'{src_grid[0]}x{src_grid[1]} grid plus {num_extra_tokens} extra '
                         'position(s)')
    if src_grid == dst_grid:
        return pos_embed.clone()
    return _mmpretrain_resize(pos_embed, src_grid, dst_grid, mode='bicubic',
                              num_extra_tokens=num_extra_tokens)


def resize_rel_pos_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """Linearly resize a ``(2S - 1, C)`` relative-position table to ``length`` rows.

    What ViTDet does for tables pretrained at another window size.
    """
    if table.ndim != 2:
        raise ValueError(f'relative position table must be 2-D, got {tuple(table.shape)}')
    if table.shape[0] == length:
        return table.clone()
    out = F.interpolate(table.float().t().unsqueeze(0), size=length, mode='linear',
                        align_corners=False)
    return out.squeeze(0).t().contiguous().to(table.dtype)
