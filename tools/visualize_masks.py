"""Draw the masks a pretraining config's pipeline produces: one PNG per image with the
image, the visible patches the student sees, and each teacher fold (SdAE).

Example::

    python tools/visualize_masks.py configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py \
        --out-dir work_dirs/demo/masks --num-images 4
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import set_random_seed  # noqa: E402
from PIL import Image  # noqa: E402

import sdae_mm  # noqa: E402,F401
from sdae_mm.visualization import render_mask_views  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise masks and teacher folds')
    parser.add_argument('config', help='pretraining config')
    parser.add_argument('--out-dir', default='work_dirs/masks', help='where to write PNGs')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', type=int, default=4, help='pixel upscaling of the PNG')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import DATASETS, TRANSFORMS
    set_random_seed(args.seed)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    masker = None
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] in ('MultiFoldMaskGenerator', 'RandomPatchMaskGenerator'):
            masker = TRANSFORMS.build(t)
    if masker is None:
        raise KeyError(f'{args.config}: the pipeline has no mask generator')
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for i in range(min(args.num_images, len(dataset))):
        data = dataset[i]
        img = data['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]  # BGR CHW -> RGB HWC
        ids = np.asarray(data['data_samples'].ids_shuffle)
        strip = render_mask_views(
            np.ascontiguousarray(img), ids, masker.patch_size, masker.num_visible,
            getattr(masker, 'num_folds', 0), getattr(masker, 'fold_size', None))
        pil = Image.fromarray(strip)
        pil = pil.resize((pil.width * args.scale, pil.height * args.scale), Image.NEAREST)
        path = osp.join(args.out_dir, f'mask_{i:03d}.png')
        pil.save(path)
        written.append(path)
    print(f'wrote {len(written)} images to {args.out_dir} '
          '(panels: image | visible patches | teacher fold 1..k)')
    return written


if __name__ == '__main__':
    main()
