"""The embedded demo data: counts, determinism, consistency, and loading by mmpretrain,
mmdet and mmseg datasets without any conversion."""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image
from pycocotools import mask as mask_utils

from tools.dataset_converters.demo_data import (DEMO_DATA_VERSION, DET_METAINFO, DIGIT_CLASSES,
                                                SEG_CLASSES, SEG_METAINFO, SEG_PALETTE,
                                                build_demo_data, demo_roots_of, ensure_demo_data,
                                                is_complete, load_digit_images, stratified_split)

SPLITS = ('train', 'val')
NUM_SCENES = {'train': 300, 'val': 60}


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    summary = build_demo_data(root, seed=0)
    assert summary['skipped'] is False
    return root


def _hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _load_coco(root, split):
    with open(osp.join(root, 'scenes', 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def _sem_map(root, split, file_name):
    return np.asarray(Image.open(osp.join(root, 'scenes', 'ann_dir', split, file_name)))


def test_constants():
    assert DIGIT_CLASSES == tuple('0123456789')
    assert SEG_CLASSES == ('background', ) + DIGIT_CLASSES
    assert len(SEG_PALETTE) == len(SEG_CLASSES) == 11
    assert len(set(SEG_PALETTE)) == 11
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in SEG_PALETTE)


def test_stratified_split():
    images, labels = load_digit_images()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797, )
    assert images.min() == 0 and images.max() == 1
    split = stratified_split(labels, 0.2, seed=0)
    assert len(np.intersect1d(split['train'], split['val'])) == 0
    assert np.array_equal(np.sort(np.concatenate([split['train'], split['val']])),
                          np.arange(1797))
    for c in range(10):
        n = int((labels == c).sum())
        assert int((labels[split['val']] == c).sum()) == round(0.2 * n)
    other = stratified_split(labels, 0.2, seed=1)
    assert not np.array_equal(split['val'], other['val'])
    with pytest.raises(ValueError, match='val_ratio'):
        stratified_split(labels, 1.0, seed=0)


def test_counts_and_files(demo_root):
    manifest = json.load(open(osp.join(demo_root, 'manifest.json')))
    assert manifest['version'] == DEMO_DATA_VERSION
    assert manifest['params'] == dict(seed=0, num_train_scenes=300, num_val_scenes=60,
                                      val_ratio=0.2)
    _, labels = load_digit_images()
    per_class_total = np.bincount(labels, minlength=10)
    seen_ids = {}
    for split in SPLITS:
        counts = manifest['counts']['cls'][split]
        assert sorted(os.listdir(osp.join(demo_root, 'cls', split))) == list(DIGIT_CLASSES)
        for d, name in enumerate(DIGIT_CLASSES):
            files = sorted(os.listdir(osp.join(demo_root, 'cls', split, name)))
            assert len(files) == counts[name]
            expected_val = round(0.2 * per_class_total[d])
            assert counts[name] == (expected_val if split == 'val' else
                                    per_class_total[d] - expected_val)
            # each file is named after its scikit-learn index, in the folder of its label
            ids = [int(f[:-4]) for f in files]
            assert all(labels[i] == d for i in ids)
            seen_ids[(split, name)] = ids
    all_ids = sorted(i for ids in seen_ids.values() for i in ids)
    assert all_ids == list(range(1797))
    img = Image.open(osp.join(demo_root, 'cls', 'train', '3',
                              f'{seen_ids[("train", "3")][0]:04d}.png'))
    assert img.mode == 'RGB' and img.size == (64, 64)

    for split in SPLITS:
        sc = manifest['counts']['scenes'][split]
        assert sc['images'] == NUM_SCENES[split]
        for sub in ('img_dir', 'ann_dir'):
            files = sorted(os.listdir(osp.join(demo_root, 'scenes', sub, split)))
            assert files == [f'{k:04d}.png' for k in range(NUM_SCENES[split])]
        coco = _load_coco(demo_root, split)
        assert len(coco['images']) == NUM_SCENES[split]
        assert len(coco['annotations']) == sc['instances']
        assert sum(sc['instances_per_class'].values()) == sc['instances']
        per_image = np.bincount([a['image_id'] for a in coco['annotations']],
                                minlength=NUM_SCENES[split] + 1)[1:]
        assert per_image.min() >= 2 and per_image.max() <= 4
        # every class occurs in every split
        assert min(sc['instances_per_class'].values()) > 0
    img = Image.open(osp.join(demo_root, 'scenes', 'img_dir', 'val', '0000.png'))
    assert img.mode == 'RGB' and img.size == (128, 128)
    sem = Image.open(osp.join(demo_root, 'scenes', 'ann_dir', 'val', '0000.png'))
    assert sem.mode == 'L' and sem.size == (128, 128)


def test_determinism_skip_and_repair(demo_root, tmp_path):
    other = str(tmp_path / 'demo2')
    build_demo_data(other, seed=0)
    first = _hashes(demo_root)
    assert len(first) == 1797 + 2 * (300 + 60) + 2 + 1
    assert _hashes(other) == first

    # a complete build is kept as it is
    mtime = os.stat(osp.join(other, 'manifest.json')).st_mtime_ns
    assert build_demo_data(other, seed=0)['skipped'] is True
    assert os.stat(osp.join(other, 'manifest.json')).st_mtime_ns == mtime
    # other parameters do not count as complete
    assert is_complete(other)
    assert not is_complete(other, dict(seed=1, num_train_scenes=300, num_val_scenes=60,
                                       val_ratio=0.2))
    # an incomplete build is rebuilt, identically
    os.remove(osp.join(other, 'scenes', 'img_dir', 'val', '0007.png'))
    os.remove(osp.join(other, 'cls', 'train', '5', sorted(
        os.listdir(osp.join(other, 'cls', 'train', '5')))[0]))
    assert not is_complete(other)
    assert build_demo_data(other, seed=0)['skipped'] is False
    assert _hashes(other) == first


def test_never_builds_over_a_folder_it_did_not_write(tmp_path):
    """A user's folder whose data_root ends in ``cls`` (with ``scenes/`` beside it) is an
    error naming it, and nothing in it changes."""
    mine = tmp_path / 'mine'
    (mine / 'cls' / 'cat').mkdir(parents=True)
    (mine / 'cls' / 'cat' / '1.png').write_bytes(b'my image')
    (mine / 'scenes').mkdir()
    (mine / 'scenes' / 'notes.txt').write_text('mine')
    before = _hashes(str(mine))
    cfg = dict(train_dataloader=dict(dataset=dict(data_root=str(mine / 'cls'))))
    with pytest.raises(FileExistsError, match=f'{mine}.*no manifest.json'):
        ensure_demo_data(cfg)
    with pytest.raises(FileExistsError, match=str(mine)):
        build_demo_data(str(mine), force=True)
    assert _hashes(str(mine)) == before
    # a build from before the manifest listed its files is not deleted either
    (mine / 'manifest.json').write_text(json.dumps(dict(version=DEMO_DATA_VERSION)))
    with pytest.raises(FileExistsError, match='before the builder listed its files'):
        build_demo_data(str(mine))
    # a manifest whose file list leaves the folder is refused before anything is removed
    (mine / 'manifest.json').write_text(json.dumps(dict(version=0, files=['../x.png'])))
    with pytest.raises(ValueError, match='not a path inside the demo folder'):
        build_demo_data(str(mine))
    assert (mine / 'manifest.json').exists() and (mine / 'cls' / 'cat' / '1.png').exists()


def test_rebuild_removes_only_its_own_files(demo_root, tmp_path):
    """Files a user adds to a demo build survive a rebuild; so does everything else that
    the builder did not write, and an interrupted build is cleaned up and completed."""
    out = tmp_path / 'demo'
    build_demo_data(str(out), num_train_scenes=4, num_val_scenes=2)
    manifest = json.load(open(out / 'manifest.json'))
    assert len(manifest['files']) == 1797 + 2 * (4 + 2) + 2
    assert all(osp.isfile(osp.join(out, f)) for f in manifest['files'])
    (out / 'README.txt').write_text('my notes')
    (out / 'cls' / 'train' / '3' / 'my_extra.png').write_bytes(b'mine')
    (out / 'scenes' / 'mine').mkdir()
    (out / 'scenes' / 'mine' / 'a.json').write_text('{}')
    # other parameters: the old build is replaced, the user's files stay
    summary = build_demo_data(str(out), num_train_scenes=3, num_val_scenes=2)
    assert summary['skipped'] is False and is_complete(str(out))
    assert (out / 'README.txt').read_text() == 'my notes'
    assert (out / 'cls' / 'train' / '3' / 'my_extra.png').read_bytes() == b'mine'
    assert (out / 'scenes' / 'mine' / 'a.json').exists()
    assert not (out / 'scenes' / 'img_dir' / 'train' / '0003.png').exists()
    # the user's extra file does not make the build incomplete
    assert build_demo_data(str(out), num_train_scenes=3, num_val_scenes=2)['skipped'] is True
    # an interrupted build (manifest without counts) is ours: cleaned and rebuilt
    partial = dict(json.load(open(out / 'manifest.json')))
    partial.pop('counts')
    (out / 'manifest.json').write_text(json.dumps(partial))
    os.remove(out / 'scenes' / 'ann_dir' / 'val' / '0001.png')
    assert not is_complete(str(out))
    assert build_demo_data(str(out), num_train_scenes=3, num_val_scenes=2)['skipped'] is False
    assert is_complete(str(out)) and (out / 'README.txt').exists()
    # a foreign file where the builder would write is not overwritten
    os.remove(out / 'manifest.json')
    with pytest.raises(FileExistsError, match='no manifest.json'):
        build_demo_data(str(out), num_train_scenes=3, num_val_scenes=2)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_train_scenes'):
        build_demo_data(str(tmp_path), num_train_scenes=0)
    with pytest.raises(ValueError, match='seed'):
        build_demo_data(str(tmp_path), seed=-1)
    with pytest.raises(ValueError, match='val_ratio'):
        build_demo_data(str(tmp_path), val_ratio=1.5)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('split', SPLITS)
def test_coco_masks_agree_with_semantic_maps(demo_root, split):
    coco = _load_coco(demo_root, split)
    assert [(c['id'], c['name']) for c in coco['categories']] == [
        (d + 1, name) for d, name in enumerate(DIGIT_CLASSES)]
    anns = {}
    for a in coco['annotations']:
        anns.setdefault(a['image_id'], []).append(a)
    # all validation scenes, the first 40 training scenes
    images = coco['images'] if split == 'val' else coco['images'][:40]
    for img in images:
        assert (img['width'], img['height']) == (128, 128)
        sem = _sem_map(demo_root, split, img['file_name'])
        union = np.zeros_like(sem, dtype=bool)
        for a in anns[img['id']]:
            assert a['iscrowd'] == 0 and 1 <= a['category_id'] <= 10
            assert isinstance(a['segmentation']['counts'], str)
            mask = mask_utils.decode(a['segmentation']).astype(bool)
            assert mask.shape == (128, 128)
            # pixels of an instance of digit d are d + 1 in the semantic map
            assert np.all(sem[mask] == a['category_id'])
            assert not np.any(union & mask), 'instances overlap'
            union |= mask
            assert a['area'] == mask.sum() > 0
            ys, xs = np.nonzero(mask)
            assert a['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                 ys.max() - ys.min() + 1]
        # and every labelled pixel belongs to an instance
        assert np.array_equal(union, sem > 0)


def test_mmpretrain_custom_dataset(demo_root):
    from mmpretrain.datasets import CustomDataset
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        train = CustomDataset(data_root=osp.join(demo_root, 'cls'), data_prefix='train',
                              pipeline=pipeline)
        val = CustomDataset(data_root=osp.join(demo_root, 'cls'), data_prefix='val',
                            pipeline=pipeline)
        assert len(train) == 1438 and len(val) == 359
        assert train.CLASSES == DIGIT_CLASSES and len(val.CLASSES) == 10
        for ds, idx in ((train, 0), (val, len(val) - 1)):
            sample = ds[idx]
            info = ds.get_data_info(idx)
            label = int(sample['data_samples'].gt_label)
            assert osp.basename(osp.dirname(info['img_path'])) == DIGIT_CLASSES[label]
            assert tuple(sample['inputs'].shape) == (3, 64, 64)
            # LoadImageFromFile gives BGR: the same pixels as the PNG, channels reversed
            rgb = np.asarray(Image.open(info['img_path']))
            assert np.array_equal(sample['inputs'].permute(1, 2, 0).numpy(), rgb[..., ::-1])


@pytest.mark.parametrize('split', SPLITS)
def test_mmdet_coco_dataset(demo_root, split):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = CocoDataset(
            data_root=osp.join(demo_root, 'scenes'),
            ann_file=f'annotations/instances_{split}.json',
            data_prefix=dict(img=f'img_dir/{split}/'),
            metainfo=DET_METAINFO,
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='PackDetInputs')
            ])
        assert len(ds) == NUM_SCENES[split]
        assert ds.metainfo['classes'] == DIGIT_CLASSES
        coco = _load_coco(demo_root, split)
        for idx in (0, len(ds) - 1):
            sample = ds[idx]
            assert tuple(sample['inputs'].shape) == (3, 128, 128)
            ds_sample = sample['data_samples']
            gt = ds_sample.gt_instances
            n = sum(a['image_id'] == ds_sample.img_id for a in coco['annotations'])
            assert 2 <= len(gt) == n <= 4
            assert len(ds_sample.ignored_instances) == 0
            masks = gt.masks.to_ndarray().astype(bool)
            assert masks.shape == (n, 128, 128)
            sem = _sem_map(demo_root, split, osp.basename(ds_sample.img_path))
            boxes = gt.bboxes.tensor.numpy()
            for mask, label, box in zip(masks, gt.labels.tolist(), boxes):
                assert 0 <= label < 10
                assert np.all(sem[mask] == label + 1)
                ys, xs = np.nonzero(mask)
                np.testing.assert_allclose(
                    box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


@pytest.mark.parametrize('split', SPLITS)
def test_mmseg_base_seg_dataset(demo_root, split):
    from mmseg.datasets import BaseSegDataset
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = BaseSegDataset(
            data_root=osp.join(demo_root, 'scenes'),
            data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
            img_suffix='.png', seg_map_suffix='.png', metainfo=SEG_METAINFO,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ])
        assert len(ds) == NUM_SCENES[split]
        assert ds.metainfo['classes'] == SEG_CLASSES
        assert [tuple(c) for c in ds.metainfo['palette']] == list(SEG_PALETTE)
        assert ds.metainfo['reduce_zero_label'] is False
        for idx in (0, len(ds) - 1):
            sample = ds[idx]
            assert tuple(sample['inputs'].shape) == (3, 128, 128)
            seg = sample['data_samples'].gt_sem_seg.data.numpy()
            sem = np.asarray(Image.open(sample['data_samples'].seg_map_path))
            assert seg.shape == (1, 128, 128)
            assert np.array_equal(seg[0], sem)
            assert seg.max() <= 10 and len(np.unique(seg)) >= 2


def test_demo_roots_of_configs():
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for name in ('sdae_vit-demo-p8_1xb64-60e_digits.py',
                 'linear_vit-demo-p8_1xb64-10e_digits.py',
                 'upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py',
                 'mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py'):
        cfg = Config.fromfile(osp.join(root, 'configs', 'demo', name))
        assert demo_roots_of(cfg) == ['data/demo'], name
    flagship = Config.fromfile(osp.join(root, 'configs', 'sdae_vit-b_300e.py'))
    assert demo_roots_of(flagship) == []
    wrapped = dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2, dataset=dict(data_root='x/demo2/scenes/'))))
    assert demo_roots_of(wrapped) == [osp.join('x', 'demo2')]


def test_ensure_demo_data_builds_once_and_other_ranks_wait(demo_root, tmp_path, monkeypatch):
    cfg = dict(train_dataloader=dict(dataset=dict(data_root=str(tmp_path / 'd' / 'cls'))),
               val_dataloader=dict(dataset=dict(data_root=str(tmp_path / 'd' / 'scenes'))))
    monkeypatch.setenv('LOCAL_RANK', '1')
    with pytest.raises(TimeoutError, match='did not finish the demo data'):
        ensure_demo_data(cfg, timeout=0.)
    monkeypatch.setenv('LOCAL_RANK', '0')
    assert ensure_demo_data(cfg) == [str(tmp_path / 'd')]
    assert is_complete(str(tmp_path / 'd'))
    assert _hashes(str(tmp_path / 'd')) == _hashes(demo_root)
    assert ensure_demo_data(cfg) == []
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert ensure_demo_data(cfg) == []
