"""Weighted kNN accuracy of a pretrained ViT on frozen features (DINO's protocol).

The classification config gives the backbone architecture, the normalisation and the data
(training set = memory bank, test set = queries, both with the test pipeline); the
linear-probe configs are the natural choice. The feature is the class token after the
final norm (the representation the MAE-family linear probe reads); ``--feature avg``
averages the patch tokens instead.

Examples::

    # a converted backbone (tools/convert_checkpoint.py --to mmpretrain)
    python tools/knn_eval.py configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py \\
        --checkpoint work_dirs/demo/sdae/backbone_mmpretrain.pth --json work_dirs/demo/knn.json
    # the same protocol on a randomly initialised backbone
    python tools/knn_eval.py configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py --random-init
    # ImageNet, 8 GPUs (features are gathered across processes)
    torchrun --nproc_per_node 8 tools/knn_eval.py \\
        configs/benchmarks/classification/vit-base-p16_linear-8xb512-coslr-90e_in1k.py \\
        --checkpoint work_dirs/sdae_vit-b_300e/epoch_300.pth --launcher pytorch
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import sdae_mm  # noqa: E402,F401  (compat + registration)
from mmengine.config import Config, DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Weighted kNN (k=20, T=0.07) on frozen ViT features',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Without --checkpoint or --random-init, the checkpoint of the config '
        '(model.backbone.init_cfg.checkpoint) is evaluated.')
    parser.add_argument('config', help='mmpretrain classification config (architecture, '
                        'normalisation, data)')
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--checkpoint', help='converted backbone (--to mmpretrain) or '
                     'pretraining checkpoint (backbone./teacher. keys)')
    src.add_argument('--random-init', action='store_true',
                     help='evaluate a randomly initialised backbone (the baseline)')
    parser.add_argument('--branch', choices=('student', 'teacher'), default=None,
                        help='encoder of a pretraining checkpoint (default: the one the '
                        "method's paper fine-tunes)")
    parser.add_argument('--data-root', help='replaces data_root of the datasets')
    parser.add_argument('--k', type=int, default=20, help='number of neighbours')
    parser.add_argument('--temperature', type=float, default=0.07,
                        help='vote weight exp(similarity / T)')
    parser.add_argument('--feature', choices=('cls', 'avg'), default='cls',
                        help='class token after the final norm, or mean of patch tokens')
    parser.add_argument('--batch-size', type=int, default=128, help='images per forward')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--max-train', type=int, help='use the first N training images')
    parser.add_argument('--max-val', type=int, help='use the first N query images')
    parser.add_argument('--seed', type=int, default=0, help='seed of --random-init')
    parser.add_argument('--device', help='cpu, cuda, ... (default: accelerator if any)')
    parser.add_argument('--json', '--out', dest='out', metavar='JSON',
                        help='write the result to this JSON file (--out: former name)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def resolve_checkpoint(cfg: Config, args) -> str:
    """The checkpoint to evaluate (None for a random initialisation)."""
    if args.random_init:
        return None
    if args.checkpoint:
        return args.checkpoint
    init_cfg = cfg.model.backbone.get('init_cfg') or {}
    if isinstance(init_cfg, dict) and init_cfg.get('checkpoint'):
        return init_cfg['checkpoint']
    raise ValueError('give --checkpoint or --random-init: the config has no '
                     'model.backbone.init_cfg.checkpoint')


def main(argv=None):
    args = parse_args(argv)
    from mmengine.dist import get_rank, init_dist

    from sdae_mm.evaluation.knn import knn_eval_checkpoint
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.launcher != 'none':
        import torch
        if torch.cuda.is_available() or args.launcher != 'pytorch':
            init_dist(args.launcher)
        else:  # CPU processes (mmengine's init_dist would select a CUDA device)
            torch.distributed.init_process_group(backend='gloo')
    checkpoint = resolve_checkpoint(cfg, args)
    result = knn_eval_checkpoint(
        checkpoint, cfg, data_root=args.data_root, k=args.k, temperature=args.temperature,
        feature=args.feature, max_train=args.max_train, max_val=args.max_val,
        batch_size=args.batch_size, num_workers=args.num_workers, branch=args.branch,
        device=args.device, seed=args.seed)
    result['config'] = args.config
    if get_rank() == 0:
        what = 'random init' if checkpoint is None else checkpoint
        print(f"kNN (k={result['k']}, T={result['temperature']}, {result['feature']} "
              f"feature) of {what}: top-1 {result['top1']:.2f} %, top-5 "
              f"{result['top5']:.2f} % ({result['num_val']} queries, "
              f"{result['num_train']} training images, {result['seconds']:.0f} s)",
              flush=True)
        if args.out:
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w') as f:
                json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
