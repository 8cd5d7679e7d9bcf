"""Images per second of a config's training data pipeline, beside the official loader's.

Ours goes through the config's real dataset, sampler, pipeline and collate (built by
mmengine's ``Runner.build_dataloader``); the official loader of MAE / SdAE / dBOT / RC-MAE
is re-expressed with torchvision: ``ImageFolder``, ``RandomResizedCrop(size, scale,
bicubic)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` (its masks are drawn on
the GPU), with the size and scale of the config's crop.

- per core: one process, one thread; rounds of one batch of each, in a random order per
  round; the speed-up is the median of the per-round ratios (the machine's speed drifts
  more than the difference between two rounds).
- with ``--workers K``: each loader with K worker processes, one after the other in
  alternating rounds, timed after its first batches.
- pixel change of the fast crop: PSNR of ``DecodeRandomResizedCrop`` against its
  ``exact=True`` path on the same crops.

Without ``--images`` it writes ``--synthetic N`` JPEGs with an ImageNet-like spread of
sizes and qualities (see :func:`imagenet_like_size`) into a temporary folder.

Example::

    python tools/analysis_tools/benchmark_pipeline.py \\
        configs/_base_/datasets/imagenet_bs96_sdae.py --synthetic 500 --workers 4 --json F
"""
import argparse
import json
import os
import os.path as osp
import random
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.analysis_tools.benchmark_step import cpu_model_name, write_json  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_like_size(rng: np.random.Generator):
    """A (width, height, JPEG quality) drawn from an ImageNet-like spread.

    An approximation of ImageNet-1k's training images (most are at most 500 px on their
    long side, a minority larger, typical photo aspect ratios, mostly landscape): the long
    side is 500 px with probability 0.8, log-uniform in [160, 500) with 0.12 and in
    (500, 1600] with 0.08 (mean about 480 x 410 px, close to ImageNet's); long / short is
    4/3 (0.5), 3/2 (0.2), 1 (0.1) or uniform in [1, 2] (0.2); landscape with probability
    0.75; quality uniform in 75..96.
    """
    u = rng.random()
    if u < 0.8:
        long_side = 500
    elif u < 0.92:
        long_side = int(np.exp(rng.uniform(np.log(160), np.log(500))))
    else:
        long_side = int(np.exp(rng.uniform(np.log(501), np.log(1600))))
    aspect = rng.choice([4 / 3, 3 / 2, 1.0, rng.uniform(1, 2)], p=[0.5, 0.2, 0.1, 0.2])
    short_side = max(16, int(round(long_side / aspect)))
    w, h = (long_side, short_side) if rng.random() < 0.75 else (short_side, long_side)
    return w, h, int(rng.integers(75, 97))


def synthetic_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Photo-like content: coloured multi-scale noise (amplitude ~ frequency^-0.4) plus
    fine grain, which compresses like a photo (about 100 KB at 500 x 375, quality 90)."""
    img = np.zeros((height, width, 3), np.float32)
    longest = max(width, height)
    for k in range(1, 12):
        cells = 2 ** k
        gh, gw = max(2, cells * height // longest), max(2, cells * width // longest)
        if gh > height or gw > width:
            break
        mix = np.eye(3, dtype=np.float32) + 0.3 * rng.standard_normal((3, 3)).astype(
            np.float32)
        small = rng.standard_normal((gh, gw, 3)).astype(np.float32) @ mix
        layer = np.stack([
            np.asarray(Image.fromarray(small[..., c]).resize((width, height), Image.BICUBIC))
            for c in range(3)
        ], -1)
        img += layer * cells**-0.4
    img = (img - img.mean()) / (img.std() + 1e-6)
    img += 0.3 * rng.standard_normal((height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(img * 50 + 115, 0, 255).astype(np.uint8))


def make_synthetic_jpegs(root: str, num: int, seed: int = 0, size=None, quality=None):
    """Write ``num`` JPEGs to ``root/train/synthetic/`` (an ImageFolder layout).

    Args:
        root (str): Dataset root.
        num (int): Number of images.
        seed (int): Seed of sizes and content.
        size (tuple[int, int], optional): Fixed (width, height) instead of the spread.
        quality (int, optional): Fixed JPEG quality instead of the spread.

    Returns:
        dict: mean width, height, megapixels and file size (KB) of the images.
    """
    rng = np.random.default_rng(seed)
    folder = osp.join(root, 'train', 'synthetic')
    os.makedirs(folder, exist_ok=True)
    stats = []
    for i in range(num):
        w, h, q = imagenet_like_size(rng)
        w, h = size or (w, h)
        q = quality or q
        path = osp.join(folder, f'{i:06d}.JPEG')
        synthetic_image(rng, w, h).save(path, 'JPEG', quality=q)
        stats.append((w, h, w * h / 1e6, osp.getsize(path) / 1e3))
    mean = np.mean(stats, axis=0)
    return dict(num=num, mean_width=round(float(mean[0]), 1),
                mean_height=round(float(mean[1]), 1), mean_megapixels=round(float(mean[2]), 4),
                mean_kb=round(float(mean[3]), 1))


def crop_entry(cfg: Config) -> dict:
    """The pipeline's random resized crop (ours or mmpretrain's)."""
    for t in cfg.train_dataloader.dataset.pipeline:
        if 'RandomResizedCrop' in t['type']:
            return t
    raise ValueError('the config has no RandomResizedCrop in its training pipeline')


def build_loaders(cfg: Config, root: str, batch_size: int, workers: int):
    """(ours, official) data loaders over the images under ``root/train``."""
    from torchvision import datasets, transforms
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.dataset = cfg.train_dataloader.dataset.copy()
    loader_cfg.dataset.data_root = root
    loader_cfg.update(batch_size=batch_size, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=False)
    ours = Runner.build_dataloader(loader_cfg, seed=0)

    crop = crop_entry(cfg)
    size = crop.get('scale', 224)
    size = (size, size) if isinstance(size, int) else (size[1], size[0])
    scale = tuple(crop.get('crop_ratio_range', (0.08, 1.0)))
    official_tf = transforms.Compose([
        transforms.RandomResizedCrop(size, scale=scale,
                                     interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    official_set = datasets.ImageFolder(osp.join(root, 'train'), transform=official_tf)
    official = torch.utils.data.DataLoader(official_set, batch_size=batch_size, shuffle=True,
                                           num_workers=workers, drop_last=True,
                                           persistent_workers=workers > 0)
    return ours, official


def _endless(sampler):
    while True:
        yield from sampler


def per_core(ours, official, rounds: int) -> dict:
    """Paired rounds of one batch each, in the main process."""
    batch = ours.batch_size
    our_indices, off_indices = _endless(ours.sampler), _endless(official.sampler)

    def run_ours():
        ours.collate_fn([ours.dataset[next(our_indices)] for _ in range(batch)])

    def run_official():
        official.collate_fn([official.dataset[next(off_indices)] for _ in range(batch)])

    runs = dict(ours=run_ours, official=run_official)
    for fn in runs.values():  # warm-up (imports, caches)
        fn()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        order = list(runs)
        random.shuffle(order)
        for name in order:
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    ratios = sorted(o / u for o, u in zip(times['official'], times['ours']))
    return dict(
        images_per_round=batch, rounds=rounds,
        ours_img_s=round(batch / statistics.median(times['ours']), 1),
        official_img_s=round(batch / statistics.median(times['official']), 1),
        speedup_median=round(statistics.median(ratios), 3),
        speedup_quartiles=[round(float(q), 3) for q in np.quantile(ratios, [0.25, 0.75])])


def with_workers(ours, official, rounds: int, batches: int, warmup: int) -> dict:
    """Each loader with its workers, alternately; img/s after ``warmup`` batches."""
    rates = dict(ours=[], official=[])
    for r in range(rounds):
        for name in (('ours', 'official') if r % 2 == 0 else ('official', 'ours')):
            loader = ours if name == 'ours' else official
            it = _endless(loader)  # persistent workers: epochs follow each other directly
            for _ in range(warmup):
                next(it)
            t0 = time.perf_counter()
            for _ in range(batches):
                next(it)
            rates[name].append(batches * loader.batch_size / (time.perf_counter() - t0))
            it.close()
    out = {f'{k}_img_s': round(statistics.median(v), 1) for k, v in rates.items()}
    out.update(workers=ours.num_workers, rounds=rounds, timed_batches=batches,
               speedup=round(out['ours_img_s'] / out['official_img_s'], 3))
    return out


def crop_psnr(cfg: Config, paths, seed: int = 0) -> dict:
    """PSNR of the fast crop against its exact path on the same crops."""
    from mmpretrain.registry import TRANSFORMS
    entry = crop_entry(cfg)
    if entry['type'] != 'DecodeRandomResizedCrop':
        return dict(skipped=f'the config crops with {entry["type"]}')
    fast = TRANSFORMS.build(dict(entry, exact=False))
    exact = TRANSFORMS.build(dict(entry, exact=True))
    psnrs, drafted = [], 0
    for i, path in enumerate(paths):
        np.random.seed(seed + i)
        a = fast(dict(img_path=path))['img'].astype(np.float64)
        np.random.seed(seed + i)
        b = exact(dict(img_path=path))['img'].astype(np.float64)
        mse = np.mean((a - b)**2)
        if mse > 0:
            drafted += 1
            psnrs.append(10 * np.log10(255.0**2 / mse))
    res = dict(crops=len(paths), crops_changed=drafted)
    if psnrs:
        res.update(psnr_db_mean=round(float(np.mean(psnrs)), 2),
                   psnr_db_min=round(float(np.min(psnrs)), 2),
                   psnr_db_median=round(float(np.median(psnrs)), 2))
    return res


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--images', help='dataset root holding train/<class>/<images>')
    src.add_argument('--synthetic', type=int, default=256,
                     help='number of synthetic JPEGs when --images is not given')
    parser.add_argument('--size', type=int, nargs=2, default=None, metavar=('W', 'H'),
                        help='fixed size of the synthetic JPEGs')
    parser.add_argument('--quality', type=int, default=None,
                        help='fixed quality of the synthetic JPEGs')
    parser.add_argument('--batch-size', type=int, default=None,
                        help="images per round (default: the config's batch size)")
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--workers', type=int, default=0,
                        help='also time both loaders with this many worker processes')
    parser.add_argument('--worker-batches', type=int, default=20)
    parser.add_argument('--exact', action='store_true',
                        help="time DecodeRandomResizedCrop's exact mode (full-size decode)")
    parser.add_argument('--decode-backend', choices=['auto', 'simplejpeg', 'pillow'],
                        help="DecodeRandomResizedCrop's decoder (default: the config's)")
    parser.add_argument('--resize-backend', choices=['torch', 'pillow'],
                        help="DecodeRandomResizedCrop's resampler (default: the config's)")
    parser.add_argument('--psnr-images', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    if args.exact:
        crop_entry(cfg)['exact'] = True
    for key in ('decode_backend', 'resize_backend'):
        if getattr(args, key):
            crop_entry(cfg)[key] = getattr(args, key)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    import sdae_mm  # noqa: F401  (registers the transforms and the sampler)

    tmp = None
    result = dict(config=args.config, crop=dict(crop_entry(cfg)),
                  cpu=f'{cpu_model_name()} ({os.cpu_count()} logical)',
                  torch=torch.__version__, pillow=Image.__version__,
                  simplejpeg=_version('simplejpeg'))
    if args.images:
        root = args.images
        result['images'] = root
    else:
        tmp = tempfile.TemporaryDirectory()
        root = tmp.name
        result['synthetic'] = make_synthetic_jpegs(root, args.synthetic, args.seed,
                                                   args.size, args.quality)
    try:
        batch = args.batch_size or cfg.train_dataloader.batch_size
        ours, official = build_loaders(cfg, root, batch, 0)
        result['per_core'] = per_core(ours, official, args.rounds)
        paths = [p for p, _ in official.dataset.samples[:args.psnr_images]]
        if not args.exact:
            result['psnr'] = crop_psnr(cfg, paths, args.seed)
        if args.workers:
            ours, official = build_loaders(cfg, root, batch, args.workers)
            result['workers'] = with_workers(ours, official, rounds=2,
                                             batches=args.worker_batches, warmup=2)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(result, args.json)
    return result


def _version(package: str) -> str:
    try:
        return __import__(package).__version__
    except ImportError:
        return 'not installed'


if __name__ == '__main__':
    main()
