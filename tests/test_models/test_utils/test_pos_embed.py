"""The fixed position tables are MAE's get_2d_sincos_pos_embed, exactly."""
import numpy as np
import pytest
import torch
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS

from sdae_mm.models.utils import sincos_pos_embed


def mae_table(embed_dim, grid_size, cls_token=True):
    """MAE's util/pos_embed.py equations, written out independently with numpy: row ``i``,
    column ``j`` of the patch grid is sequence index ``i * grid + j``; the first half of the
    channels is the 1-D table (sin then cos, omega = 1 / 10000 ** (k / (D / 4))) of the
    column, the second half that of the row; float64."""
    quarter = embed_dim // 4
    omega = 1. / 10000**(np.arange(quarter, dtype=np.float64) / quarter)
    rows = np.zeros((grid_size * grid_size, embed_dim))
    for i in range(grid_size):
        for j in range(grid_size):
            col_angles, row_angles = j * omega, i * omega
            rows[i * grid_size + j] = np.concatenate(
                [np.sin(col_angles), np.cos(col_angles), np.sin(row_angles),
                 np.cos(row_angles)])
    if cls_token:
        rows = np.concatenate([np.zeros((1, embed_dim)), rows])
    return torch.from_numpy(rows).float().unsqueeze(0)


@pytest.mark.parametrize('grid,dims', [(14, 768), (14, 512), (16, 1280), (8, 96), (4, 32)])
def test_table_equals_mae_formula(grid, dims):
    ours = sincos_pos_embed(grid, dims)
    ref = mae_table(dims, grid)
    assert ours.shape == ref.shape == (1, 1 + grid * grid, dims)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-7)
    assert torch.equal(ours[0, 0], torch.zeros(dims))


def test_without_cls_token_and_the_transposed_table_is_caught():
    ours = sincos_pos_embed(14, 768, cls_token=False)
    torch.testing.assert_close(ours, mae_table(768, 14, cls_token=False), rtol=0, atol=1e-7)
    # mmpretrain's table swaps the halves (the grid transposed): the test tells them apart
    mmpretrain = build_2d_sincos_position_embedding(14, 768, cls_token=False)
    assert (mmpretrain - ours).abs().max() > 0.5
    half = 384
    swapped = torch.cat((ours[..., half:], ours[..., :half]), dim=-1)
    torch.testing.assert_close(mmpretrain, swapped, rtol=0, atol=1e-5)


def test_encoder_and_decoder_are_initialised_with_it():
    backbone = MODELS.build(dict(type='MIMVisionTransformer', arch='b', img_size=224,
                                 patch_size=16, init_mode='mae', fixed_pos_embed=True))
    backbone.init_weights()
    torch.testing.assert_close(backbone.pos_embed.data, mae_table(768, 14), rtol=0, atol=1e-7)
    neck = MODELS.build(dict(type='MIMDecoder', num_patches=196, in_channels=768,
                             out_channels=768, embed_dims=512, num_layers=1, num_heads=16))
    neck.init_weights()
    torch.testing.assert_close(neck.decoder_pos_embed.data, mae_table(512, 14), rtol=0,
                               atol=1e-7)
