"""The demo detection configs train and evaluate (bbox and segm AP) on the demo scenes."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.models import VisionTransformer

from sdae_mm.checkpoint import convert_checkpoint_dict
from tests.helpers.models import DEMO_ARCH

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmdet'

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMOS = sorted(glob.glob(osp.join(ROOT, 'configs/demo/*mask-rcnn*.py')))


@pytest.fixture(scope='module')
def demo_ckpt(tmp_path_factory):
    """A converted (--to mmdet) teacher of a fabricated demo SdAE checkpoint (64 px)."""
    torch.manual_seed(0)
    vits = [VisionTransformer(arch=DEMO_ARCH, img_size=64, patch_size=8) for _ in range(2)]
    state = {'backbone.' + k: v for k, v in vits[0].state_dict().items()}
    state.update({'teacher.' + k: v for k, v in vits[1].state_dict().items()})
    converted, meta, _ = convert_checkpoint_dict({'state_dict': state}, 'mmdet',
                                                 branch='teacher', algo='sdae')
    path = str(tmp_path_factory.mktemp('det_ckpt') / 'backbone_mmdet.pth')
    torch.save({'state_dict': converted, 'meta': meta}, path)
    return path, vits[1].state_dict()


def _tiny_run_cfg(path, data_root, ckpt, work_dir, iters=2, num_val=4):
    cfg = Config.fromfile(path)
    cfg.work_dir = work_dir
    cfg.model.backbone.checkpoint = ckpt
    scenes = osp.join(data_root, 'scenes') + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = scenes
        loader.batch_size = 2
    cfg.val_dataloader.dataset.indices = num_val
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = scenes + 'annotations/instances_val.json'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # evaluated below, once
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters + 1)
    cfg.default_hooks.logger.interval = 1
    cfg.visualizer.vis_backends = []
    cfg.log_level = 'WARNING'
    return cfg


@pytest.mark.parametrize('path', DEMOS, ids=osp.basename)
def test_demo_trains_and_evaluates_box_and_mask_ap(path, demo_data, demo_ckpt, tmp_path):
    ckpt, teacher = demo_ckpt
    cfg = _tiny_run_cfg(path, demo_data, ckpt, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    model = runner.model
    head_before = model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    runner.train()

    # the backbone loaded the converted teacher and reports what it initialised itself
    report = model.backbone.init_report
    assert report['meta']['branch'] == 'teacher'
    if type(model.backbone).__name__ == 'ViTDet':
        assert report['initialised'] == sorted(
            f'layers.{i}.attn.rel_pos_{a}' for i in range(6) for a in 'hw')
    else:
        assert report['initialised'] == ['fpn1.bias', 'fpn1.weight']
    # the training iterations updated the heads with finite losses
    assert not torch.equal(head_before, model.roi_head.bbox_head.fc_cls.weight)
    for v in runner.message_hub.log_scalars.values():
        assert torch.isfinite(torch.as_tensor(v.current()))
    assert 'train/loss_mask' in runner.message_hub.log_scalars

    metrics = runner.val()
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
