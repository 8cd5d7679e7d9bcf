"""Tests of sdae_mm.models.utils.recompute: GELU recomputed in the backward pass."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmpretrain.registry import MODELS

import sdae_mm  # noqa: F401
from sdae_mm.models.utils import RecomputeGeluFFN, gelu_linear, use_gelu_recompute
from tests.helpers.models import mask_samples, tiny_sdae_cfg


def saved_bytes(fn):
    """Bytes autograd keeps for the backward pass while running ``fn`` (storages counted
    once)."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values())


def ffn(**kwargs):
    torch.manual_seed(0)
    return FFN(embed_dims=8, feedforward_channels=32, act_cfg=dict(type='GELU'), **kwargs)


def test_gelu_linear_matches_the_plain_ops_in_fp32():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 32, requires_grad=True)
    fc2 = nn.Linear(32, 8)
    grad = torch.randn(3, 5, 8)
    ref = F.linear(F.gelu(hidden), fc2.weight, fc2.bias)
    ref_grads = torch.autograd.grad(ref, (hidden, fc2.weight, fc2.bias), grad)
    out = gelu_linear(hidden, fc2)
    grads = torch.autograd.grad(out, (hidden, fc2.weight, fc2.bias), grad)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_gelu_linear_follows_autocast():
    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(8, 32), nn.Linear(32, 8)
    x = torch.randn(4, 8)

    def run(fused):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            hidden = fc1(x)
            out = gelu_linear(hidden, fc2) if fused else fc2(F.gelu(hidden))
        grads = torch.autograd.grad(out.float().square().sum(),
                                    (fc1.weight, fc2.weight, fc2.bias))
        return out, grads

    out, grads = run(True)
    ref, ref_grads = run(False)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    for got, want in zip(grads, ref_grads):
        assert got.dtype == want.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-3)


def test_recompute_ffn_keeps_less_and_computes_the_same():
    plain = ffn()
    fused = copy.deepcopy(plain)
    assert use_gelu_recompute(fused) == 1 and type(fused) is RecomputeGeluFFN
    assert list(fused.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 7, 8, requires_grad=True)
    ref, ref_bytes = saved_bytes(lambda: plain(x))
    out, got_bytes = saved_bytes(lambda: fused(x))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    # the GELU output, 2 x 7 x 32 floats, is no longer kept
    assert ref_bytes - got_bytes == 2 * 7 * 32 * 4
    grad = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, [x, *plain.parameters()], grad)
    grads = torch.autograd.grad(out, [x, *fused.parameters()], grad)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    with torch.no_grad():  # evaluation: the plain forward
        torch.testing.assert_close(fused(x), plain(x), rtol=0, atol=0)


@pytest.mark.parametrize('kwargs', [dict(ffn_drop=0.1), dict(num_fcs=3)])
def test_other_ffns_are_left_alone(kwargs):
    assert use_gelu_recompute(ffn(**kwargs)) == 0
    relu = FFN(embed_dims=8, feedforward_channels=32, act_cfg=dict(type='ReLU'))
    assert use_gelu_recompute(relu) == 0 and type(relu) is FFN


def sdae_step(recompute):
    torch.manual_seed(0)
    model = MODELS.build(tiny_sdae_cfg(recompute_gelu=recompute))
    model.init_weights()
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 32, 32)
    ids = torch.stack([torch.randperm(16) for _ in range(2)])
    losses = model.loss(inputs, mask_samples(ids, 4))
    loss = sum(losses.values())
    loss.backward()
    return model, loss


def test_sdae_with_recompute_gelu_trains_the_same():
    plain, ref = sdae_step(False)
    fused, loss = sdae_step(True)
    assert sum(type(m) is RecomputeGeluFFN for m in fused.modules()) == 3  # 2 + 1 blocks
    assert not any(type(m) is RecomputeGeluFFN for m in fused.teacher.modules())
    torch.testing.assert_close(loss, ref, rtol=0, atol=0)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_recompute_gelu_without_a_matching_ffn_is_an_error(monkeypatch):
    import sdae_mm.models.algorithms.base as base
    cfg = tiny_sdae_cfg(recompute_gelu=True)
    cfg['backbone']['drop_rate'] = 0.1  # dropout inside the encoder's FFNs: not turned
    turned = []
    monkeypatch.setattr(base, 'use_gelu_recompute',
                        lambda m: turned.append(use_gelu_recompute(m)) or 0)
    with pytest.raises(ValueError, match='recompute_gelu=True'):
        MODELS.build(cfg)
    assert turned == [0, 1]  # encoder: none; decoder: its block (counted 0 by the stub)


@pytest.mark.parametrize('config', ['dbot_vit-demo-p8_1xb64-2stage-40e_digits.py',
                                    'rc_mae_vit-demo-p8_1xb64-40e_digits.py'])
def test_dbot_and_rc_mae_train_the_same_with_recompute_gelu(config):
    import os.path as osp

    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    model_cfg = Config.fromfile(osp.join(repo, 'configs', 'demo', config)).model.to_dict()

    def step(recompute):
        torch.manual_seed(0)
        model = MODELS.build(dict(model_cfg, recompute_gelu=recompute))
        model.init_weights()
        torch.manual_seed(1)
        ids = torch.stack([torch.randperm(64) for _ in range(2)])
        losses = model.loss(torch.randn(2, 3, 64, 64), mask_samples(ids, 16))
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        loss.backward()
        return model, loss

    plain, ref = step(False)
    fused, loss = step(True)
    assert any(type(m) is RecomputeGeluFFN for m in fused.modules())
    torch.testing.assert_close(loss, ref, rtol=0, atol=0)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)
