"""ViTDet attention: windows, relative positions and equivalence with plain attention."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

from sdae_mm.downstream.det.attention import (RelPosAttention, ViTDetLayer, decomposed_rel_pos_bias,
                                              get_rel_pos, window_partition, window_unpartition)

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmdet'

C, HEADS, FFN = 32, 2, 64


def _layer(window_size, use_rel_pos=False, input_size=(4, 4)):
    torch.manual_seed(0)
    layer = ViTDetLayer(C, HEADS, FFN, window_size=window_size, use_rel_pos=use_rel_pos,
                        input_size=input_size)
    layer.init_weights()
    return layer.eval()


def _randomize_rel_pos(layer, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ('rel_pos_h', 'rel_pos_w'):
            p = getattr(layer.attn, name)
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _explicit_attention(attn, x, rel=False):
    """softmax(q k^T / sqrt(d) + bias) v with the bias summed entry by entry."""
    B, H, W, _ = x.shape
    d = attn.head_dims
    qkv = attn.qkv(x).reshape(B, H * W, 3, attn.num_heads, d).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    logits = (q * d**-0.5) @ k.transpose(-2, -1)
    if rel:
        bias = torch.zeros_like(logits)
        for i in range(H * W):
            for j in range(H * W):
                (hi, wi), (hj, wj) = divmod(i, W), divmod(j, W)
                rh = attn.rel_pos_h[hi - hj + H - 1]
                rw = attn.rel_pos_w[wi - wj + W - 1]
                bias[..., i, j] = (q[..., i, :] * rh).sum(-1) + (q[..., i, :] * rw).sum(-1)
        logits = logits + bias
    out = logits.softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(B, H, W, -1))


def test_window_partition_roundtrip_with_padding():
    x = torch.randn(2, 5, 7, 3)
    windows, padded = window_partition(x, 3)
    assert padded == (6, 9)
    assert windows.shape == (2 * 2 * 3, 3, 3, 3)
    # the window in row 1, column 2 of image 1 is x[1, 3:6, 6:9] zero-padded
    expected = F.pad(x, (0, 0, 0, 2, 0, 1))[1, 3:6, 6:9]
    torch.testing.assert_close(windows[1 * 6 + 1 * 3 + 2], expected)
    torch.testing.assert_close(window_unpartition(windows, 3, padded, (5, 7)), x)


def test_get_rel_pos_indexing_and_resize():
    table = torch.arange(7, dtype=torch.float32)[:, None].repeat(1, 2)  # entry r = r
    out = get_rel_pos(4, 4, table)
    assert out.shape == (4, 4, 2)
    for i in range(4):
        for j in range(4):
            assert out[i, j, 0] == i - j + 3
    # a table of another length is linearly resized to 2 * 4 - 1 entries first
    resized = get_rel_pos(4, 4, torch.zeros(3, 2) + 5.0)
    torch.testing.assert_close(resized, torch.full((4, 4, 2), 5.0))


def test_rel_pos_bias_through_sdpa_matches_explicit_attention():
    torch.manual_seed(0)
    attn = RelPosAttention(C, HEADS, use_rel_pos=True, input_size=(3, 4)).eval()
    with torch.no_grad():
        attn.rel_pos_h.normal_()
        attn.rel_pos_w.normal_()
    x = torch.randn(2, 3, 4, C)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), _explicit_attention(attn, x, rel=True),
                                   rtol=1e-4, atol=1e-5)
    # the bias itself: shape (B, heads, N, N)
    q = torch.randn(2, HEADS, 12, C // HEADS)
    bias = decomposed_rel_pos_bias(q, attn.rel_pos_h, attn.rel_pos_w, (3, 4), (3, 4))
    assert bias.shape == (2, HEADS, 12, 12)


def test_windowed_and_global_equal_plain_attention_when_window_covers_map():
    windowed, global_ = _layer(4), _layer(0)
    plain = TransformerEncoderLayer(C, HEADS, FFN, norm_cfg=dict(type='LN', eps=1e-6)).eval()
    state = windowed.state_dict()
    global_.load_state_dict(state)
    plain.load_state_dict(state)  # same mmpretrain names: ln1, attn.qkv/proj, ln2, ffn
    x = torch.randn(2, 4, 4, C)
    with torch.no_grad():
        ref = plain(x.reshape(2, 16, C)).reshape(2, 4, 4, C)
        torch.testing.assert_close(windowed(x), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(global_(x), ref, rtol=1e-5, atol=1e-5)
        # and plain attention is the textbook formula
        torch.testing.assert_close(global_.attn(global_.ln1(x)),
                                   _explicit_attention(global_.attn, global_.ln1(x)),
                                   rtol=1e-5, atol=1e-5)


def test_windowed_and_global_with_rel_pos_agree_when_window_covers_map():
    windowed, global_ = _layer(4, use_rel_pos=True), _layer(0, use_rel_pos=True)
    _randomize_rel_pos(windowed)
    global_.load_state_dict(windowed.state_dict())  # tables of 2 * 4 - 1 entries in both
    x = torch.randn(2, 4, 4, C)
    with torch.no_grad():
        out = windowed(x)
        torch.testing.assert_close(out, global_(x), rtol=1e-5, atol=1e-5)
        # the relative bias changes the result
        plain = _layer(0, use_rel_pos=False)
        plain.load_state_dict(windowed.state_dict(), strict=False)
        assert not torch.allclose(out, plain(x), atol=1e-3)


def test_windows_attend_only_within_themselves():
    """A 4x4 map in 2x2 windows = each 2x2 quadrant through a global block."""
    windowed = _layer(2, use_rel_pos=True)
    _randomize_rel_pos(windowed)
    global_ = _layer(0, use_rel_pos=True, input_size=(2, 2))
    global_.load_state_dict(windowed.state_dict())
    x = torch.randn(1, 4, 4, C)
    with torch.no_grad():
        out = windowed(x)
        for r in (0, 2):
            for c in (0, 2):
                torch.testing.assert_close(out[:, r:r + 2, c:c + 2],
                                           global_(x[:, r:r + 2, c:c + 2]),
                                           rtol=1e-5, atol=1e-5)


def test_padded_windows_keep_shape_and_ignore_nothing_outside():
    layer = _layer(3)  # 4x4 map, windows of 3: padded to 6x6
    x = torch.randn(2, 4, 4, C)
    with torch.no_grad():
        out = layer(x)
        assert out.shape == x.shape
        # changing the bottom-right token changes nothing in the top-left window
        x2 = x.clone()
        x2[:, 3, 3] += 1.0
        out2 = layer(x2)
    torch.testing.assert_close(out[:, :3, :3], out2[:, :3, :3])
    assert not torch.allclose(out[:, 3, 3], out2[:, 3, 3])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='input_size'):
        RelPosAttention(C, HEADS, use_rel_pos=True)
    with pytest.raises(ValueError, match='divisible'):
        RelPosAttention(30, 4)
    with pytest.raises(ValueError, match='window_size'):
        ViTDetLayer(C, HEADS, FFN, window_size=-1)
    with pytest.raises(ValueError, match=r'\(B, H, W, C\)'):
        _layer(0)(torch.randn(2, 16, C))
