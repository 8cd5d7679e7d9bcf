"""SimpleFPN strides/channels, LN2d, and the fp16 gradient compression hook."""
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from sdae_mm.downstream.det import Fp16CompressionHook, LayerNorm2d, SimpleFPN

#: default scope of every test here (see tests/conftest.py): mmcv builds 'LN2d' from the
#: current scope's registry, as under an mmdet config
DEFAULT_SCOPE = 'mmdet'


def test_ln2d_is_layernorm_over_channels():
    ln = LayerNorm2d(8)
    assert ln.eps == 1e-6
    with torch.no_grad():
        ln.weight.normal_(), ln.bias.normal_()
    x = torch.randn(2, 8, 5, 3)
    ref = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8, ), ln.weight, ln.bias, 1e-6)
    torch.testing.assert_close(ln(x), ref.permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match='channels'):
        ln(torch.randn(2, 4, 5, 3))


def test_simple_fpn_vitdet_strides_and_channels():
    """Stride-16 ViT map of a 128x128 input -> strides 4, 8, 16, 32, 64."""
    neck = SimpleFPN(in_channels=32, out_channels=16, scale_factors=(4.0, 2.0, 1.0, 0.5),
                     num_outs=5)
    neck.init_weights()
    x = torch.randn(2, 32, 8, 8)
    outs = neck((x, ))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 32, 32), (2, 16, 16, 16), (2, 16, 8, 8),
                                              (2, 16, 4, 4), (2, 16, 2, 2)]
    strides = [128 // o.shape[-1] for o in outs]
    assert strides == [4, 8, 16, 32, 64]
    # first-stage channels: C/4, C/2, C, C (detectron2)
    assert [c.conv.in_channels for c in neck.lateral_convs] == [8, 16, 32, 32]
    # every conv is normalised with LN2d (eps 1e-6) and has no bias, no activation
    for conv in list(neck.lateral_convs) + list(neck.fpn_convs):
        assert isinstance(conv.norm, LayerNorm2d) and conv.norm.eps == 1e-6
        assert conv.conv.bias is None and not conv.with_activation
    assert isinstance(neck.stages[0][1], LayerNorm2d)
    assert isinstance(neck.stages[0][2], nn.GELU)
    # P6 is a stride-2 subsampling of P5
    torch.testing.assert_close(outs[4], outs[3][..., ::2, ::2])
    # identity and max-pool stages
    torch.testing.assert_close(neck.stages[3](x), nn.functional.max_pool2d(x, 2))
    assert isinstance(neck.stages[2], nn.Identity)


def test_simple_fpn_patch8_scales():
    """Stride-8 map (patch 8) with scales 2/1/0.5/0.25 -> strides 4..32, no extra level."""
    neck = SimpleFPN(in_channels=32, out_channels=16, scale_factors=(2.0, 1.0, 0.5, 0.25),
                     num_outs=4)
    outs = neck([torch.randn(1, 32, 16, 12)])
    assert [tuple(o.shape) for o in outs] == [(1, 16, 32, 24), (1, 16, 16, 12), (1, 16, 8, 6),
                                              (1, 16, 4, 3)]


def test_simple_fpn_bad_arguments():
    with pytest.raises(ValueError, match='scale factor 3.0'):
        SimpleFPN(in_channels=32, scale_factors=(3.0, ))
    with pytest.raises(ValueError, match='num_outs'):
        SimpleFPN(in_channels=32, num_outs=3)
    neck = SimpleFPN(in_channels=32, out_channels=16)
    with pytest.raises(ValueError, match=r'\(B, 32, H, W\)'):
        neck([torch.randn(1, 16, 8, 8)])


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_fp16_compression_hook_rounds_ddp_gradients():
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.manual_seed(0)
    net = nn.Linear(6, 4)
    x = torch.randn(3, 6)
    net(x).pow(2).sum().backward()
    ref = net.weight.grad.clone()
    net.zero_grad()

    hook = Fp16CompressionHook()
    hook.before_train(SimpleNamespace(model=net))  # not DDP: nothing to do
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{_free_port()}',
                            rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(net)
        hook.before_train(SimpleNamespace(model=ddp))
        ddp(x).pow(2).sum().backward()
        grad = ddp.module.weight.grad
    finally:
        dist.destroy_process_group()
    assert not torch.equal(ref, ref.half().float())  # the test can see the rounding
    torch.testing.assert_close(grad, ref.half().float(), rtol=0, atol=0)
