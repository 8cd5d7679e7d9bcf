"""tools/test.py: --show-dir/--show through the config's visualization hook (mmpretrain,
mmseg and mmdet style) and --json metrics."""
import argparse
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.helpers.tools import load_tool

CLS_CFG = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'
SEG_CFG = 'configs/demo/upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py'
DET_CFG = 'configs/demo/mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py'


def _tool(repo_root):
    return load_tool('tools/test.py')


def _args(**kw):
    base = dict(show=False, show_dir=None, wait_time=2, interval=1)
    base.update(kw)
    return argparse.Namespace(**base)


def test_show_dir_per_library(repo_root, tmp_path):
    tool = _tool(repo_root)
    show_dir = str(tmp_path / 'vis')
    cfg = tool.trigger_visualization_hook(Config.fromfile(osp.join(repo_root, CLS_CFG)),
                                          _args(show_dir=show_dir))
    hook = cfg.default_hooks.visualization
    assert hook.enable and hook.out_dir == show_dir and hook.interval == 1
    cfg = tool.trigger_visualization_hook(Config.fromfile(osp.join(repo_root, SEG_CFG)),
                                          _args(show_dir=show_dir, show=True))
    assert cfg.default_hooks.visualization.draw and cfg.default_hooks.visualization.show
    assert cfg.visualizer.save_dir == show_dir
    cfg = tool.trigger_visualization_hook(Config.fromfile(osp.join(repo_root, DET_CFG)),
                                          _args(show_dir='vis'))
    hook = cfg.default_hooks.visualization
    assert hook.draw and hook.test_out_dir == osp.abspath('vis')  # absolute: lands there
    cfg = Config(dict(default_hooks=dict()))
    with pytest.raises(KeyError, match='default_hooks.visualization'):
        tool.trigger_visualization_hook(cfg, _args(show=True))


def test_show_dir_and_json_end_to_end(repo_root, demo_data, tmp_path):
    """A randomly initialised demo classifier on 8 test images: pictures and metrics."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, CLS_CFG))
    init_default_scope('mmpretrain')
    cfg.model.backbone.init_cfg = None
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)
    show_dir, metrics = tmp_path / 'vis', tmp_path / 'out' / 'metrics.json'
    tool = _tool(repo_root)
    tool.main([osp.join(repo_root, CLS_CFG), str(ckpt), '--work-dir', str(tmp_path / 'w'),
               '--show-dir', str(show_dir), '--json', str(metrics), '--cfg-options',
               f'test_dataloader.dataset.data_root={demo_data}/cls',
               'test_dataloader.dataset.indices=8', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False', 'model.backbone.init_cfg=None'])
    assert len(list(show_dir.glob('*.png'))) == 8
    result = json.loads(metrics.read_text())
    assert 0 <= result['accuracy/top1'] <= 100
