"""Embedded demo data built offline from scikit-learn's handwritten digits.

scikit-learn ships 1,797 labelled 8x8 digit images (``sklearn.datasets.load_digits``).
:func:`build_demo_data` turns them, deterministically and in a few seconds, into three small
data sets in the standard OpenMMLab layouts, so that pretraining and every downstream
transfer can run end to end without downloads::

    <out_dir>/
      manifest.json                       version, seed, parameters and counts
      cls/{train,val}/<digit>/<id>.png    64x64 RGB, ImageNet-style folders (mmpretrain)
      scenes/img_dir/{train,val}/<id>.png       128x128 RGB canvases with 2-4 digits
      scenes/ann_dir/{train,val}/<id>.png       uint8 semantic maps, 0 = background,
                                                digit d = d + 1 (mmseg, ADE20K-style)
      scenes/annotations/instances_{train,val}.json   COCO instances (mmdet)

Every digit, in the classification images and in the scenes alike, is the 8x8 source image
upsampled with bicubic interpolation and a soft threshold, drawn in a random bright colour
over a dark background shaded by a colour ramp (no pixel noise: it makes the PNG files
several times larger and slower to write). The classification split is
stratified (``val_ratio`` of every class goes to ``val``); the scenes of a split only use
digits of the same split, so no source image is shared between training and validation.
The instance masks of the COCO file are compressed RLE (exact, holes included: polygons
cannot describe the hole of a 0, 6, 8 or 9) of the visible pixels of each digit; digits
drawn later occlude earlier ones, which the placement keeps to a small fraction.

The same seed gives byte-identical files (for the same numpy / Pillow / zlib versions).

Nothing but the builder's own files is ever touched: it builds only into a missing or empty
folder, or over its own earlier build, whose manifest lists exactly the files it wrote
(written before the first image, so an interrupted build is recognised too); only those
files are removed before a rebuild. Any other folder is an error naming it.
"""
import colorsys
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

#: Bumped whenever the generated files change, so that old builds are rebuilt.
DEMO_DATA_VERSION = 1

#: Names of the ten digit classes (classification and COCO categories, ids 1..10).
DIGIT_CLASSES: Tuple[str, ...] = tuple(str(d) for d in range(10))

#: Semantic segmentation classes: label 0 is the background, label d + 1 is digit d.
SEG_CLASSES: Tuple[str, ...] = ('background', ) + DIGIT_CLASSES

#: One RGB colour per digit class (for visualisation, mmdet ``metainfo['palette']``).
DIGIT_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))

#: One RGB colour per segmentation class, background first (mmseg ``metainfo['palette']``).
SEG_PALETTE: Tuple[Tuple[int, int, int], ...] = ((0, 0, 0), ) + DIGIT_PALETTE

#: ``metainfo`` dicts to pass to mmpretrain / mmdet / mmseg datasets.
CLS_METAINFO = dict(classes=DIGIT_CLASSES)
DET_METAINFO = dict(classes=DIGIT_CLASSES, palette=DIGIT_PALETTE)
SEG_METAINFO = dict(classes=SEG_CLASSES, palette=SEG_PALETTE)

CLS_IMG_SIZE = 64
SCENE_SIZE = 128
SPLITS = ('train', 'val')
MANIFEST = 'manifest.json'

# Random streams: one per purpose, so that changing one part does not shift the others.
_STREAM_SPLIT, _STREAM_CLS, _STREAM_SCENES = 0, 1, {'train': 2, 'val': 3}


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(stream)])


def load_digit_images() -> Tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's digits (bundled with scikit-learn, no download).

    Reads the ``digits.csv.gz`` that ``sklearn.datasets.load_digits`` reads, directly: it
    is the same array, and importing scikit-learn takes about a third of the whole build.
    Falls back to ``load_digits`` if that file is not where scikit-learn keeps it.

    Returns:
        tuple: ``images`` (1797, 8, 8) float32 in [0, 1] and ``labels`` (1797,) int64.
    """
    import importlib.util
    spec = importlib.util.find_spec('sklearn')
    if spec is None:
        raise ImportError('the demo data needs scikit-learn (pip install scikit-learn)')
    path = None
    for loc in spec.submodule_search_locations or []:
        candidate = osp.join(loc, 'datasets', 'data', 'digits.csv.gz')
        if osp.isfile(candidate):
            path = candidate
            break
    if path is not None:
        data = np.loadtxt(path, delimiter=',')
        raw_images, targets = data[:, :-1].reshape(-1, 8, 8), data[:, -1]
    else:
        from sklearn.datasets import load_digits
        digits = load_digits()
        raw_images, targets = digits.images, digits.target
    if raw_images.shape != (1797, 8, 8):
        raise ValueError(f'unexpected scikit-learn digits shape {raw_images.shape}')
    return (raw_images / 16.0).astype(np.float32), targets.astype(np.int64)


def stratified_split(labels: np.ndarray, val_ratio: float,
                     seed: int) -> Dict[str, np.ndarray]:
    """Split indices per class: ``round(val_ratio * n_c)`` of class c go to ``val``.

    Args:
        labels (np.ndarray): Class of every sample.
        val_ratio (float): Fraction of each class for validation, in (0, 1).
        seed (int): Seed of the permutation.

    Returns:
        dict: ``{'train': idx, 'val': idx}``, sorted sample indices.
    """
    if not 0 < val_ratio < 1:
        raise ValueError(f'val_ratio must be in (0, 1), got {val_ratio}')
    rng = _rng(seed, _STREAM_SPLIT)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(val_ratio * len(idx)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return {'train': np.sort(np.concatenate(train)), 'val': np.sort(np.concatenate(val))}


def digit_alpha(image: np.ndarray, size: int) -> np.ndarray:
    """Upsample one 8x8 digit into a smooth ``size`` x ``size`` opacity map.

    The digit is padded by one pixel (so that strokes touching the border fade out),
    upsampled with bicubic interpolation and passed through a soft threshold.

    Args:
        image (np.ndarray): (8, 8) intensities in [0, 1].
        size (int): Side of the output in pixels.

    Returns:
        np.ndarray: (size, size) float32 opacity in [0, 1]; the digit's mask is
        ``alpha >= 0.5``.
    """
    from PIL import Image
    padded = np.pad(np.asarray(image, dtype=np.float32), 1)
    up = np.asarray(Image.fromarray(padded, mode='F').resize((size, size), Image.BICUBIC))
    return np.clip((up - 0.3) / 0.4, 0.0, 1.0).astype(np.float32)


_RAMPS: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark RGB background shaded by a linear ramp of random direction, float32 (H, W, 3)."""
    if size not in _RAMPS:
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
        _RAMPS[size] = (xs, ys)
    xs, ys = _RAMPS[size]
    base = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6),
                                        rng.uniform(0.06, 0.25)), dtype=np.float32) * 255
    tint = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6), 1.0),
                    dtype=np.float32) * rng.uniform(10, 45)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.float32(np.cos(angle)) * xs + np.float32(np.sin(angle)) * ys
    ramp -= ramp.min()
    ramp /= max(float(ramp.max()), 1e-6)
    return base + ramp[..., None] * tint


def _digit_color(rng: np.random.Generator) -> np.ndarray:
    """A random bright colour, float32 (3,) in [0, 255]."""
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.8, 1.0))
    return np.array(rgb, dtype=np.float32) * 255


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _save_png(array: np.ndarray, path: str) -> None:
    from PIL import Image
    Image.fromarray(array).save(path, format='PNG', compress_level=1)


def _write_json(obj, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def render_cls_image(image: np.ndarray, rng: np.random.Generator,
                     size: int = CLS_IMG_SIZE) -> np.ndarray:
    """One classification image: the digit filling a ``size`` x ``size`` RGB canvas."""
    alpha = digit_alpha(image, size)[..., None]
    canvas = _background(rng, size)
    canvas = canvas * (1 - alpha) + _digit_color(rng)[None, None] * alpha
    return _to_uint8(canvas)


def _box_of(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive end) of a boolean mask, or None."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _inter(a, b) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def render_scene(images: np.ndarray, labels: np.ndarray, pool: np.ndarray,
                 rng: np.random.Generator, size: int = SCENE_SIZE,
                 num_digits: Tuple[int, int] = (2, 4),
                 scale: Tuple[int, int] = (24, 56), max_overlap: float = 0.1,
                 min_visible: float = 0.8, tries: int = 50):
    """Draw one scene of 2-4 digits taken from ``pool``.

    Each digit gets a random square size in ``scale`` and a random position. A position is
    accepted when the digit's tight box covers at most ``max_overlap`` of the smaller of it
    and any earlier digit's box, and every earlier digit keeps at least ``min_visible`` of
    its pixels; a digit that finds no such position in ``tries`` draws is replaced by
    another draw (up to ``4 * n`` digits are tried for a scene of ``n``).

    Returns:
        tuple: ``image`` (size, size, 3) uint8, ``sem`` (size, size) uint8 semantic map
        (0 background, d + 1 digit d), and a list of ``(label, visible_mask)`` per digit in
        drawing order.
    """
    canvas = _background(rng, size)
    n_target = int(rng.integers(num_digits[0], num_digits[1] + 1))
    placed: List[dict] = []  # label, visible mask (H, W) bool, full area, tight box
    for _ in range(4 * n_target):  # a digit that finds no place is replaced by another
        if len(placed) == n_target:
            break
        src = int(pool[rng.integers(len(pool))])
        side = int(rng.integers(scale[0], scale[1] + 1))
        alpha_small = digit_alpha(images[src], side)
        mask_small = alpha_small >= 0.5
        box_small = _box_of(mask_small)
        if box_small is None:
            continue
        for _ in range(tries):
            x = int(rng.integers(0, size - side + 1))
            y = int(rng.integers(0, size - side + 1))
            box = (x + box_small[0], y + box_small[1], x + box_small[2], y + box_small[3])
            area = (box[2] - box[0]) * (box[3] - box[1])
            ok = True
            for p in placed:
                pb = p['box']
                parea = (pb[2] - pb[0]) * (pb[3] - pb[1])
                if _inter(box, pb) > max_overlap * min(area, parea):
                    ok = False
                    break
                vis = p['visible'].copy()
                vis[y:y + side, x:x + side] &= ~mask_small
                if vis.sum() < min_visible * p['area']:
                    ok = False
                    break
            if ok:
                break
        else:
            continue
        full = np.zeros((size, size), dtype=bool)
        full[y:y + side, x:x + side] = mask_small
        for p in placed:
            p['visible'] &= ~full
        alpha = np.zeros((size, size, 1), dtype=np.float32)
        alpha[y:y + side, x:x + side, 0] = alpha_small
        color = _digit_color(rng)
        canvas = canvas * (1 - alpha) + color[None, None] * alpha
        placed.append(dict(label=int(labels[src]), visible=full.copy(), area=int(full.sum()),
                           box=box))
    sem = np.zeros((size, size), dtype=np.uint8)
    for p in placed:
        sem[p['visible']] = p['label'] + 1
    return _to_uint8(canvas), sem, [(p['label'], p['visible']) for p in placed]


def _coco_annotation(mask: np.ndarray, label: int, ann_id: int, image_id: int) -> dict:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    return dict(id=ann_id, image_id=image_id, category_id=label + 1,
                segmentation=dict(size=[int(s) for s in rle['size']],
                                  counts=rle['counts'].decode('ascii')),
                area=float(mask_utils.area(rle)), bbox=bbox, iscrowd=0)


def _build_cls(root: str, images, labels, split_idx, seed: int) -> Dict[str, Dict[str, int]]:
    rng = _rng(seed, _STREAM_CLS)
    counts = {}
    for split in SPLITS:
        per_class = {c: 0 for c in DIGIT_CLASSES}
        for name in DIGIT_CLASSES:
            os.makedirs(osp.join(root, 'cls', split, name), exist_ok=True)
        for i in split_idx[split]:
            name = DIGIT_CLASSES[labels[i]]
            img = render_cls_image(images[i], rng)
            _save_png(img, osp.join(root, 'cls', split, name, f'{int(i):04d}.png'))
            per_class[name] += 1
        counts[split] = per_class
    return counts


def _build_scenes(root: str, images, labels, split_idx, seed: int,
                  num_scenes: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    counts = {}
    categories = [dict(id=d + 1, name=name, supercategory='digit')
                  for d, name in enumerate(DIGIT_CLASSES)]
    for split in SPLITS:
        rng = _rng(seed, _STREAM_SCENES[split])
        coco_images, annotations = [], []
        per_class = {c: 0 for c in DIGIT_CLASSES}
        for sub in ('img_dir', 'ann_dir'):
            os.makedirs(osp.join(root, 'scenes', sub, split), exist_ok=True)
        for k in range(num_scenes[split]):
            image_id = k + 1
            file_name = f'{k:04d}.png'
            img, sem, instances = render_scene(images, labels, split_idx[split], rng)
            _save_png(img, osp.join(root, 'scenes', 'img_dir', split, file_name))
            _save_png(sem, osp.join(root, 'scenes', 'ann_dir', split, file_name))
            coco_images.append(dict(id=image_id, file_name=file_name, width=SCENE_SIZE,
                                    height=SCENE_SIZE))
            for label, mask in instances:
                annotations.append(
                    _coco_annotation(mask, label, len(annotations) + 1, image_id))
                per_class[DIGIT_CLASSES[label]] += 1
        coco = dict(info=dict(description='sdae-mm demo scenes from scikit-learn digits',
                              version=str(DEMO_DATA_VERSION)),
                    licenses=[], images=coco_images, annotations=annotations,
                    categories=categories)
        _write_json(coco, osp.join(root, 'scenes', 'annotations', f'instances_{split}.json'))
        counts[split] = dict(images=len(coco_images), instances=len(annotations),
                             instances_per_class=per_class)
    return counts


def _count_files(folder: str, suffix: str = '.png') -> int:
    if not osp.isdir(folder):
        return 0
    return sum(1 for f in os.listdir(folder) if f.endswith(suffix))


def _abs_path(out_dir: str, rel: str) -> str:
    """``out_dir/rel`` for a manifest entry, refusing paths that leave ``out_dir``."""
    parts = rel.split('/') if isinstance(rel, str) else []
    if not parts or rel.startswith('/') or any(p in ('', '.', '..') for p in parts):
        raise ValueError(f'{osp.join(out_dir, MANIFEST)} lists {rel!r}, which is not a path '
                         'inside the demo folder: the manifest is not the builder\'s')
    return osp.join(out_dir, *parts)


def planned_files(labels: np.ndarray, split_idx: Dict[str, np.ndarray],
                  num_scenes: Dict[str, int]) -> List[str]:
    """Every file a build writes, relative to its folder (``/``-separated), manifest aside."""
    files = []
    for split in SPLITS:
        files += [f'cls/{split}/{DIGIT_CLASSES[labels[i]]}/{int(i):04d}.png'
                  for i in split_idx[split]]
    for split in SPLITS:
        for k in range(num_scenes[split]):
            files += [f'scenes/{sub}/{split}/{k:04d}.png' for sub in ('img_dir', 'ann_dir')]
        files.append(f'scenes/annotations/instances_{split}.json')
    return files


def is_complete(out_dir: str, params: Optional[dict] = None) -> bool:
    """Whether ``out_dir`` holds a finished build (with ``params``, if given).

    A build is complete when its manifest has the current :data:`DEMO_DATA_VERSION`, the
    same parameters, its counts (written last), and every file it lists exists (a build
    from before the manifest listed its files: every folder holds as many files as the
    manifest counts).
    """
    manifest = read_manifest(out_dir)
    if manifest is None or manifest.get('version') != DEMO_DATA_VERSION:
        return False
    if params is not None and manifest.get('params') != params:
        return False
    try:
        cls, scenes = manifest['counts']['cls'], manifest['counts']['scenes']
        if 'files' in manifest:
            return all(osp.isfile(_abs_path(out_dir, f)) for f in manifest['files'])
        for split in SPLITS:
            for name, n in cls[split].items():
                if _count_files(osp.join(out_dir, 'cls', split, name)) != n:
                    return False
            n = scenes[split]['images']
            for sub in ('img_dir', 'ann_dir'):
                if _count_files(osp.join(out_dir, 'scenes', sub, split)) != n:
                    return False
            if not osp.isfile(
                    osp.join(out_dir, 'scenes', 'annotations', f'instances_{split}.json')):
                return False
    except (KeyError, TypeError, AttributeError, ValueError):
        return False
    return True


def previous_build(out_dir: str) -> Optional[dict]:
    """The manifest of the builder's earlier build in ``out_dir``; None for a missing or
    empty folder.

    Raises:
        FileExistsError: ``out_dir`` holds anything else (a folder of the user's, or a
            build from before the manifest listed its files): it is never built over.
    """
    if not osp.exists(out_dir):
        return None
    if not osp.isdir(out_dir):
        raise NotADirectoryError(f'demo data folder {out_dir!r} is a file')
    manifest = read_manifest(out_dir)
    if manifest is not None and isinstance(manifest.get('files'), list):
        return manifest
    if not os.listdir(out_dir):
        return None
    what = ('holds a demo build from before the builder listed its files in '
            f'{MANIFEST}' if manifest is not None else
            f'is not empty and holds no {MANIFEST} of the demo-data builder')
    raise FileExistsError(
        f'demo data folder {osp.abspath(out_dir)!r} {what}: the demo data is only built into '
        'a missing or empty folder or over its own earlier build, and nothing else is ever '
        'deleted. Point data_root (or --out) at another folder, or empty this one yourself.')


def remove_build(out_dir: str, manifest: dict) -> None:
    """Delete exactly the files ``manifest`` lists, the folders they leave empty, and the
    manifest; anything else in ``out_dir`` stays."""
    paths = [_abs_path(out_dir, rel) for rel in manifest['files']]  # all checked first
    folders = set()
    for rel, path in zip(manifest['files'], paths):
        if osp.isfile(path):
            os.remove(path)
        parent = osp.dirname(rel)
        while parent:
            folders.add(parent)
            parent = osp.dirname(parent)
    for rel in sorted(folders, key=lambda f: f.count('/'), reverse=True):
        folder = _abs_path(out_dir, rel)
        if osp.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
    os.remove(osp.join(out_dir, MANIFEST))


def read_manifest(out_dir: str) -> Optional[dict]:
    """The manifest of a build in ``out_dir``, or None when there is none (or unreadable)."""
    path = osp.join(out_dir, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def build_demo_data(out_dir: str = 'data/demo', seed: int = 0, num_train_scenes: int = 300,
                    num_val_scenes: int = 60, val_ratio: float = 0.2,
                    force: bool = False) -> dict:
    """Build the embedded demo data into ``out_dir`` (see the module docstring).

    Nothing is rewritten when ``out_dir`` already holds a complete build with the same
    version and parameters (unless ``force``); an incomplete or different build of the
    builder's is removed (exactly the files its manifest lists) and built again. A folder
    that is neither missing, empty nor such a build is an error naming it.

    Args:
        out_dir (str): Root of the demo data. Defaults to ``'data/demo'``.
        seed (int): Seed of every random choice. Defaults to 0.
        num_train_scenes (int): Number of training scenes. Defaults to 300.
        num_val_scenes (int): Number of validation scenes. Defaults to 60.
        val_ratio (float): Fraction of each digit class used for validation (classification
            images and the digits drawn into validation scenes). Defaults to 0.2.
        force (bool): Rebuild even when a complete build exists. Defaults to False.

    Returns:
        dict: The manifest: ``version``, ``params``, ``files`` (every file written,
        relative to ``out_dir``), ``counts`` (``cls``: per split and class; ``scenes``: per
        split images, instances and instances per class), and ``skipped`` (True when an
        existing build was kept).

    Raises:
        FileExistsError: ``out_dir`` holds files the builder did not write.
    """
    for name, value in (('num_train_scenes', num_train_scenes),
                        ('num_val_scenes', num_val_scenes)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'{name} must be a positive integer, got {value!r}')
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    if not 0 < val_ratio < 1:
        raise ValueError(f'val_ratio must be in (0, 1), got {val_ratio}')
    params = dict(seed=int(seed), num_train_scenes=int(num_train_scenes),
                  num_val_scenes=int(num_val_scenes), val_ratio=float(val_ratio))
    if not force and is_complete(out_dir, params):
        return dict(read_manifest(out_dir), skipped=True)
    previous = previous_build(out_dir)  # raises for a folder the builder did not write

    images, labels = load_digit_images()
    split_idx = stratified_split(labels, val_ratio, seed)
    num_scenes = dict(train=int(num_train_scenes), val=int(num_val_scenes))
    files = planned_files(labels, split_idx, num_scenes)
    if previous is not None:
        remove_build(out_dir, previous)
    foreign = [f for f in files if osp.lexists(_abs_path(out_dir, f))]
    if foreign:
        raise FileExistsError(
            f'demo data folder {osp.abspath(out_dir)!r} holds {len(foreign)} file(s) the '
            f'builder would write but did not write itself (e.g. {foreign[0]!r}); move them '
            'away first')
    manifest = dict(version=DEMO_DATA_VERSION, source='sklearn.datasets.load_digits',
                    params=params, files=files)
    # listed before the first file is written: an interrupted build is ours to clean up
    _write_json(manifest, osp.join(out_dir, MANIFEST))
    cls_counts = _build_cls(out_dir, images, labels, split_idx, seed)
    scene_counts = _build_scenes(out_dir, images, labels, split_idx, seed, num_scenes)
    manifest['counts'] = dict(cls=cls_counts, scenes=scene_counts)
    _write_json(manifest, osp.join(out_dir, MANIFEST))  # the counts mark completion
    return dict(manifest, skipped=False)


#: Sub-folders of a demo build that configs read as ``data_root``.
DEMO_SUBSETS = ('cls', 'scenes')


def demo_roots_of(cfg) -> List[str]:
    """Demo builds a config reads: the parents of every dataloader ``data_root`` that ends
    in ``cls`` or ``scenes`` (the demo layout), e.g. ``data/demo`` for
    ``data/demo/scenes/``."""
    roots = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        while isinstance(dataset, dict) and 'data_root' not in dataset and \
                isinstance(dataset.get('dataset'), dict):
            dataset = dataset['dataset']  # RepeatDataset / ClassBalancedDataset wrappers
        root = dataset.get('data_root') if isinstance(dataset, dict) else None
        if isinstance(root, str) and root:
            parent, leaf = osp.split(osp.normpath(root))
            if leaf in DEMO_SUBSETS and parent not in roots:
                roots.append(parent)
    return roots


def ensure_demo_data(cfg, timeout: float = 600.) -> List[str]:
    """Build the demo data a config reads when it is missing or incomplete.

    Lets ``tools/train.py configs/demo/...`` run on a fresh clone. In a distributed launch
    only local rank 0 builds; the other ranks wait for its manifest.

    Args:
        cfg (Config | dict): A train or test config.
        timeout (float): Seconds a non-zero rank waits. Defaults to 600.

    Returns:
        list[str]: The demo roots that were built (empty when all were complete).
    """
    built = []
    for root in demo_roots_of(cfg):
        if is_complete(root):
            continue
        if int(os.environ.get('LOCAL_RANK', 0)) == 0:
            print(f'[sdae_mm] building the demo data in {root} (missing or incomplete)',
                  flush=True)
            build_demo_data(root)
            built.append(root)
            continue
        deadline = time.time() + timeout
        while not is_complete(root):
            if time.time() > deadline:
                raise TimeoutError(f'rank 0 did not finish the demo data in {root} within '
                                   f'{timeout:.0f} s')
            time.sleep(1.)
    return built


__all__ = [
    'DEMO_DATA_VERSION', 'DIGIT_CLASSES', 'SEG_CLASSES', 'DIGIT_PALETTE', 'SEG_PALETTE',
    'DEMO_SUBSETS', 'demo_roots_of', 'ensure_demo_data',
    'CLS_METAINFO', 'DET_METAINFO', 'SEG_METAINFO', 'build_demo_data', 'is_complete',
    'read_manifest', 'previous_build', 'remove_build', 'planned_files', 'load_digit_images',
    'stratified_split', 'digit_alpha', 'render_cls_image', 'render_scene'
]
