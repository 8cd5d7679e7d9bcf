import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from tests.helpers.models import mask_samples, tiny_sdae_cfg
from tests.helpers.reference import layer_norm, patch_embed, vit_block


def _build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_sdae_cfg(**kwargs))
    model.init_weights()
    # make the teacher different from its initialisation so the test is not degenerate
    model.update_teacher(0.5)
    return model.eval()


# ----------------------------------------------------------------------------------------
# A direct re-implementation of the official SdAE training loop's equations
# (models_mae.py, models_teacher.py, engine_pretrain.py), written with plain tensor ops over
# the state dicts, so that it shares no code with the implementation under test.
def official_sdae_loss(model, imgs, ids_shuffle, mask_ratio, shrink_num, ncrop_loss, heads):
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    N, L = ids_shuffle.shape
    nlayers = len(model.backbone.layers)
    # --- student encoder (forward_encoder with random_masking fed a fixed permutation)
    x = patch_embed(imgs, sd, 'backbone.')
    x = x + sd['backbone.pos_embed'][:, 1:, :]
    len_keep = int(L * (1 - mask_ratio))
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    ids_unkeep = ids_shuffle[:, len_keep:]
    D = x.shape[2]
    x = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
    cls = sd['backbone.cls_token'] + sd['backbone.pos_embed'][:, :1, :]
    x = torch.cat((cls.expand(N, -1, -1), x), dim=1)
    for i in range(nlayers):
        x = vit_block(x, sd, f'backbone.layers.{i}.', heads)
    x = layer_norm(x, sd, 'backbone.ln1')
    # --- decoder (forward_decoder)
    x = x @ sd['neck.decoder_embed.weight'].T + sd['neck.decoder_embed.bias']
    mask_tokens = sd['neck.mask_token'].repeat(N, ids_restore.shape[1] + 1 - x.shape[1], 1)
    x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([x[:, :1, :], x_], dim=1) + sd['neck.decoder_pos_embed']
    for i in range(len(model.neck.decoder_blocks)):
        x = vit_block(x, sd, f'neck.decoder_blocks.{i}.',
                      model.neck.decoder_blocks[i].attn.num_heads)
    x = layer_norm(x, sd, 'neck.decoder_norm')
    outputs = (x @ sd['neck.decoder_pred.weight'].T + sd['neck.decoder_pred.bias'])[:, 1:, :]
    # --- teacher (forward_teachers with shrink_num and ncrop_loss)
    t = patch_embed(imgs, sd, 'teacher.')
    ids_t = ids_unkeep[:, :shrink_num]
    t = t + sd['teacher.pos_embed'][:, 1:, :]
    t = torch.gather(t, dim=1, index=ids_t.unsqueeze(-1).repeat(1, 1, t.shape[2]))
    t = t.reshape(N * ncrop_loss, int(t.shape[1] / ncrop_loss), t.shape[2])
    cls = sd['teacher.cls_token'] + sd['teacher.pos_embed'][:, :1, :]
    t = torch.cat((cls.expand(t.shape[0], -1, -1), t), dim=1)
    for i in range(nlayers):
        t = vit_block(t, sd, f'teacher.layers.{i}.', heads)
    t = layer_norm(t, sd, 'teacher.ln1')
    output_teacher = t[:, 1:, :]
    # --- engine_pretrain.py: normalise, gather, reshape, cosine
    mean = output_teacher.mean(dim=-1, keepdim=True)
    var = output_teacher.var(dim=-1, keepdim=True)
    output_teacher = (output_teacher - mean) / (var + 1.e-6)**.5
    outputs = torch.gather(outputs, dim=1, index=ids_t.unsqueeze(-1).repeat(1, 1, outputs.shape[2]))
    outputs = outputs.reshape(outputs.shape[0] * ncrop_loss, int(outputs.shape[1] / ncrop_loss),
                              outputs.shape[2])
    return 1 - F.cosine_similarity(output_teacher, outputs).mean()
# ----------------------------------------------------------------------------------------


def test_loss_equals_official_equations():
    model = _build(img_size=32, patch_size=8, num_teacher_tokens=12, num_folds=3).double()
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(3, 3, 32, 32, generator=g, dtype=torch.float64)
    ids_shuffle = torch.argsort(torch.rand(3, 16, generator=g), dim=1)
    num_visible = int(16 * (1 - 0.75))
    with torch.no_grad():
        ours = model.loss(imgs, mask_samples(ids_shuffle, num_visible))['loss']
        ref = official_sdae_loss(model, imgs, ids_shuffle, 0.75, 12, 3, heads=2)
    assert ref.item() != pytest.approx(0.0)
    assert abs(ours.item() - ref.item()) < 1e-6


def test_batched_fold_forward_equals_each_fold_alone():
    model = _build()
    x = torch.randn(2, 3, 32, 32)
    ids = torch.argsort(torch.rand(2, 16), dim=1)[:, 4:16]  # 12 masked tokens
    with torch.no_grad():
        batched = model.teacher.forward_views(x, ids, num_views=3)
        alone = torch.cat([model.teacher.forward_views(x, ids[:, f * 4:(f + 1) * 4], 1)
                           for f in range(3)], dim=1)
    assert batched.shape == (2, 12, 32)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    # a view's output depends only on its own tokens: one view of all 12 tokens differs
    with torch.no_grad():
        one_view = model.teacher.forward_views(x, ids, num_views=1)
    assert not torch.allclose(one_view, batched, atol=1e-4)


def test_teacher_sees_only_teacher_tokens():
    """Changing a visible patch or an unused masked patch leaves the target unchanged."""
    model = _build(num_teacher_tokens=9, num_folds=3)
    ids = torch.argsort(torch.rand(1, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    x = torch.randn(1, 3, 32, 32)
    teacher_ids = ids[:, 4:13]
    with torch.no_grad():
        t1 = model.teacher.forward_views(x, teacher_ids, 3)
        x2 = x.clone()
        for patch in (ids[0, 0].item(), ids[0, 15].item()):  # a visible and an unused one
            r, c = divmod(patch, 4)
            x2[..., r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] += 5.
        t2 = model.teacher.forward_views(x2, teacher_ids, 3)
    torch.testing.assert_close(t1, t2)


def test_teacher_student_mismatch_is_rejected():
    cfg = tiny_sdae_cfg()
    cfg['teacher'] = dict(cfg['teacher'], arch=dict(embed_dims=32, num_layers=3, num_heads=2,
                                                    feedforward_channels=64))
    with pytest.raises(ValueError, match='teacher does not match the student.*only in the teacher'):
        MODELS.build(cfg)
    cfg = tiny_sdae_cfg()
    cfg['teacher'] = dict(cfg['teacher'], patch_size=4)
    with pytest.raises(ValueError, match='shape mismatch'):
        MODELS.build(cfg)


def test_too_many_teacher_tokens_for_batch_is_rejected():
    model = _build(num_teacher_tokens=13, num_folds=1)
    ids = torch.argsort(torch.rand(1, 16), dim=1)
    with pytest.raises(ValueError, match='num_teacher_tokens=13 exceeds the 12 masked'):
        model.loss(torch.randn(1, 3, 32, 32), mask_samples(ids, 4))


def test_missing_mask_in_samples_is_a_clear_error():
    model = _build()
    with pytest.raises(KeyError, match='ids_shuffle'):
        model.loss(torch.randn(1, 3, 32, 32), [DataSample()])


def test_teacher_init_modes():
    torch.manual_seed(0)
    model = MODELS.build(tiny_sdae_cfg(teacher_init='student'))
    model.init_weights()
    for k, v in model.teacher.state_dict().items():
        torch.testing.assert_close(v, model.backbone.state_dict()[k])
    torch.manual_seed(0)
    model = MODELS.build(tiny_sdae_cfg())  # official: own random (timm-style) init
    model.init_weights()
    assert not torch.allclose(model.teacher.pos_embed, model.backbone.pos_embed)
    assert model.teacher.pos_embed.std().item() == pytest.approx(0.02, rel=0.3)
    assert not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.backbone.training and not model.teacher.training


def test_teacher_init_pretrained(tmp_path):
    src = _build()
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': src.state_dict()}, path)
    torch.manual_seed(1)
    model = MODELS.build(tiny_sdae_cfg(teacher_init='pretrained', teacher_checkpoint=str(path)))
    model.init_weights()
    for k, v in model.teacher.state_dict().items():
        torch.testing.assert_close(v, src.teacher.state_dict()[k])
    bad = {'state_dict': {'teacher.cls_token': torch.zeros(1, 1, 8)}}
    torch.save(bad, tmp_path / 'bad.pth')
    model = MODELS.build(tiny_sdae_cfg(teacher_init='pretrained',
                                       teacher_checkpoint=str(tmp_path / 'bad.pth')))
    with pytest.raises(KeyError, match='missing'):
        model.init_weights()


def test_non_finite_loss_stops_with_iteration_and_terms():
    from mmengine.logging import MessageHub
    model = _build()
    hub = MessageHub.get_instance('sdae_nan_test')
    hub.update_info('iter', 17)
    with pytest.raises(FloatingPointError, match=r'iteration 17 .*loss=nan'):
        model.parse_losses({'loss': torch.tensor(float('nan'))})


def test_flagship_config_builds_vit_b_and_steps_on_cpu(repo_root):
    import copy

    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(f'{repo_root}/configs/sdae_vit-b_300e.py')
    # every recipe value of the official README command
    assert cfg.model.backbone.drop_path_rate == 0.25
    assert cfg.model.num_teacher_tokens == 147 and cfg.model.num_folds == 3
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(2.666e-4 * 768 / 256)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.train_dataloader.batch_size == 96 and cfg.auto_scale_lr.base_batch_size == 768
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.param_scheduler[0].end == 60 and cfg.param_scheduler[1].T_max == 240
    assert all(s.convert_to_iter_based for s in cfg.param_scheduler)
    ema = cfg.custom_hooks[0]
    assert (ema.momentum, ema.end_momentum, ema.update_interval) == (0.96, 0.99, 'epoch')
    rrc = cfg.train_dataloader.dataset.pipeline[1]
    assert rrc.crop_ratio_range == (0.2, 1.0) and rrc.interpolation == 'bicubic'

    model = MODELS.build(copy.deepcopy(cfg.model))
    n_student = sum(p.numel() for p in model.backbone.parameters())
    n_teacher = sum(p.numel() for p in model.teacher.parameters())
    assert round(n_student / 1e6, 1) == 85.8 and round(n_teacher / 1e6, 1) == 85.8
    model.init_weights()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'  # no GradScaler on a CPU
    optim_cfg.pop('loss_scale')
    optim = build_optim_wrapper(model, optim_cfg)
    # torch's fused AdamW kernel (same update rule), the teacher left out
    assert all(group['fused'] for group in optim.optimizer.param_groups)
    optimized = {id(p) for group in optim.optimizer.param_groups for p in group['params']}
    assert optimized.isdisjoint(id(p) for p in model.teacher.parameters())
    g = torch.Generator().manual_seed(0)
    ids = torch.argsort(torch.rand(2, 196, generator=g), dim=1)
    data = dict(inputs=torch.randint(0, 255, (2, 3, 224, 224), dtype=torch.uint8),
                data_samples=mask_samples(ids, 49))
    before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    log_vars = model.train_step(data, optim)
    assert math.isfinite(log_vars['loss'].item())
    assert not torch.equal(before, model.backbone.layers[0].attn.qkv.weight)
