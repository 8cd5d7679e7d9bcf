import copy
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS

from sdae_mm.models.utils import sincos_pos_embed
from tests.helpers.models import TINY_ARCH, mask_samples
from tests.helpers.reference import layer_norm, patch_embed, vit_block
from tests.helpers.runs import run_recording_losses as _run
from tests.helpers.runs import small_demo_cfg, train_tool

DEMO_CFG = 'configs/demo/dbot_vit-demo-p8_1xb64-2stage-40e_digits.py'
RECIPE = 'configs/dbot/dbot_vit-base-p16_32xb128-amp-coslr-1600e_in1k.py'


def tiny_dbot_cfg(img_size=32, patch_size=8, **kwargs):
    """A dBOT with a 2-block, 32-wide ViT on ``img_size`` images."""
    vit = dict(type='MIMVisionTransformer', arch=TINY_ARCH, img_size=img_size,
               patch_size=patch_size, init_mode='mae', fixed_pos_embed=True)
    cfg = dict(
        type='DBOT',
        backbone=dict(vit, drop_path_rate=0.),
        neck=dict(type='MIMDecoder', num_patches=(img_size // patch_size)**2, in_channels=32,
                  out_channels=32, embed_dims=16, num_layers=1, num_heads=2),
        head=dict(type='MaskedFeatureDistillHead',
                  loss=dict(type='MaskedSmoothL1Loss', beta=2.0)),
        teacher=dict(vit, drop_path_rate=0.))
    cfg.update(kwargs)
    return cfg


def _build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_dbot_cfg(**kwargs))
    model.init_weights()
    # make the student differ from the teacher (a copy of its initialisation)
    with torch.no_grad():
        for p in list(model.backbone.parameters()) + list(model.neck.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


# ----------------------------------------------------------------------------------------
# A direct re-implementation of the official dBOT equations (models_mae.py: random_masking
# fed a fixed permutation, forward_encoder, forward_decoder, forward_teacher, forward_loss),
# written with plain tensor ops over the state dict; it shares no code with the model.
def official_dbot_loss(model, imgs, ids_shuffle, mask_ratio, teacher_depth, tlayernorm,
                       heads=2, dec_heads=2):
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    N, L = ids_shuffle.shape
    # forward_encoder
    x = patch_embed(imgs, sd, 'backbone.') + sd['backbone.pos_embed'][:, 1:, :]
    len_keep = int(L * (1 - mask_ratio))
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    mask = torch.ones([N, L], dtype=x.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    cls = sd['backbone.cls_token'] + sd['backbone.pos_embed'][:, :1, :]
    x = torch.cat((cls.expand(N, -1, -1), x), dim=1)
    for i in range(len(model.backbone.layers)):
        x = vit_block(x, sd, f'backbone.layers.{i}.', heads)
    x = layer_norm(x, sd, 'backbone.ln1')
    mask = torch.cat([torch.ones(N, 1, dtype=mask.dtype), mask], dim=1)
    # forward_decoder (the cls position is kept)
    x = x @ sd['neck.decoder_embed.weight'].T + sd['neck.decoder_embed.bias']
    mask_tokens = sd['neck.mask_token'].repeat(N, ids_restore.shape[1] + 1 - x.shape[1], 1)
    x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([x[:, :1, :], x_], dim=1) + sd['neck.decoder_pos_embed']
    for i in range(len(model.neck.decoder_blocks)):
        x = vit_block(x, sd, f'neck.decoder_blocks.{i}.', dec_heads)
    x = layer_norm(x, sd, 'neck.decoder_norm')
    pred = x @ sd['neck.decoder_pred.weight'].T + sd['neck.decoder_pred.bias']
    # forward_teacher on the whole image, `teacher_depth` blocks, norm only if tlayernorm
    t = patch_embed(imgs, sd, 'teacher.') + sd['teacher.pos_embed'][:, 1:, :]
    cls = sd['teacher.cls_token'] + sd['teacher.pos_embed'][:, :1, :]
    t = torch.cat((cls.expand(N, -1, -1), t), dim=1)
    for i in range(teacher_depth):
        t = vit_block(t, sd, f'teacher.layers.{i}.', heads)
    if tlayernorm:
        t = layer_norm(t, sd, 'teacher.ln1')
    # forward_loss with norm_feature_loss
    mean1 = t.mean(dim=-1, keepdim=True)
    var1 = t.var(dim=-1, keepdim=True)
    target = (t - mean1) / (var1 + 1.e-6)**.5
    loss = torch.nn.SmoothL1Loss(beta=2.0, reduction='none')(pred, target)
    loss = loss.mean(dim=-1)
    return (loss * mask).sum() / mask.sum()
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize('teacher_depths,stage,final_norm,expected_depth',
                         [((1, 2), 0, False, 1), ((1, 2), 1, False, 2), ((0, 2), 0, False, 0),
                          (None, 0, True, 2)])
def test_loss_equals_official_equations(teacher_depths, stage, final_norm, expected_depth):
    model = _build(teacher_depths=teacher_depths, teacher_final_norm=final_norm).double()
    # a teacher that differs from the student, and from its own start
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.stage.fill_(stage)
    assert model.teacher_depth() == expected_depth
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(3, 3, 32, 32, generator=g, dtype=torch.float64)
    ids_shuffle = torch.argsort(torch.rand(3, 16, generator=g), dim=1)
    with torch.no_grad():
        ours = model.loss(imgs, mask_samples(ids_shuffle, 4))['loss']
        ref = official_dbot_loss(model, imgs, ids_shuffle, 0.75, expected_depth, final_norm)
    assert ref.item() > 1e-3
    assert abs(ours.item() - ref.item()) < 1e-6


def test_loss_counts_cls_and_masked_positions_only():
    """Changing the prediction at a visible patch leaves the loss unchanged; at the cls
    position it changes it (official mask with a leading 1), unless loss_on_cls=False."""
    head = MODELS.build(dict(type='MaskedFeatureDistillHead',
                             loss=dict(type='MaskedSmoothL1Loss', beta=2.0)))
    pred, target = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[1., 1., 0., 1., 0.], [1., 0., 1., 0., 1.]])
    base = head.loss(pred, target, mask)
    moved = pred.clone()
    moved[0, 2] += 3.  # a visible patch
    assert head.loss(moved, target, mask).item() == pytest.approx(base.item(), abs=1e-7)
    moved[0, 0] += 3.  # the cls position
    assert head.loss(moved, target, mask).item() != pytest.approx(base.item(), abs=1e-4)
    # the mean is over all counted positions of the batch, not per sample
    t = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_pos = F.smooth_l1_loss(pred, t, beta=2.0, reduction='none').mean(-1)
    assert base.item() == pytest.approx((per_pos * mask).sum().item() / 6, abs=1e-6)

    model = _build(loss_on_cls=False)
    ids = torch.argsort(torch.rand(2, 16), dim=1)
    x = torch.randn(2, 3, 32, 32)
    captured = {}
    orig = model.head.loss

    def spy(pred, target, mask):
        captured['mask'] = mask
        return orig(pred, target, mask)

    model.head.loss = spy
    model.loss(x, mask_samples(ids, 4))
    assert captured['mask'].shape == (2, 17)
    assert captured['mask'][:, 0].sum() == 0 and captured['mask'].sum() == 2 * 12


def test_stage_switch_teacher_is_previous_student_and_student_reinitialised():
    model = _build(teacher_depths=(1, 2))
    assert model.current_stage == 0 and model.teacher_depth() == 1
    before = copy.deepcopy(model)
    student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    torch.manual_seed(7)
    model.start_next_stage()
    assert model.current_stage == 1 and model.teacher_depth() == 2
    # the teacher holds exactly the pre-switch student
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, student[k]), k
    # the student is re-initialised as the official initialize_weights() does, from the
    # same RNG state: everything but the patch-embedding conv bias, which keeps its
    # trained value (initialize_weights only touches Linear, LayerNorm, the conv weight,
    # cls/mask tokens and the fixed position tables)
    torch.manual_seed(7)
    before.backbone.reinitialize()
    before.neck.init_weights()
    for name in ('backbone', 'neck'):
        for k, v in getattr(model, name).state_dict().items():
            assert torch.equal(v, getattr(before, name).state_dict()[k]), f'{name}.{k}'
    assert torch.equal(model.backbone.patch_embed.projection.bias,
                       student['patch_embed.projection.bias'])
    for key in ('layers.0.attn.qkv.weight', 'layers.0.attn.qkv.bias', 'cls_token',
                'patch_embed.projection.weight', 'ln1.weight'):
        assert not torch.equal(model.backbone.state_dict()[key], student[key]), key
    # the rest is MAE's initialisation: zero biases, unit norms, the sine-cosine table
    assert model.backbone.layers[0].attn.qkv.bias.abs().max() == 0
    assert torch.equal(model.backbone.ln1.weight, torch.ones_like(model.backbone.ln1.weight))
    torch.testing.assert_close(model.backbone.pos_embed, sincos_pos_embed(4, 32), rtol=0,
                               atol=0)
    assert not model.teacher.training and not any(p.requires_grad
                                                  for p in model.teacher.parameters())


def test_stage_is_in_the_state_dict_and_restores_the_teacher_depth():
    model = _build(teacher_depths=(0, 2))
    model.start_next_stage()
    sd = model.state_dict()
    assert sd['stage'].item() == 1
    fresh = MODELS.build(tiny_dbot_cfg(teacher_depths=(0, 2)))
    assert fresh.teacher_depth() == 0
    fresh.load_state_dict(sd)
    assert fresh.current_stage == 1 and fresh.teacher_depth() == 2
    # contract: student under backbone./neck., teacher under teacher.
    assert {k.split('.')[0] for k in sd} == {'backbone', 'neck', 'teacher', 'stage'}


def test_bad_teacher_depths_are_rejected():
    with pytest.raises(ValueError, match=r'teacher_depths \[1, 3\].*\[0, 2\]'):
        MODELS.build(tiny_dbot_cfg(teacher_depths=(1, 3)))
    with pytest.raises(ValueError, match='at least one stage'):
        MODELS.build(tiny_dbot_cfg(teacher_depths=()))


# ---------------------------------------------------------------------- runner / recipes
def _demo_cfg(repo_root, demo_data, work_dir, max_epochs, stage_epochs=(0, 2, 4)):
    # one iteration of 8 images per epoch
    cfg = small_demo_cfg(repo_root, DEMO_CFG, demo_data, work_dir, max_epochs, images=8)
    cfg.param_scheduler[0].stage_epochs = list(stage_epochs)
    cfg.param_scheduler[0].warmup_epochs = 0.5
    cfg.custom_hooks[0].stage_epochs = list(stage_epochs)
    cfg.model.teacher_depths = (3, 6)
    return cfg


def test_resume_mid_stage_gives_same_next_losses_and_teacher(repo_root, demo_data, tmp_path):
    # two stages of 2 epochs (1 iteration each); the switch happens after epoch 2
    # a checkpoint written after epoch e of the 4-epoch run is the state of a run stopped there
    full, full_losses = _run(_demo_cfg(repo_root, demo_data, tmp_path / 'full', 4))
    assert full.model.current_stage == 1 and full.model.teacher_depth() == 6
    ckpt = torch.load(tmp_path / 'full' / 'epoch_3.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['state_dict']['stage'].item() == 1
    assert ckpt['meta']['dbot'] == dict(stage=1, stage_epochs=[0, 2, 4],
                                        reset_optimizer=False)
    for resume_epoch, first_iter in ((3, 3), (2, 2)):  # mid-stage, and right at the boundary
        resumed, resumed_losses = _run(
            _demo_cfg(repo_root, demo_data, tmp_path / f'resumed{resume_epoch}', 4),
            resume_from=str(tmp_path / 'full' / f'epoch_{resume_epoch}.pth'))
        assert [i for i, _ in resumed_losses] == list(range(first_iter, 4))
        expected = dict(full_losses)
        for it, loss in resumed_losses:
            assert loss == pytest.approx(expected[it], abs=1e-6), f'iteration {it}'
        full_sd, resumed_sd = full.model.state_dict(), resumed.model.state_dict()
        for k in full_sd:
            torch.testing.assert_close(resumed_sd[k], full_sd[k], rtol=0, atol=1e-6, msg=k)


def test_resume_with_other_stage_schedule_is_rejected(repo_root, demo_data, tmp_path):
    _run(_demo_cfg(repo_root, demo_data, tmp_path / 'part', 2, stage_epochs=(0, 1, 2)))
    cfg = _demo_cfg(repo_root, demo_data, tmp_path / 'other', 4, stage_epochs=(0, 2, 4))
    with pytest.raises(ValueError, match='model is in dBOT stage 1 but epoch 1 belongs to '
                                         'stage 0'):
        _run(cfg, resume_from=str(tmp_path / 'part' / 'epoch_1.pth'))


def test_demo_config_trains_through_tools_train(repo_root, demo_data, tmp_path):
    """Two epochs with a stage switch after the first, through tools/train.py."""
    work_dir = tmp_path / 'work'
    proc = train_tool(repo_root, DEMO_CFG, demo_data, work_dir,
                      'param_scheduler.0.stage_epochs=[0,1,2]',
                      'param_scheduler.0.warmup_epochs=0', 'custom_hooks.0.stage_epochs=[0,1,2]')
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)
    sd = ckpt['state_dict']
    assert sd['stage'].item() == 1
    ckpt1 = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    # epoch 1 ended with the switch: a re-initialised student and a new teacher, which
    # nothing changes during stage 1
    key = 'layers.0.attn.qkv.weight'
    assert ckpt1['state_dict']['stage'].item() == 1
    assert not torch.equal(ckpt1['state_dict'][f'teacher.{key}'],
                           ckpt1['state_dict'][f'backbone.{key}'])
    for k, v in sd.items():
        if k.startswith('teacher.'):
            assert torch.equal(v, ckpt1['state_dict'][k]), k
    assert not torch.equal(sd[f'backbone.{key}'], ckpt1['state_dict'][f'backbone.{key}'])
    scalars = [json.loads(line) for line in open(next(work_dir.glob('*/vis_data/scalars.json')))]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)


def test_vit_b_recipe_builds_and_steps_on_cpu(repo_root):
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(repo_root, RECIPE))
    # every value of the official PRETRAIN.md command
    assert cfg.train_cfg.max_epochs == 1600
    assert cfg.custom_hooks[0].stage_epochs == [0, 800, 1600]
    assert not cfg.custom_hooks[0].reset_optimizer
    sched = cfg.param_scheduler[0]
    assert (sched.type, sched.stage_epochs, sched.warmup_epochs, sched.per_stage) == (
        'StagewiseCosineLR', [0, 800, 1600], 40, True)
    assert cfg.model.teacher_depths == (12, 12) and not cfg.model.teacher_final_norm
    assert cfg.model.backbone.drop_path_rate == 0.2 and cfg.model.teacher.drop_path_rate == 0
    assert cfg.model.head.loss.beta == 2.0 and cfg.model.head.norm_target
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert cfg.optim_wrapper.clip_grad.max_norm == 3.0
    assert cfg.train_dataloader.batch_size == 128 and cfg.auto_scale_lr.base_batch_size == 4096
    assert cfg.train_dataloader.dataset.pipeline[3].mask_ratio == 0.75
    large = Config.fromfile(osp.join(repo_root, RECIPE.replace('base-p16', 'large-p16')))
    assert large.model.teacher_depths == (0, 24) and large.optim_wrapper.clip_grad is None
    assert large.model.backbone.drop_path_rate == 0.2 and large.model.neck.out_channels == 1024
    huge = Config.fromfile(osp.join(repo_root, RECIPE.replace('base-p16', 'huge-p14')))
    assert huge.model.teacher_depths == (0, 32) and huge.model.backbone.drop_path_rate == 0.3
    assert huge.model.neck.num_patches == 256
    assert huge.train_dataloader.dataset.pipeline[3].patch_size == 14

    model = MODELS.build(copy.deepcopy(cfg.model))
    assert round(sum(p.numel() for p in model.backbone.parameters()) / 1e6, 1) == 85.8
    model.init_weights()
    for k, v in model.teacher.state_dict().items():  # official: teacher = student copy
        assert torch.equal(v, model.backbone.state_dict()[k]), k
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'  # no GradScaler on a CPU
    optim_cfg.pop('loss_scale')
    optim = build_optim_wrapper(model, optim_cfg)
    ids = torch.argsort(torch.rand(2, 196, generator=torch.Generator().manual_seed(0)), dim=1)
    data = dict(inputs=torch.randint(0, 255, (2, 3, 224, 224), dtype=torch.uint8),
                data_samples=mask_samples(ids, 49))
    before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    log_vars = model.train_step(data, optim)
    assert math.isfinite(log_vars['loss'].item())
    assert not torch.equal(before, model.backbone.layers[0].attn.qkv.weight)
    assert torch.equal(before, model.teacher.layers[0].attn.qkv.weight)
