"""Fixed 2-D sine-cosine position embeddings, exactly MAE's table."""
import torch


def _sincos_1d(dims: int, pos: torch.Tensor) -> torch.Tensor:
    """``[sin(pos * omega), cos(pos * omega)]`` with ``omega = 1 / 10000 ** (k / (dims / 2))``,
    ``k < dims / 2``: ``(M, dims)``, in float64 like MAE's numpy code."""
    omega = torch.arange(dims // 2, dtype=torch.float64) / (dims / 2.)
    omega = 1. / 10000**omega
    out = pos.reshape(-1).to(torch.float64)[:, None] * omega[None, :]
    return torch.cat((torch.sin(out), torch.cos(out)), dim=1)


def sincos_pos_embed(grid: int, dims: int, cls_token: bool = True) -> torch.Tensor:
    """Sine-cosine embedding of a ``grid x grid`` patch grid, ``(1, [1 +] grid**2, dims)``.

    MAE's ``get_2d_sincos_pos_embed(dims, grid, cls_token)`` (``util/pos_embed.py`` of
    facebookresearch/mae, copied unchanged into SdAE, dBOT and RC-MAE): for the patch in
    row ``i`` and column ``j`` (sequence index ``i * grid + j``) the first half of the
    channels encodes the column ``j`` and the second half the row ``i``, each half as
    ``[sin, cos]`` of the 1-D table; computed in float64 and returned as float32. The cls
    position (when present) is all zeros.

    (mmpretrain's ``build_2d_sincos_position_embedding`` is the same table with the two
    halves swapped, i.e. transposed on the grid; it is not used here.)
    """
    if dims % 4:
        raise ValueError(f'the sine-cosine table needs dims divisible by 4, got {dims}')
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float32),
                                torch.arange(grid, dtype=torch.float32), indexing='ij')
    emb = torch.cat((_sincos_1d(dims // 2, cols), _sincos_1d(dims // 2, rows)), dim=1)
    if cls_token:
        emb = torch.cat((torch.zeros(1, dims, dtype=emb.dtype), emb), dim=0)
    return emb.float().unsqueeze(0)
