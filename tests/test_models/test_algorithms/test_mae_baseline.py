"""The MAE baseline: mmpretrain's own MAE in the sdae-mm runner."""
import copy
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from tests.helpers.models import TINY_ARCH, mask_samples
from tests.helpers.runs import train_tool

DEMO_CFG = 'configs/demo/mae_vit-demo-p8_1xb64-40e_digits.py'
RECIPE = 'configs/mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'


def test_mmpretrain_mae_equals_rc_mae_reconstruction_term():
    """With the same weights and the same permutation, mmpretrain's MAE loss equals the MAE
    part of our RC-MAE (our encoder, decoder and mask-from-pipeline path): the baseline and
    the methods share one definition of MAE."""
    torch.manual_seed(0)
    mae = MODELS.build(dict(
        type='MAE',
        backbone=dict(type='MAEViT', arch=TINY_ARCH, img_size=32, patch_size=8, mask_ratio=0.75),
        neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8, in_chans=3,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2'))))
    mae.init_weights()
    rc = MODELS.build(dict(
        type='RCMAE',
        backbone=dict(type='MIMVisionTransformer', arch=TINY_ARCH, img_size=32, patch_size=8),
        neck=dict(type='MIMDecoder', num_patches=16, in_channels=32, out_channels=192,
                  embed_dims=16, num_layers=1, num_heads=2),
        head=dict(type='RCMAEHead', norm_pix=True, patch_size=8)))
    # the encoders share mmpretrain's names; the decoder norm is `ln1` in mmpretrain
    rc.backbone.load_state_dict(mae.backbone.state_dict())
    rc.neck.load_state_dict({k.replace('ln1.', 'decoder_norm.') if k.startswith('ln1.') else k: v
                             for k, v in mae.neck.state_dict().items()})
    mae.eval()
    rc.eval()
    imgs = torch.randn(3, 3, 32, 32)
    torch.manual_seed(5)
    with torch.no_grad():
        ref = mae.loss(imgs, [DataSample() for _ in range(3)])['loss']
    torch.manual_seed(5)
    ids_shuffle = torch.argsort(torch.rand(3, 16), dim=1)  # MAEViT.random_masking's draw
    with torch.no_grad():
        ours = rc.loss(imgs, mask_samples(ids_shuffle, 4))['loss_rec']
    assert ref.item() > 0.1
    assert abs(ours.item() - ref.item()) < 1e-6


def test_demo_config_shares_inputs_with_the_other_demos(repo_root):
    cfgs = {name: Config.fromfile(osp.join(repo_root, f'configs/demo/{name}'))
            for name in ('mae_vit-demo-p8_1xb64-40e_digits.py',
                         'rc_mae_vit-demo-p8_1xb64-40e_digits.py',
                         'dbot_vit-demo-p8_1xb64-2stage-40e_digits.py')}
    first = next(iter(cfgs.values()))
    for cfg in cfgs.values():
        assert cfg.train_dataloader.dataset.pipeline == first.train_dataloader.dataset.pipeline
        assert cfg.train_dataloader.batch_size == first.train_dataloader.batch_size
        assert cfg.model.data_preprocessor == first.model.data_preprocessor
        assert cfg.randomness == first.randomness
        assert cfg.train_cfg.max_epochs == 40
        assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert first.model.type == 'MAE' and first.model.backbone.type == 'MAEViT'


def test_demo_config_trains_through_tools_train(repo_root, demo_data, tmp_path):
    work_dir = tmp_path / 'work'
    proc = train_tool(repo_root, DEMO_CFG, demo_data, work_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sd1 = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    sd2 = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)
    key = 'backbone.layers.0.attn.qkv.weight'
    assert not torch.equal(sd1['state_dict'][key], sd2['state_dict'][key])
    assert {k.split('.')[0] for k in sd2['state_dict']} == {'backbone', 'neck'}
    scalars = [json.loads(line) for line in open(next(work_dir.glob('*/vis_data/scalars.json')))]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)


def test_vit_b_recipe_builds_and_steps_on_cpu(repo_root):
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(repo_root, RECIPE))
    assert cfg.train_cfg.max_epochs == 1600
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.param_scheduler[0].end == 40 and cfg.param_scheduler[1].T_max == 1560
    assert cfg.model.head.norm_pix and cfg.model.backbone.mask_ratio == 0.75
    assert cfg.train_dataloader.batch_size == 512 and cfg.auto_scale_lr.base_batch_size == 4096
    short = Config.fromfile(osp.join(repo_root, RECIPE.replace('1600e', '800e')))
    assert short.train_cfg.max_epochs == 800 and short.param_scheduler[1].T_max == 760

    model = MODELS.build(copy.deepcopy(cfg.model))
    assert round(sum(p.numel() for p in model.backbone.parameters()) / 1e6, 1) == 85.8
    model.init_weights()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'  # no GradScaler on a CPU
    optim_cfg.pop('loss_scale')
    optim = build_optim_wrapper(model, optim_cfg)
    data = dict(inputs=torch.randint(0, 255, (2, 3, 224, 224), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(2)])
    before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    log_vars = model.train_step(data, optim)
    assert math.isfinite(log_vars['loss'].item())
    assert not torch.equal(before, model.backbone.layers[0].attn.qkv.weight)
