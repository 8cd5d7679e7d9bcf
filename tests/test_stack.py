"""The OpenMMLab stack works here: pinned versions, mmcv's compiled ops, and tiny mmseg /
mmdet models built from the libraries' own base configs run a loss and a predict step."""
import copy
import importlib
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# distribution name in requirements/ -> module name
STACK = {'mmcv': 'mmcv', 'mmengine': 'mmengine', 'mmpretrain': 'mmpretrain',
         'mmsegmentation': 'mmseg', 'mmdet': 'mmdet', 'timm': 'timm', 'torch': 'torch',
         'torchvision': 'torchvision'}


def _pins():
    """``name==version`` pins of requirements/{torch,mmcv,runtime}.txt."""
    pins = {}
    for fname in ('torch.txt', 'mmcv.txt', 'runtime.txt'):
        with open(osp.join(REPO_ROOT, 'requirements', fname)) as f:
            for line in f:
                m = re.match(r'^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)', line)
                if m:
                    pins[m.group(1).lower()] = m.group(2)
    return pins


@pytest.fixture(autouse=True)
def no_scope_leak():
    """Each test sets scopes with a context manager and leaves the default scope as it was."""
    before = DefaultScope.get_current_instance()
    before = None if before is None else before.scope_name
    yield
    after = DefaultScope.get_current_instance()
    assert (None if after is None else after.scope_name) == before


def test_versions_match_pins():
    pins = _pins()
    for dist in STACK:
        assert dist in pins, f'{dist} is not pinned in requirements/'
        module = importlib.import_module(STACK[dist])
        assert module.__version__.split('+')[0] == pins[dist], dist
    from importlib import metadata
    assert metadata.version('pycocotools') == pins['pycocotools']
    assert int(np.__version__.split('.')[0]) < 2


def test_mmcv_roi_align_matches_torchvision():
    from mmcv.ops import RoIAlign
    from torchvision.ops import roi_align
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 3, 16, 16, generator=g)
    rois = torch.tensor([[0, 1.0, 2.0, 20.0, 25.0], [1, 0.0, 0.0, 31.0, 31.0],
                         [0, 10.5, 3.25, 17.0, 30.0], [1, 4.0, 4.0, 6.0, 5.0]])
    for aligned in (True, False):
        for sampling_ratio in (0, 2):
            ours = RoIAlign((4, 5), spatial_scale=0.5, sampling_ratio=sampling_ratio,
                            aligned=aligned)(feats, rois)
            ref = roi_align(feats, rois, (4, 5), spatial_scale=0.5,
                            sampling_ratio=sampling_ratio, aligned=aligned)
            assert ours.shape == (4, 3, 4, 5)
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # gradients flow through the compiled backward
    x = feats.clone().requires_grad_(True)
    RoIAlign((4, 4), spatial_scale=0.5, sampling_ratio=2)(x, rois).sum().backward()
    xr = feats.clone().requires_grad_(True)
    roi_align(xr, rois, (4, 4), spatial_scale=0.5, sampling_ratio=2,
              aligned=True).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, atol=1e-5, rtol=1e-5)


def test_mmcv_nms_matches_torchvision():
    from mmcv.ops import batched_nms, nms
    from torchvision.ops import batched_nms as tv_batched_nms
    from torchvision.ops import nms as tv_nms
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 50
    wh = torch.rand(60, 2, generator=g) * 20 + 5
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(60, generator=g)
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    ref = tv_nms(boxes, scores, 0.5)
    assert 0 < len(ref) < 60
    assert keep.tolist() == ref.tolist()
    torch.testing.assert_close(dets, torch.cat([boxes[ref], scores[ref, None]], dim=1))
    idxs = torch.randint(0, 3, (60, ), generator=g)
    _, keep = batched_nms(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5))
    ref = tv_batched_nms(boxes, scores, idxs, 0.5)
    assert sorted(keep.tolist()) == sorted(ref.tolist())


def _base_config(package, rel_path):
    """A base config shipped inside an OpenMMLab package (its ``.mim/configs``)."""
    pkg = importlib.import_module(package)
    return Config.fromfile(osp.join(osp.dirname(pkg.__file__), '.mim', 'configs', rel_path))


def _tiny_upernet_cfg(backbone_type):
    C, ncls = 32, 11
    bn = dict(type='BN', requires_grad=True)
    if backbone_type == 'VisionTransformer':
        cfg = _base_config('mmseg', '_base_/models/upernet_vit-b16_ln_mln.py').model
        cfg.pretrained = None
        cfg.backbone.update(img_size=(64, 64), patch_size=8, embed_dims=C, num_layers=4,
                            num_heads=2, out_indices=(0, 1, 2, 3))
        cfg.neck.update(in_channels=[C] * 4, out_channels=C)
    else:  # mmseg's BEiT-style MAE backbone, the target of our converted checkpoints
        cfg = _base_config('mmseg', '_base_/models/upernet_mae.py').model
        cfg.backbone.update(img_size=(64, 64), patch_size=8, embed_dims=C, num_layers=4,
                            num_heads=2, out_indices=(0, 1, 2, 3), drop_path_rate=0.0)
        cfg.neck.update(embed_dim=C)
    cfg.data_preprocessor.update(size=(64, 64))
    cfg.decode_head.update(in_channels=[C] * 4, channels=C, num_classes=ncls, norm_cfg=bn)
    cfg.auxiliary_head.update(in_channels=C, channels=16, num_classes=ncls, norm_cfg=bn)
    return cfg


@pytest.mark.parametrize('backbone_type', ['VisionTransformer', 'MAE'])
def test_mmseg_upernet_vit_forward(backbone_type):
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(_tiny_upernet_cfg(backbone_type))
        assert type(model.backbone).__name__ == backbone_type
        model.init_weights()

        def batch(ori_shape):
            samples = []
            for i in range(2):
                s = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=ori_shape))
                s.gt_sem_seg = PixelData(data=torch.randint(0, 11, (1, 64, 64)))
                samples.append(s)
            inputs = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
            return dict(inputs=inputs, data_samples=samples)

        model.train()
        data = model.data_preprocessor(batch((64, 64)), training=True)
        assert data['inputs'].shape == (2, 3, 64, 64)
        losses = model(**data, mode='loss')
        assert {'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'} <= set(losses)
        # an untrained 11-way classifier: cross-entropy near ln(11)
        assert 1.0 < losses['decode.loss_ce'].item() < 5.0
        loss, _ = model.parse_losses(losses)
        loss.backward()
        grad = model.backbone.patch_embed.projection.weight.grad
        assert grad is not None and grad.abs().sum() > 0

        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(batch((80, 96)), training=False)
            preds = model(**data, mode='predict')
        assert len(preds) == 2
        for p in preds:
            # logits and labels are resized back to the original image shape
            assert p.seg_logits.data.shape == (11, 80, 96)
            assert p.pred_sem_seg.data.shape == (1, 80, 96)
            assert torch.equal(p.pred_sem_seg.data[0], p.seg_logits.data.argmax(0))


def _tiny_mask_rcnn_cfg():
    cfg = _base_config('mmdet', '_base_/models/mask-rcnn_r50_fpn.py').model
    C, ncls = 32, 10
    cfg.backbone.update(depth=18, init_cfg=None, frozen_stages=-1, norm_eval=False)
    cfg.neck.update(in_channels=[64, 128, 256, 512], out_channels=C)
    cfg.rpn_head.update(in_channels=C, feat_channels=C)
    cfg.roi_head.bbox_roi_extractor.update(out_channels=C)
    cfg.roi_head.mask_roi_extractor.update(out_channels=C)
    cfg.roi_head.bbox_head.update(in_channels=C, fc_out_channels=64, num_classes=ncls)
    cfg.roi_head.mask_head.update(in_channels=C, conv_out_channels=C, num_convs=2,
                                  num_classes=ncls)
    cfg.train_cfg.rpn.sampler.num = 64
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
    cfg.train_cfg.rcnn.sampler.num = 32
    cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=50)
    cfg.test_cfg.rcnn.update(score_thr=0.0, max_per_img=10)
    return cfg


def _fake_det_sample(scale):
    """A 128x128 image with a square and a disc; the original image is ``1 / scale`` larger."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    img = torch.full((3, 128, 128), 20, dtype=torch.uint8)
    masks = np.zeros((2, 128, 128), dtype=np.uint8)
    masks[0, 20:60, 10:50] = 1
    yy, xx = np.mgrid[0:128, 0:128]
    masks[1] = ((yy - 90)**2 + (xx - 80)**2 <= 20**2)
    img[0][torch.from_numpy(masks[0]).bool()] = 230
    img[1][torch.from_numpy(masks[1]).bool()] = 200
    ori = int(round(128 / scale))
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(ori, ori),
                                         scale_factor=(scale, scale), img_id=0))
    sample.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[10., 20., 50., 60.], [60., 70., 101., 111.]])),
        labels=torch.tensor([3, 7]), masks=BitmapMasks(masks, 128, 128))
    return dict(inputs=[img], data_samples=[sample])


def test_mmdet_mask_rcnn_forward():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(_tiny_mask_rcnn_cfg())
        model.init_weights()
        roi_layer = model.roi_head.bbox_roi_extractor.roi_layers[0]
        assert type(roi_layer).__module__.startswith('mmcv.ops')

        model.train()
        data = model.data_preprocessor(copy.deepcopy(_fake_det_sample(1.0)), training=True)
        assert data['inputs'].shape == (1, 3, 128, 128)
        losses = model(**data, mode='loss')
        assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'acc',
                'loss_mask'} <= set(losses)
        loss, log_vars = model.parse_losses(losses)
        assert torch.isfinite(loss) and loss.item() > 0
        assert log_vars['loss_mask'] > 0 and log_vars['loss_cls'] > 0
        loss.backward()
        assert model.backbone.conv1.weight.grad.abs().sum() > 0
        assert model.roi_head.mask_head.conv_logits.weight.grad.abs().sum() > 0

        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(_fake_det_sample(0.5), training=False)
            preds = model(**data, mode='predict')
        assert len(preds) == 1
        pred = preds[0].pred_instances
        k = len(pred)
        assert 0 < k <= 10  # score_thr 0: the untrained model still returns boxes
        assert pred.bboxes.shape == (k, 4) and pred.scores.shape == (k, )
        assert pred.labels.min() >= 0 and pred.labels.max() < 10
        # rescaled to the 256x256 original image
        assert pred.masks.shape == (k, 256, 256) and pred.masks.dtype == torch.bool
        assert pred.bboxes.min() >= 0 and pred.bboxes.max() <= 256


def test_collect_env_and_checks(capsys):
    from tools.analysis_tools.check_env import ENV_KEYS, check_env, collect_env, main
    env = collect_env()
    assert set(env) == set(ENV_KEYS)
    for key in ('python', 'torch', 'torchvision', 'mmcv', 'mmengine', 'mmpretrain', 'mmseg',
                'mmdet', 'timm', 'numpy', 'opencv', 'pycocotools', 'mmcv_ops'):
        assert env[key], key
    pins = _pins()
    assert env['mmcv'] == pins['mmcv'] and env['mmdet'] == pins['mmdet']
    assert env['mmseg'] == pins['mmsegmentation']
    assert int(env['numpy'].split('.')[0]) < 2
    assert env['mmcv_ops'] is True and env['import_errors'] == {}
    assert check_env(env) == []
    assert main() == 0
    out = capsys.readouterr().out
    assert 'Environment check passed' in out and f"{env['mmdet']}" in out

    bad = copy.deepcopy(env)
    bad['numpy'] = '2.0.1'
    problems = check_env(bad)
    assert len(problems) == 1 and 'numpy==2.0.1' in problems[0]

    bad = copy.deepcopy(env)
    bad['mmcv'] = '2.2.0'
    assert any('mmcv==2.2.0' in p and '<2.2.0' in p for p in check_env(bad))

    bad = copy.deepcopy(env)
    bad['mmcv_ops'] = False
    bad['import_errors']['mmcv.ops'] = 'ImportError: libmmcv _ext'
    assert any('compiled ops' in p and 'mmcv==' in p for p in check_env(bad))

    bad = copy.deepcopy(env)
    bad['opencv'] = '4.12.0.88'
    bad['import_errors']['opencv'] = 'ImportError: numpy.core.multiarray failed to import'
    assert any('opencv-python==4.12.0.88' in p for p in check_env(bad))

    bad = copy.deepcopy(env)
    bad['mmdet'] = '3.3.0'
    bad['import_errors']['mmdet'] = 'AssertionError: MMCV==2.2.0 is used but incompatible.'
    assert any(p.startswith('mmdet==3.3.0 does not import') for p in check_env(bad))
