"""Draw the masks a pretraining config's pipeline produces: one PNG per image
(``mask_<n>_<class folder>.png``) with titled panels: the image and its class folder, the
visible patches the student sees, and each teacher fold (SdAE). The images are taken from
classes spread over the class folders where the data has them.

Example::

    .venv/bin/python tools/visualize_masks.py configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py \\
        --out-dir work_dirs/demo/masks --num-images 4
"""
import argparse
import os
import os.path as osp
import re
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402  (light: --help answers at once)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualise masks and teacher folds')
    parser.add_argument('config', help='pretraining config')
    parser.add_argument('--out-dir', default='work_dirs/masks', help='where to write PNGs')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', type=int, default=4, help='pixel upscaling of the PNG')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (e.g. '
                        'train_dataloader.dataset.data_root=DIR)')
    return parser.parse_args(argv)


def pick_indices(paths, num):
    """Indices of ``num`` images from classes spread over the class folders (the parent
    folder of each path), so that the pictures show several classes; evenly spaced
    images when the data has no class folders."""
    by_class = {}
    for i, path in enumerate(paths):
        by_class.setdefault(osp.basename(osp.dirname(path)), []).append(i)
    if len(by_class) < 2:
        step = max(1, len(paths) // max(1, num))
        return list(range(0, len(paths), step))[:num]
    classes = sorted(by_class)
    picked = []
    while len(picked) < min(num, len(paths)):
        k = min(num - len(picked), len(classes))  # classes still to visit in this round
        for j in range(k):
            members = by_class[classes[round(j * (len(classes) - 1) / max(1, k - 1))]]
            rest = [i for i in members if i not in picked]
            if rest:
                picked.append(rest[0])
        classes = [c for c in classes if any(i not in picked for i in by_class[c])]
    return picked


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import sdae_mm  # noqa: F401  (registers the mask generators)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from PIL import Image

    from sdae_mm.visualization import (add_panel_titles, mask_view_titles,
                                       render_mask_views)
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
    paths = [dataset.get_data_info(i).get('img_path', '') for i in range(len(dataset))]
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    gap = 2
    for n, i in enumerate(pick_indices(paths, args.num_images)):
        data = dataset[i]
        img = data['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]  # BGR CHW -> RGB HWC
        ids = np.asarray(data['data_samples'].ids_shuffle)
        num_folds = getattr(masker, 'num_folds', 0)
        fold_size = getattr(masker, 'fold_size', None)
        strip = render_mask_views(np.ascontiguousarray(img), ids, masker.patch_size,
                                  masker.num_visible, num_folds, fold_size, gap=gap)
        pil = Image.fromarray(strip)
        pil = pil.resize((pil.width * args.scale, pil.height * args.scale), Image.NEAREST)
        folder = osp.basename(osp.dirname(paths[i]))
        titles = mask_view_titles(len(ids), masker.num_visible, num_folds, fold_size,
                                  image_title=f'class {folder}' if folder else 'image')
        out = add_panel_titles(np.asarray(pil), titles, img.shape[1] * args.scale,
                               gap * args.scale)
        suffix = '_' + re.sub(r'[^\w.-]', '_', folder) if folder else ''
        path = osp.join(args.out_dir, f'mask_{n:03d}{suffix}.png')
        Image.fromarray(out).save(path)
        written.append(path)
    print(f'wrote {len(written)} images to {args.out_dir} '
          '(panels: image | visible patches | teacher fold 1..k, titled)')
    return written


if __name__ == '__main__':
    main()
