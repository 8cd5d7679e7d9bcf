import copy
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmpretrain.registry import MODELS

from tests.helpers.models import TINY_ARCH, mask_samples
from tests.helpers.reference import layer_norm, vit_block
from tests.helpers.runs import run_recording_losses as _run
from tests.helpers.runs import small_demo_cfg, train_tool

DEMO_CFG = 'configs/demo/rc_mae_vit-demo-p8_1xb64-40e_digits.py'
RECIPE = 'configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py'


def tiny_rc_mae_cfg(img_size=32, patch_size=8, gamma=1.0, **kwargs):
    """An RC-MAE with a 2-block, 32-wide ViT on ``img_size`` images."""
    cfg = dict(
        type='RCMAE',
        backbone=dict(type='MIMVisionTransformer', arch=TINY_ARCH, img_size=img_size,
                      patch_size=patch_size, drop_path_rate=0., init_mode='mae',
                      fixed_pos_embed=True),
        neck=dict(type='MIMDecoder', num_patches=(img_size // patch_size)**2, in_channels=32,
                  out_channels=patch_size**2 * 3, embed_dims=16, num_layers=1, num_heads=2),
        head=dict(type='RCMAEHead', norm_pix=True, patch_size=patch_size,
                  consistency_weight=gamma))
    cfg.update(kwargs)
    return cfg


def _build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_rc_mae_cfg(**kwargs))
    model.init_weights()
    return model.eval()


def _perturb(module, scale=0.05):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


# ----------------------------------------------------------------------------------------
# A direct re-implementation of the official RC-MAE equations (models_rc.py: random_masking
# with a given ids_shuffle, forward_encoder, forward_decoder, patchify, forward_loss;
# engine_pretrain.py: the consistency term and gamma), written with plain tensor ops over
# the state dict; it shares no code with the model.
def _official_mae_forward(imgs, ids_shuffle, sd, enc, dec, mask_ratio, depth, dec_depth,
                          heads=2, dec_heads=2):
    N, L = ids_shuffle.shape
    w = sd[f'{enc}patch_embed.projection.weight']
    x = F.conv2d(imgs, w, sd[f'{enc}patch_embed.projection.bias'], stride=w.shape[-1])
    x = x.flatten(2).transpose(1, 2) + sd[f'{enc}pos_embed'][:, 1:, :]
    len_keep = int(L * (1 - mask_ratio))
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    mask = torch.ones([N, L], dtype=x.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    cls = sd[f'{enc}cls_token'] + sd[f'{enc}pos_embed'][:, :1, :]
    x = torch.cat((cls.expand(N, -1, -1), x), dim=1)
    for i in range(depth):
        x = vit_block(x, sd, f'{enc}layers.{i}.', heads)
    x = layer_norm(x, sd, f'{enc}ln1')
    x = x @ sd[f'{dec}decoder_embed.weight'].T + sd[f'{dec}decoder_embed.bias']
    mask_tokens = sd[f'{dec}mask_token'].repeat(N, ids_restore.shape[1] + 1 - x.shape[1], 1)
    x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([x[:, :1, :], x_], dim=1) + sd[f'{dec}decoder_pos_embed']
    for i in range(dec_depth):
        x = vit_block(x, sd, f'{dec}decoder_blocks.{i}.', dec_heads)
    x = layer_norm(x, sd, f'{dec}decoder_norm')
    x = x @ sd[f'{dec}decoder_pred.weight'].T + sd[f'{dec}decoder_pred.bias']
    return x[:, 1:, :], mask


def _official_patchify(imgs, p):
    h = w = imgs.shape[2] // p
    x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
    x = torch.einsum('nchpwq->nhwpqc', x)
    return x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))


def official_rc_mae_loss(model, imgs, ids_shuffle, mask_ratio, gamma, patch_size):
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    depth, dec_depth = len(model.backbone.layers), len(model.neck.decoder_blocks)
    s_pred, s_mask = _official_mae_forward(imgs, ids_shuffle, sd, 'backbone.', 'neck.',
                                           mask_ratio, depth, dec_depth)
    t_pred, _ = _official_mae_forward(imgs, ids_shuffle, sd, 'teacher.', 'teacher_neck.',
                                      mask_ratio, depth, dec_depth)
    target = _official_patchify(imgs, patch_size)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1.0e-6)**0.5
    s_loss = ((s_pred - target)**2).mean(dim=-1)
    s_loss = (s_loss * s_mask).sum() / s_mask.sum()
    rec_cons_loss = (s_pred - t_pred.detach())**2
    rec_cons_loss = rec_cons_loss.mean(dim=-1)
    rec_cons_loss = (rec_cons_loss * s_mask).sum() / s_mask.sum()
    return s_loss + gamma * rec_cons_loss, s_loss, rec_cons_loss
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize('gamma', [1.0, 0.5])
def test_loss_equals_official_equations(gamma):
    model = _build(gamma=gamma).double()
    _perturb(model.teacher)
    _perturb(model.teacher_neck)
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(3, 3, 32, 32, generator=g, dtype=torch.float64)
    ids_shuffle = torch.argsort(torch.rand(3, 16, generator=g), dim=1)
    with torch.no_grad():
        ours = model.loss(imgs, mask_samples(ids_shuffle, 4))
        total, s_loss, rc = official_rc_mae_loss(model, imgs, ids_shuffle, 0.75, gamma, 8)
    assert rc.item() > 1e-3
    assert abs(ours['loss_rec'].item() - s_loss.item()) < 1e-6
    assert abs(ours['loss_rc'].item() - gamma * rc.item()) < 1e-6
    loss, log_vars = model.parse_losses(ours)
    assert abs(loss.item() - total.item()) < 1e-6
    assert set(log_vars) == {'loss', 'loss_rec', 'loss_rc'}


def test_teacher_is_whole_mae_copy_of_student_frozen_and_in_eval():
    model = _build()
    for student, teacher in ((model.backbone, model.teacher), (model.neck, model.teacher_neck)):
        sd = student.state_dict()
        for k, v in teacher.state_dict().items():
            assert torch.equal(v, sd[k]), k
    model.train()
    assert model.backbone.training and model.neck.training
    assert not model.teacher.training and not model.teacher_neck.training
    assert not any(p.requires_grad for p in model.teacher_neck.parameters())
    prefixes = {k.split('.')[0] for k in model.state_dict()}
    assert prefixes == {'backbone', 'neck', 'teacher', 'teacher_neck'}
    # at the start the consistency term is 0: the teacher equals the student
    ids = torch.argsort(torch.rand(2, 16), dim=1)
    losses = model.loss(torch.randn(2, 3, 32, 32), mask_samples(ids, 4))
    assert losses['loss_rc'].item() == pytest.approx(0., abs=1e-10)
    with pytest.raises(ValueError, match="'pretrained'"):
        MODELS.build(tiny_rc_mae_cfg(teacher_init='pretrained', teacher_checkpoint='x.pth'))
    bad = tiny_rc_mae_cfg()
    bad['teacher_neck'] = dict(bad['neck'], embed_dims=8)
    with pytest.raises(ValueError, match=r'teacher \(teacher_neck\) does not match'):
        MODELS.build(bad)


def test_ema_arithmetic_covers_encoder_and_decoder():
    model = _build()
    _perturb(model.backbone)
    _perturb(model.neck)
    teacher = {f'{n}.{k}': v.clone() for n in ('teacher', 'teacher_neck')
               for k, v in getattr(model, n).state_dict().items()}
    student = {k: v.clone() for k, v in model.state_dict().items()
               if k.startswith(('backbone.', 'neck.'))}
    m = 0.996
    model.update_teacher(m)
    new = model.state_dict()
    for key, t in teacher.items():
        src = student[key.replace('teacher_neck.', 'neck.').replace('teacher.', 'backbone.')]
        # the official loop: param_k.data.mul_(ms).add_((1 - ms) * param_q.detach().data)
        expected = t.clone().mul_(m).add_((1 - m) * src)
        assert torch.equal(new[key], expected), key
    assert not torch.equal(new['teacher_neck.decoder_pred.weight'],
                           teacher['teacher_neck.decoder_pred.weight'])


def official_cosine_scheduler(base, final, epochs, niter_per_ep):
    """run_pretrain.py's cosine_scheduler (no warm-up), re-typed for the test."""
    iters = np.arange(epochs * niter_per_ep)
    return final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))


class _RecordEMA(Hook):
    """Records the student after every optimizer step and the momentum the EMA used."""

    priority = 'HIGHEST'  # before TeacherEMAHook in after_train_iter

    def __init__(self):
        self.students = []
        self.initial = None

    def before_train(self, runner):
        m = runner.model
        self.initial = ({k: v.clone() for k, v in m.teacher.state_dict().items()},
                        {k: v.clone() for k, v in m.teacher_neck.state_dict().items()})

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        m = runner.model
        self.students.append(({k: v.detach().clone() for k, v in m.backbone.state_dict().items()},
                              {k: v.detach().clone() for k, v in m.neck.state_dict().items()},
                              runner.iter, batch_idx))


def _demo_cfg(repo_root, demo_data, work_dir, max_epochs, schedule_unit='iter'):
    cfg = small_demo_cfg(repo_root, DEMO_CFG, demo_data, work_dir, max_epochs)
    cfg.param_scheduler[0].end = 1
    cfg.param_scheduler[1].begin = 1
    cfg.param_scheduler[1].T_max = 2
    cfg.param_scheduler[1].end = 3
    cfg.custom_hooks[0].schedule_unit = schedule_unit
    cfg.custom_hooks[0].momentum = 0.9  # far from 1, so that the test sees the teacher move
    return cfg


@pytest.mark.parametrize('schedule_unit', ['iter', 'epoch_step'])
def test_teacher_follows_official_ema_schedule_in_training(repo_root, demo_data, tmp_path,
                                                           schedule_unit):
    """After each iteration t = m t + (1 - m) s, with m from a cosine over all iterations
    indexed by the global iteration (paper) or by the step within the epoch (official)."""
    record = _RecordEMA()
    cfg = _demo_cfg(repo_root, demo_data, tmp_path, 2, schedule_unit)
    runner, _ = _run(cfg, hooks=[record])
    schedule = official_cosine_scheduler(0.9, 1.0, 2, 2)
    teacher, teacher_neck = copy.deepcopy(record.initial)
    assert len(record.students) == 4
    used = []
    for backbone, neck, it, step in record.students:
        m = float(schedule[it if schedule_unit == 'iter' else step])
        used.append(m)
        for t, s in ((teacher, backbone), (teacher_neck, neck)):
            for k in t:
                t[k] = t[k] * m + (1 - m) * s[k]
    if schedule_unit == 'epoch_step':
        assert used[0] == used[2] and used[1] == used[3]  # restarts each epoch
    else:
        assert used[0] < used[1] < used[2] < used[3]
    for k, v in runner.model.teacher.state_dict().items():
        torch.testing.assert_close(v, teacher[k], rtol=0, atol=1e-6, msg=k)
    for k, v in runner.model.teacher_neck.state_dict().items():
        torch.testing.assert_close(v, teacher_neck[k], rtol=0, atol=1e-6, msg=k)
    assert not torch.allclose(runner.model.teacher.layers[0].attn.qkv.weight,
                              record.initial[0]['layers.0.attn.qkv.weight'])


def test_resume_mid_run_gives_same_next_losses_and_teacher(repo_root, demo_data, tmp_path):
    # the checkpoint written after epoch 1 of a 3-epoch run is the state of a run stopped there
    full, full_losses = _run(_demo_cfg(repo_root, demo_data, tmp_path / 'full', 3))
    ckpt = tmp_path / 'full' / 'epoch_1.pth'
    loaded = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert loaded['meta']['teacher_ema']['num_updates'] == 2
    assert any(k.startswith('teacher_neck.') for k in loaded['state_dict'])
    resumed, resumed_losses = _run(_demo_cfg(repo_root, demo_data, tmp_path / 'resumed', 3),
                                   resume_from=str(ckpt))
    assert [i for i, _ in resumed_losses] == [2, 3, 4, 5]
    expected = dict(full_losses)
    for it, loss in resumed_losses:
        assert loss == pytest.approx(expected[it], abs=1e-6), f'iteration {it}'
    full_sd, resumed_sd = full.model.state_dict(), resumed.model.state_dict()
    for k in full_sd:
        torch.testing.assert_close(resumed_sd[k], full_sd[k], rtol=0, atol=1e-6, msg=k)


def test_demo_config_trains_through_tools_train(repo_root, demo_data, tmp_path):
    work_dir = tmp_path / 'work'
    proc = train_tool(repo_root, DEMO_CFG, demo_data, work_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sd = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)['state_dict']
    # the teacher moved away from the student it started as, but stays close to it
    diff = (sd['teacher.layers.0.attn.qkv.weight'] - sd['backbone.layers.0.attn.qkv.weight'])
    assert 0 < diff.abs().max().item() < 0.1
    scalars = [json.loads(line) for line in open(next(work_dir.glob('*/vis_data/scalars.json')))]
    rows = [s for s in scalars if 'loss' in s]
    assert len(rows) == 4
    for row in rows:
        assert math.isfinite(row['loss'])
        assert row['loss'] == pytest.approx(row['loss_rec'] + row['loss_rc'], abs=1e-5)
        assert 0.996 <= row['teacher_momentum'] < 1.0


def test_recipes_and_vit_b_step_on_cpu(repo_root):
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(repo_root, RECIPE))
    # every value of scripts/pretrain_rc_mae_vit_base_1600ep.sh and run_pretrain.py
    assert cfg.train_cfg.max_epochs == 1600
    assert cfg.train_dataloader.batch_size == 256
    assert cfg.optim_wrapper.accumulative_counts == 2
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert 'clip_grad' not in cfg.optim_wrapper
    assert cfg.param_scheduler[0].end == 40 and cfg.param_scheduler[1].T_max == 1560
    assert cfg.model.head.norm_pix and cfg.model.head.consistency_weight == 1.0
    ema = cfg.custom_hooks[0]
    # the official run's momentum: indexed by the step within the epoch
    assert (ema.momentum, ema.end_momentum, ema.update_interval, ema.schedule_unit) == (
        0.996, 1.0, 'iter', 'epoch_step')
    assert cfg.auto_scale_lr.base_batch_size == 4096
    short = Config.fromfile(osp.join(repo_root, RECIPE.replace('1600e', '800e')))
    assert short.train_cfg.max_epochs == 800 and short.param_scheduler[1].T_max == 760
    large = Config.fromfile(osp.join(repo_root, RECIPE.replace('base', 'large')))
    assert large.model.backbone.arch == 'l' and large.model.neck.in_channels == 1024
    small = Config.fromfile(osp.join(
        repo_root, 'configs/rc_mae/rc_mae_vit-small-p16_8xb512-amp-coslr-1600e_in1k.py'))
    assert small.model.backbone.arch == 'deit-s' and small.model.neck.embed_dims == 256
    assert small.model.neck.num_layers == 4 and small.model.neck.num_heads == 8
    assert small.train_dataloader.batch_size == 512
    assert small.optim_wrapper.accumulative_counts == 1
    small_model = MODELS.build(copy.deepcopy(small.model))
    assert small_model.teacher.embed_dims == 384
    assert len(small_model.teacher_neck.decoder_blocks) == 4
    assert round(sum(p.numel() for p in small_model.backbone.parameters()) / 1e6, 1) == 21.7

    model = MODELS.build(copy.deepcopy(cfg.model))
    assert round(sum(p.numel() for p in model.backbone.parameters()) / 1e6, 1) == 85.8
    model.init_weights()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'  # no GradScaler on a CPU
    optim_cfg.pop('loss_scale')
    optim_cfg.accumulative_counts = 1
    optim = build_optim_wrapper(model, optim_cfg)
    # timm's add_weight_decay: decay exactly for the parameters with ndim > 1 (cls and mask
    # tokens included), frozen ones (position embeddings, teacher) not in the optimizer
    decayed = {id(p) for g in optim.param_groups if g['weight_decay'] > 0 for p in g['params']}
    in_optim = {id(p) for g in optim.param_groups for p in g['params']}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert id(p) not in in_optim, name
        else:
            assert (id(p) in decayed) == (p.ndim > 1 and not name.endswith('.bias')), name
    ids = torch.argsort(torch.rand(2, 196, generator=torch.Generator().manual_seed(0)), dim=1)
    data = dict(inputs=torch.randint(0, 255, (2, 3, 224, 224), dtype=torch.uint8),
                data_samples=mask_samples(ids, 49))
    before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    log_vars = model.train_step(data, optim)
    assert math.isfinite(log_vars['loss'].item())
    assert log_vars['loss_rc'].item() == pytest.approx(0., abs=1e-8)  # teacher = student
    assert not torch.equal(before, model.backbone.layers[0].attn.qkv.weight)
    assert torch.equal(before, model.teacher.layers[0].attn.qkv.weight)
