"""The segmentation demo: train and evaluate UperNet on the digit scenes end to end.

Runs the demo config with tiny settings through tools/train.py and tools/test.py (and
mmseg's own tools/train.py), from a converted demo pretraining checkpoint.
"""
import os
import os.path as osp
import pickle
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
from mmpretrain.models import VisionTransformer
from PIL import Image

import sdae_mm.downstream.seg  # noqa: F401  (DigitScenesDataset)
from sdae_mm.checkpoint import convert_checkpoint_dict
from tests.helpers.models import DEMO_ARCH
from tests.helpers.tools import load_tool

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmseg'

DEMO_CFG = 'configs/demo/upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py'
NUM_CLASSES = 11


def tool_main(repo_root, name):
    """``main`` of tools/<name>.py, imported from its file."""
    return load_tool(f'tools/{name}.py').main


@pytest.fixture(scope='module')
def demo_backbone(tmp_path_factory):
    """A demo pretraining checkpoint (64x64, patch 8), converted with --to mmseg."""
    out = tmp_path_factory.mktemp('seg_demo_ckpt')
    state = {}
    for prefix, seed in (('backbone.', 0), ('teacher.', 1)):
        torch.manual_seed(seed)
        vit = VisionTransformer(arch=DEMO_ARCH, img_size=64, patch_size=8,
                                norm_cfg=dict(type='LN', eps=1e-6))
        vit.init_weights()
        state.update({prefix + k: v for k, v in vit.state_dict().items()})
    converted, meta, _ = convert_checkpoint_dict({'state_dict': state}, 'mmseg',
                                                 branch='teacher', algo='sdae')
    path = osp.join(out, 'backbone_mmseg.pth')
    torch.save({'state_dict': converted, 'meta': meta}, path)
    return path, {k[len('teacher.'):]: v for k, v in state.items() if k.startswith('teacher.')}


def tiny_options(demo_data, checkpoint, num_val=4):
    """--cfg-options for a 2-iteration run with a 4-image validation."""
    root = osp.join(demo_data, 'scenes')
    opts = [
        f'model.backbone.init_cfg.checkpoint={checkpoint}',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2', f'visualizer.name=seg_demo_{uuid.uuid4().hex}',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
                 f'{loader}.dataset.data_root={root}']
    for loader in ('val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.indices={num_val}', f'{loader}.batch_size=2']
    return opts


def reference_miou(results, demo_data):
    """mIoU (%) of dumped predictions against the annotation files, with numpy."""
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for res in results:
        pred = res['pred_sem_seg']['data'].squeeze(0).numpy()
        ann = osp.join(demo_data, 'scenes', 'ann_dir', 'val',
                       osp.basename(res['img_path']))
        gt = np.asarray(Image.open(ann))
        assert pred.shape == gt.shape == (128, 128)
        for c in range(NUM_CLASSES):
            inter[c] += np.sum((pred == c) & (gt == c))
            union[c] += np.sum((pred == c) | (gt == c))
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = inter / union
    return float(np.nanmean(iou) * 100)


def test_demo_config(repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CFG))
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports.imports == ['sdae_mm', 'sdae_mm.downstream.seg']
    bb = cfg.model.backbone
    assert (bb.type, bb.img_size, bb.patch_size, bb.embed_dims, bb.num_layers,
            bb.num_heads) == ('SdMIMSegViT', (128, 128), 8, 96, 6, 3)
    assert bb.init_cfg.checkpoint == 'work_dirs/demo/sdae/backbone_mmseg.pth'
    assert cfg.model.decode_head.num_classes == NUM_CLASSES
    assert cfg.train_dataloader.dataset.type == 'DigitScenesDataset'
    assert cfg.optim_wrapper.constructor == 'ViTLayerDecayOptimWrapperConstructor'
    assert cfg.optim_wrapper.paramwise_cfg.num_layers == 6
    assert cfg.model.test_cfg.mode == 'slide'


def test_digit_scenes_dataset(demo_data):
    from mmseg.registry import DATASETS

    from tools.dataset_converters.demo_data import SEG_CLASSES, SEG_PALETTE
    ds = DATASETS.build(dict(
        type='DigitScenesDataset', data_root=osp.join(demo_data, 'scenes'),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]))
    sample = ds[0]
    assert ds.metainfo['classes'] == SEG_CLASSES and len(SEG_CLASSES) == NUM_CLASSES
    # the dataset's palette is the one the builder draws with
    assert [tuple(c) for c in ds.metainfo['palette']] == list(SEG_PALETTE)
    assert len(ds) == len(os.listdir(osp.join(demo_data, 'scenes', 'img_dir', 'val')))
    gt = sample['gt_seg_map']
    assert gt.shape == (128, 128) and gt.min() == 0 and 1 <= gt.max() <= 10
    assert sample['reduce_zero_label'] is False


def test_demo_train_and_test_through_tools(repo_root, demo_data, demo_backbone, tmp_path):
    checkpoint, teacher = demo_backbone
    opts = tiny_options(demo_data, checkpoint)
    train = tool_main(repo_root, 'train')
    runner = train(['--work-dir', str(tmp_path / 'train'), osp.join(repo_root, DEMO_CFG),
                    '--cfg-options'] + opts)
    assert runner.iter == 2
    backbone = runner.model.backbone
    report = backbone.init_report
    assert report['checkpoint'] == checkpoint
    assert report['pos_embed'] == ((8, 8), (16, 16))  # 64 -> 128 pixels, patch 8
    assert report['initialised'] == sorted(
        f'layers.{i}.{k}' for i in range(6)
        for k in ('attn.relative_position_bias_table', 'gamma_1', 'gamma_2'))
    # the teacher was loaded, and two AdamW steps moved it only a little
    qkv = backbone.layers[2].attn.qkv.weight.detach()
    assert not torch.equal(qkv, teacher['layers.2.attn.qkv.weight'])
    assert torch.allclose(qkv, teacher['layers.2.attn.qkv.weight'], atol=1e-3)
    val_miou = runner.message_hub.get_scalar('val/mIoU').current()
    assert 0 <= val_miou <= 100

    ckpt = tmp_path / 'train' / 'iter_2.pth'
    assert ckpt.is_file()
    test = tool_main(repo_root, 'test')
    dump = tmp_path / 'preds.pkl'
    metrics = test([osp.join(repo_root, DEMO_CFG), str(ckpt), '--work-dir',
                    str(tmp_path / 'test'), '--out', str(dump), '--cfg-options'] +
                   tiny_options(demo_data, checkpoint))
    assert set(metrics) >= {'aAcc', 'mIoU', 'mAcc'}
    assert metrics['mIoU'] == pytest.approx(val_miou, abs=0.01)  # same weights, same data
    with open(dump, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4
    assert metrics['mIoU'] == pytest.approx(reference_miou(results, demo_data), abs=0.01)


def test_demo_trains_with_mmseg_own_train_script(repo_root, demo_data, demo_backbone, tmp_path):
    """mmseg's tools/train.py (what `mim train mmseg` runs) takes the config as is."""
    import mmseg
    script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(script)
    checkpoint, _ = demo_backbone
    opts = tiny_options(demo_data, checkpoint, num_val=2)
    opts = [o.replace('max_iters=2', 'max_iters=1').replace('interval=2', 'interval=1')
            for o in opts]
    env = dict(os.environ, PYTHONPATH=repo_root + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='2')
    work_dir = tmp_path / 'mmseg_train'
    proc = subprocess.run(
        [sys.executable, script, osp.join(repo_root, DEMO_CFG), '--work-dir', str(work_dir),
         '--cfg-options'] + opts,
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'SdMIMSegViT: loaded 76 tensors' in log
    assert 'mIoU' in log
    assert (work_dir / 'iter_1.pth').is_file()
