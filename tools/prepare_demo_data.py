"""Build the embedded demo data (scikit-learn digits) in seconds, offline.

Usage::

    python tools/prepare_demo_data.py [--out data/demo] [--seed 0] [--force]

Writes ``cls/`` (mmpretrain folders), ``scenes/`` (COCO instances for mmdet and semantic
maps for mmseg) and ``manifest.json``; see :mod:`sdae_mm.datasets.demo_data`. A complete
build with the same parameters is kept unless ``--force`` is given.
"""
import argparse
import importlib.util
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_demo_data_module():
    """Import ``sdae_mm.datasets.demo_data`` by its path.

    ``import sdae_mm`` registers every model and so imports mmpretrain, mmseg and mmdet,
    which takes longer than building the data and needs a working mmcv; the builder itself
    only needs numpy, Pillow, scikit-learn and pycocotools, so it is loaded on its own.
    """
    path = osp.join(REPO_ROOT, 'sdae_mm', 'datasets', 'demo_data.py')
    spec = importlib.util.spec_from_file_location('sdae_mm_demo_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Build the embedded demo data from scikit-learn digits')
    parser.add_argument('--out', default='data/demo', help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--num-train-scenes', type=int, default=300,
                        help='number of training scenes')
    parser.add_argument('--num-val-scenes', type=int, default=60,
                        help='number of validation scenes')
    parser.add_argument('--force', action='store_true',
                        help='rebuild even if a complete build exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    demo_data = load_demo_data_module()
    summary = demo_data.build_demo_data(args.out, seed=args.seed,
                                        num_train_scenes=args.num_train_scenes,
                                        num_val_scenes=args.num_val_scenes, force=args.force)
    counts = summary['counts']
    verb = 'kept the complete build in' if summary['skipped'] else 'wrote'
    print(f'{verb} {osp.abspath(args.out)} (demo data version {summary["version"]}, '
          f'seed {summary["params"]["seed"]})')
    for split in demo_data.SPLITS:
        n_cls = sum(counts['cls'][split].values())
        print(f'  cls/{split}: {n_cls} images of 64x64 in 10 class folders')
    for split in demo_data.SPLITS:
        sc = counts['scenes'][split]
        print(f'  scenes/{split}: {sc["images"]} images of 128x128 (img_dir/{split}, '
              f'ann_dir/{split}), {sc["instances"]} instances '
              f'(annotations/instances_{split}.json)')
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
