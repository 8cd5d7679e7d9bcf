"""Print the recipe a config *effectively* trains with on a given number of GPUs.

Builds the Runner exactly as ``tools/train.py`` does (the model on the ``meta`` device: no
weights are allocated, no data is read), applies the Runner's own lr scaling for that
world size (gradient accumulation counted) and reads every value back from the built
objects: total batch, optimizer steps per epoch and in all, the lr (base, per group, per
layer under layer decay) and weight decay of every parameter group, the warm-up, the lr
and the teacher momentum at 0/25/50/75/100 % of training, dBOT's stage switches, drop
path per block, AMP and gradient clipping. Logic: ``sdae_mm/engine/recipe.py``.

Examples::

    python tools/analysis_tools/print_recipe.py \\
        configs/rc_mae/rc_mae_vit-base-p16_8xb256-accum2-amp-coslr-1600e_in1k.py
    python tools/analysis_tools/print_recipe.py CONFIG --gpus 4          # what 4 GPUs give
    python tools/analysis_tools/print_recipe.py CONFIG --nodes 2 --json recipe.json
    python tools/analysis_tools/print_recipe.py CONFIG --dataset-size 1438   # other data
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import sdae_mm  # noqa: E402,F401  (registers modules, applies compat)
from mmengine.config import Config, DictAction  # noqa: E402

from sdae_mm.engine.recipe import effective_recipe, format_recipe  # noqa: E402
from sdae_mm.utils.cfg_options import merge_cfg_options  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Print the effective training recipe of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--gpus', type=int, default=None,
                        help='number of GPUs (world size); default: what the config name '
                        'declares (8xb96 -> 8), else auto_scale_lr.base_batch_size / batch')
    parser.add_argument('--nodes', type=int, default=None,
                        help='nodes of 8 GPUs (sets --gpus to 8 x NODES when it is not given)')
    parser.add_argument('--dataset-size', type=int, default=None,
                        help='training images; default: ImageNet-1k 1,281,167, ADE20K 20,210 '
                        'or COCO train2017 117,266, read from the dataset config')
    parser.add_argument('--json', metavar='FILE', help='also write the recipe as JSON')
    parser.add_argument('--device', choices=['meta', 'cpu'], default='meta',
                        help="build the model on 'meta' (default, no memory) or the CPU")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    for name in ('gpus', 'nodes', 'dataset_size'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1, got {value}')
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)  # as tools/train.py: unknown keys are an error
    recipe = effective_recipe(cfg, gpus=args.gpus, nodes=args.nodes,
                              dataset_size=args.dataset_size, device=args.device)
    print(format_recipe(recipe))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(recipe, f, indent=1)
    return recipe


if __name__ == '__main__':
    main()
