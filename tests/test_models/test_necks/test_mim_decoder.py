"""MIMDecoder: full predictions, and predictions restricted to the loss's patches."""
import pytest
import torch

from sdae_mm.models.necks import MIMDecoder
from sdae_mm.models.necks.mim_decoder import block_at_rows
from sdae_mm.models.utils import gather_tokens

L, C_IN, C_OUT = 16, 24, 20


def _decoder(**kwargs):
    torch.manual_seed(0)
    dec = MIMDecoder(num_patches=L, in_channels=C_IN, out_channels=C_OUT, embed_dims=32,
                     num_layers=2, num_heads=4, **kwargs)
    dec.init_weights()
    return dec


def _inputs(batch=3, num_visible=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids_shuffle = torch.argsort(torch.rand(batch, L, generator=g), dim=1)
    latent = torch.randn(batch, 1 + num_visible, C_IN, generator=g)
    return latent, ids_shuffle


def test_full_prediction_shapes():
    dec = _decoder()
    latent, ids_shuffle = _inputs()
    ids_restore = ids_shuffle.argsort(1)
    assert dec(latent, ids_restore).shape == (3, L, C_OUT)
    assert dec(latent, ids_restore, keep_cls=True).shape == (3, 1 + L, C_OUT)


@pytest.mark.parametrize('train', [False, True])
def test_query_ids_equal_gathered_full_prediction(train):
    dec = _decoder().train(train)
    latent, ids_shuffle = _inputs()
    ids_restore = ids_shuffle.argsort(1)
    query = ids_shuffle[:, 4:13]  # 9 masked patches per sample, in mask order
    full = gather_tokens(dec(latent, ids_restore), query)
    part = dec(latent, ids_restore, query_ids=query)
    assert part.shape == (3, 9, C_OUT)
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)
    # and the gradients reaching the encoder output and the decoder weights agree
    lat = latent.clone().requires_grad_()
    gather_tokens(dec(lat, ids_restore), query).square().sum().backward()
    g_full = lat.grad.clone()
    w_full = dec.decoder_blocks[-1].attn.qkv.weight.grad.clone()
    lat.grad = None
    dec.zero_grad()
    dec(lat, ids_restore, query_ids=query).square().sum().backward()
    torch.testing.assert_close(lat.grad, g_full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dec.decoder_blocks[-1].attn.qkv.weight.grad, w_full,
                               rtol=1e-4, atol=1e-5)


def test_block_at_rows_matches_block_with_layer_scale():
    from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
    torch.manual_seed(0)
    blk = TransformerEncoderLayer(32, 4, 64, layer_scale_init_value=0.5).eval()
    x = torch.randn(2, 7, 32)
    rows = torch.tensor([[6, 0, 3], [1, 2, 5]])
    torch.testing.assert_close(block_at_rows(blk, x, rows), gather_tokens(blk(x), rows),
                               rtol=1e-5, atol=1e-5)


def test_bad_arguments():
    dec = _decoder()
    latent, ids_shuffle = _inputs()
    ids_restore = ids_shuffle.argsort(1)
    with pytest.raises(ValueError, match='keep_cls'):
        dec(latent, ids_restore, keep_cls=True, query_ids=ids_shuffle[:, 4:])
    with pytest.raises(ValueError, match='ids_restore has 9 patches'):
        dec(latent, ids_restore[:, :9])
    with pytest.raises(ValueError, match='square number, got 15'):
        MIMDecoder(num_patches=15, in_channels=8, out_channels=8)


@pytest.mark.parametrize('rate,depth', [(0.2, 8), (0.3, 8), (0.1, 2), (0., 8)])
def test_drop_path_is_linear_over_the_decoder_blocks_as_official_dbot(rate, depth):
    """dBOT's models_mae.py: decoder Blocks with drop_path=[x.item() for x in
    torch.linspace(0, drop_path_rate, decoder_depth)][i]."""
    dec = MIMDecoder(num_patches=L, in_channels=C_IN, out_channels=C_OUT, embed_dims=32,
                     num_layers=depth, num_heads=4, drop_path_rate=rate)
    official = [x.item() for x in torch.linspace(0, rate, depth)]
    for block, p in zip(dec.decoder_blocks, official):
        probs = {m.drop_prob for m in block.modules() if type(m).__name__ == 'DropPath'}
        assert probs == {p} or (p == 0 and probs <= {0.})
    # drop path is active in training only, and keeps query_ids == gathered full prediction
    dec.init_weights()
    latent, ids_shuffle = _inputs()
    ids_restore = ids_shuffle.argsort(1)
    dec.eval()
    torch.testing.assert_close(dec(latent, ids_restore), dec(latent, ids_restore))
    if rate:
        dec.train()
        torch.manual_seed(0)
        a = dec(latent, ids_restore)
        torch.manual_seed(1)
        b = dec(latent, ids_restore)
        assert not torch.allclose(a, b)
