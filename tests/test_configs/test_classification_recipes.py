"""Effective recipe of every ImageNet transfer config on the GPU count its name declares,
through the objects a run uses (model, optim wrapper, the Runner's lr scaling and
schedulers), against the official runs (docs/fidelity.md, "Effective recipes: transfer
protocols")."""
import math
import re
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import Runner

from tests.helpers.builders import build_from_config

CLS = 'configs/benchmarks/classification'
# total batch, lr (blr * total / 256), warm-up and total epochs, min lr, drop path,
# layer decay, gradient clipping
OFFICIAL = {
    # SdAE README + main_finetune.py defaults (= MAE FINETUNE.md ViT-B)
    'vit-base-p16_8xb128-coslr-100e_in1k.py':
    dict(batch=1024, lr=2e-3, warmup=5, epochs=100, min_lr=1e-6, drop_path=0.1, decay=0.65),
    # FINETUNE.md of SdAE (MAE's ViT-L)
    'vit-large-p16_8xb128-coslr-50e_in1k.py':
    dict(batch=1024, lr=4e-3, warmup=5, epochs=50, min_lr=1e-6, drop_path=0.2, decay=0.75),
    # dBOT DOWNSTREAM.md + run.sh imagenet_finetune, 4 nodes x 8 GPUs
    'dbot_vit-base-p16_8xb128-coslr-100e_in1k.py':
    dict(batch=1024, lr=1.2e-3, warmup=5, epochs=100, min_lr=1e-6, drop_path=0.1,
         decay=0.65),
    'dbot_vit-large-p16_8xb128-coslr-50e_in1k.py':
    dict(batch=1024, lr=1.2e-3, warmup=5, epochs=50, min_lr=1e-6, drop_path=0.25,
         decay=0.75, clip_grad=1.0),
    'dbot_vit-huge-p14_8xb128-coslr-50e_in1k.py':
    dict(batch=1024, lr=1.2e-3, warmup=5, epochs=50, min_lr=1e-6, drop_path=0.3,
         decay=0.75),
    # RC-MAE scripts/finetune_rc_mae_{large,small}.sh + run_finetune.py defaults
    'rc_mae_vit-large-p16_8xb128-coslr-100e_in1k.py':
    dict(batch=1024, lr=2e-3, warmup=5, epochs=100, min_lr=1e-6, drop_path=0.2, decay=0.65),
    'rc_mae_vit-small-p16_8xb128-coslr-300e_in1k.py':
    dict(batch=1024, lr=2e-3, warmup=5, epochs=300, min_lr=1e-6, drop_path=0.1, decay=0.75),
    # SdAE main_linprobe.py defaults; MAE LINPROBE.md / RC-MAE linear_rc_mae_vit_base.sh
    'vit-base-p16_linear-8xb512-coslr-90e_in1k.py':
    dict(batch=4096, lr=1.6, warmup=10, epochs=90, min_lr=0., drop_path=0.),
    'vit-base-p16_linear-8xb2048-coslr-90e_in1k.py':
    dict(batch=16384, lr=6.4, warmup=10, epochs=90, min_lr=0., drop_path=0.),
}


def official_lr(base, it, epoch_length, exp):
    """util/lr_sched.py adjust_learning_rate of MAE/SdAE/dBOT/RC-MAE at iteration ``it``
    (the per-group lr scale and min lr included), written out."""
    epoch = it / epoch_length
    if epoch < exp['warmup']:
        return base * epoch / exp['warmup']
    min_lr = exp['min_lr'] * base / exp['lr']
    return min_lr + (base - min_lr) * 0.5 * (1. + math.cos(
        math.pi * (epoch - exp['warmup']) / (exp['epochs'] - exp['warmup'])))


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_effective_recipe_on_the_declared_gpus(name):
    exp = OFFICIAL[name]
    cfg, model, wrapper = build_from_config(f'{CLS}/{name}', 'mmpretrain')
    gpus, per_gpu = map(int, re.search(r'(\d+)xb(\d+)', name).groups())
    assert cfg.train_dataloader.batch_size == per_gpu
    assert gpus * per_gpu * wrapper._accumulative_counts == exp['batch']
    # the Runner's linear scaling (mmengine Runner.scale_lr) on the declared world size
    runner = SimpleNamespace(world_size=gpus, _train_dataloader=cfg.train_dataloader,
                             param_schedulers=None,
                             logger=SimpleNamespace(info=lambda msg: None))
    Runner.scale_lr(runner, wrapper, cfg.auto_scale_lr)
    groups = wrapper.optimizer.param_groups
    assert max(g['lr'] for g in groups) == pytest.approx(exp['lr'], rel=1e-12)
    if 'decay' in exp:
        assert cfg.optim_wrapper.paramwise_cfg.no_decay_rule == 'mae'
        depth = len(model.backbone.layers)
        assert min(g['lr'] for g in groups) == pytest.approx(
            exp['lr'] * exp['decay']**(depth + 1), rel=1e-12)
        drop = [layer.ffn.dropout_layer.drop_prob for layer in model.backbone.layers]
        assert drop == pytest.approx(torch.linspace(0, exp['drop_path'], depth).tolist())
    else:  # linear probe: the encoder is frozen, only the head is trained
        assert {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad} \
            == {'head'}
    assert (getattr(wrapper, 'clip_grad_kwargs', None) or {}).get('max_norm') == \
        exp.get('clip_grad')
    assert cfg.train_cfg.max_epochs == exp['epochs']

    # the schedulers, built and stepped per iteration as the Runner does
    epoch_length = 8
    schedulers = [
        PARAM_SCHEDULERS.build(
            s, default_args=dict(optimizer=wrapper, epoch_length=epoch_length))
        for s in cfg.param_scheduler
    ]
    base = [g['initial_lr'] for g in groups]
    warmup_iters = exp['warmup'] * epoch_length
    for it in range(exp['epochs'] * epoch_length):
        if it % 3 == 0 or it in (warmup_iters - 1, warmup_iters):
            for group, lr0 in zip(groups, base):
                expected = official_lr(lr0, it, epoch_length, exp)
                if it < warmup_iters:
                    # mmengine's LinearLR ends one iteration before the official warm-up:
                    # lr * it / (W - 1) instead of lr * it / W (docs/fidelity.md); it starts
                    # at lr * 1e-9 instead of 0
                    assert group['lr'] == pytest.approx(
                        expected * warmup_iters / (warmup_iters - 1), rel=1e-6,
                        abs=2e-9 * lr0), it
                else:
                    assert group['lr'] == pytest.approx(expected, rel=1e-6), it
        for s in schedulers:
            s.step()
