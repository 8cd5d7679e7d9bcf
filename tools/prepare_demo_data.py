"""Build the embedded demo data (scikit-learn digits) in seconds, offline.

Usage::

    python tools/prepare_demo_data.py [--out data/demo] [--seed 0] [--force]

Writes ``cls/`` (mmpretrain folders), ``scenes/`` (COCO instances for mmdet and semantic
maps for mmseg) and ``manifest.json``; see ``tools/dataset_converters/demo_data.py``. A
complete build with the same parameters is kept unless ``--force`` is given.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
# numpy, Pillow, scikit-learn and pycocotools only: no OpenMMLab import, no mmcv needed
from tools.dataset_converters import demo_data  # noqa: E402


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
