"""sdae_mm.engine.recipe: the effective recipe equals what training does, and the launch
check of tools/train.py."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook

from sdae_mm.engine.recipe import (RecipeError, check_launch, dataset_of, declared_launch,
                                   effective_recipe, iters_per_epoch, launch_differences,
                                   resolve_gpus)
from sdae_mm.engine.runner import build_runner

RCMAE_B = 'configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py'
SEG_B = 'configs/benchmarks/segmentation/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'
DET_1X = 'configs/benchmarks/detection/mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py'
VITDET = 'configs/benchmarks/detection/vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py'


def _cfg(repo_root, path):
    return Config.fromfile(osp.join(repo_root, path))


@pytest.mark.parametrize('path,launch', [
    ('configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py', (8, 1, 96, 1, 768)),
    (RCMAE_B, (8, 1, 256, 2, 4096)),
    ('configs/dbot/dbot_vit-huge-p14_32xb128-amp-coslr-1600e_in1k.py', (32, 4, 128, 1, 4096)),
    (DET_1X, (16, 2, 2, 1, 32)),
    (VITDET, (16, 2, 4, 1, 64)),
    ('configs/benchmarks/classification/vit-base-p16_linear-8xb2048-coslr-90e_in1k.py',
     (8, 1, 2048, 1, 16384)),
    # no NxbM in the name: auto_scale_lr.base_batch_size / (batch x accumulation)
    ('configs/sdae_vit-b_300e.py', (8, 1, 96, 1, 768)),
])
def test_declared_launch(repo_root, path, launch):
    d = declared_launch(_cfg(repo_root, path))
    assert (d['gpus'], d['nodes'], d['per_gpu'], d['accum'], d['total']) == launch


def test_gpus_and_nodes_resolution(repo_root):
    cfg = _cfg(repo_root, DET_1X)
    assert resolve_gpus(cfg)['gpus'] == 16 and resolve_gpus(cfg)['nodes'] == 2
    assert resolve_gpus(cfg, gpus=8)['gpus'] == 8 and resolve_gpus(cfg, gpus=8)['nodes'] == 1
    r = resolve_gpus(cfg, nodes=4)
    assert (r['gpus'], r['nodes']) == (32, 4)


@pytest.mark.parametrize('path,name,size', [
    (RCMAE_B, 'imagenet-1k', 1_281_167),
    (SEG_B, 'ade20k', 20_210),
    (DET_1X, 'coco-train2017', 117_266),
    ('configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py', None, None),
])
def test_dataset_sizes(repo_root, path, name, size):
    assert dataset_of(_cfg(repo_root, path)) == (name, size)


def test_iters_per_epoch_is_the_distributed_sampler_length():
    # torch DistributedSampler / mmengine DefaultSampler: ceil(N / world) per rank
    assert iters_per_epoch(1_281_167, 8, 256, drop_last=True) == 625
    assert iters_per_epoch(1_281_167, 32, 128, drop_last=True) == 312
    assert iters_per_epoch(1_281_167, 8, 96, drop_last=True) == 1668
    assert iters_per_epoch(10, 3, 2, drop_last=False) == 2
    assert iters_per_epoch(10, 3, 2, drop_last=False, infinite=True) == 5


# ----------------------------------------------------------------------------------------
class _Record(Hook):
    """lr used by every iteration and the teacher momentum of its EMA update."""

    priority = 'LOWEST'

    def __init__(self):
        self.lrs, self.momenta = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.param_groups[0]['lr'])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ema = [h for h in runner.hooks if type(h).__name__ == 'TeacherEMAHook']
        if ema and ema[0].update_interval == 'iter':
            self.momenta.append(ema[0].last_momentum)

    def after_train_epoch(self, runner):
        ema = [h for h in runner.hooks if type(h).__name__ == 'TeacherEMAHook']
        if ema and ema[0].update_interval == 'epoch':
            self.momenta.append(ema[0].last_momentum)


def _demo_cfg(repo_root, demo_data, work_dir, path, **changes):
    cfg = _cfg(repo_root, path)
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.dataset.data_root = osp.join(demo_data, 'cls')
    cfg.train_dataloader.dataset.indices = 16
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_epochs = 3
    cfg.param_scheduler[0].end = 1
    cfg.param_scheduler[1].begin = 1
    cfg.param_scheduler[1].T_max = 2
    cfg.param_scheduler[1].end = 3
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.log_level = 'WARNING'
    cfg.merge_from_dict(changes)
    return cfg


@pytest.mark.parametrize('path,hook', [
    # RC-MAE's official momentum (step within the epoch), with gradient accumulation
    ('configs/demo/rc_mae_vit-demo-p8_1xb64-40e_digits.py',
     dict(momentum=0.9, update_interval='iter', schedule_unit='epoch_step')),
    # SdAE's official per-epoch EMA
    ('configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py',
     dict(momentum=0.9, end_momentum=0.99, update_interval='epoch', schedule_unit='epoch')),
])
def test_recipe_lr_and_momentum_equal_a_training_run(repo_root, demo_data, tmp_path, path,
                                                     hook):
    changes = {'optim_wrapper.accumulative_counts': 2} if 'rc_mae' in path else {}
    cfg = _demo_cfg(repo_root, demo_data, tmp_path, path, **changes)
    cfg.custom_hooks[0].update(hook)
    recipe = effective_recipe(copy.deepcopy(cfg), gpus=1, dataset_size=16)
    runner = build_runner(cfg)
    record = _Record()
    runner.register_hook(record)
    runner.train()
    assert len(record.lrs) == recipe['schedule']['max_iters'] == 12
    assert recipe['schedule']['iters_per_epoch'] == 4
    for point in recipe['lr_at']:
        assert point['lr'] == pytest.approx(record.lrs[point['iter']], rel=1e-12, abs=0)
    assert [p['iter'] for p in recipe['lr_at']] == [0, 3, 6, 9, 11]
    tm = recipe['teacher_momentum']
    if hook['update_interval'] == 'iter':
        got = [record.momenta[p['iter']] for p in recipe['lr_at']]
        a, b = tm['within_epoch']
        assert (a, b) == (record.momenta[0], record.momenta[3])
    else:
        got = [record.momenta[p['iter'] // 4] for p in recipe['lr_at']]
    assert tm['at'] == pytest.approx(got, rel=0, abs=1e-15)
    assert tm['updates'] == len(record.momenta)


def test_dbot_stages_and_drop_path_per_block(repo_root):
    r = effective_recipe(_cfg(repo_root, 'configs/dbot/dbot_vit-base-p16_32xb128-amp-coslr-'
                                         '1600e_in1k.py'))
    assert r['stages']['switch_after_epochs'] == [800]
    assert [s['teacher_depth'] for s in r['stages']['stages']] == [12, 12]
    assert r['stages']['stages'][1]['iters'] == [800 * 312, 1600 * 312]
    # the lr restarts at the switch: 0 at the first iteration of stage 2
    assert r['lr_at'][2]['iter'] == 800 * 312 and r['lr_at'][2]['lr'] == 0
    dp = r['drop_path']
    assert len(dp['backbone.layers']) == 12 and dp['backbone.layers'][-1] == pytest.approx(0.2)
    assert dp['neck.decoder_blocks'][-1] == pytest.approx(0.2)
    assert set(dp['teacher.layers']) == {0.}
    assert r['clip_grad'] == {'max_norm': 3.0}
    assert r['device'] == 'meta'


# ----------------------------------------------------------------------------------------
def test_launch_check_says_what_changes(repo_root):
    cfg = _cfg(repo_root, RCMAE_B)
    assert launch_differences(cfg, 8) is None
    msg = launch_differences(cfg, 4)
    assert '4 GPU(s) x 256 per GPU x 2 accumulation = 2048' in msg
    assert 'x 0.5' in msg and '-> 0.0012' in msg
    cfg.auto_scale_lr.enable = False
    assert 'NOT scaled' in launch_differences(cfg, 4)
    # an iteration-based schedule covers fewer epochs on fewer GPUs
    seg = launch_differences(_cfg(repo_root, SEG_B), 4)
    assert '160,000 iterations cover 63.33 epochs' in seg and 'declared: 126.7 epochs' in seg
    det = launch_differences(_cfg(repo_root, VITDET), 8)
    assert 'cover 50.31 epochs' in det and 'declared: 100.6 epochs' in det


def test_check_launch_warns_or_refuses(repo_root):
    cfg = _cfg(repo_root, RCMAE_B)
    runner = type('R', (), dict(cfg=cfg, world_size=2))()
    assert 'this run' in check_launch(runner)
    with pytest.raises(RecipeError, match='Refusing to start'):
        check_launch(runner, strict=True)
    runner.world_size = 8
    assert check_launch(runner, strict=True) is None
