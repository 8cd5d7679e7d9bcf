"""Convert an sdae-mm pretraining checkpoint into backbone weights for fine-tuning.

Example:
    .venv/bin/python tools/convert_checkpoint.py work_dirs/sdae_vit-b_300e/epoch_300.pth \\
        work_dirs/sdae_vit-b_300e/backbone_mmseg.pth --to mmseg --img-size 512
"""
import argparse
import os
import os.path as osp
import sys

# the library's TARGETS and ALGORITHMS (tests check they agree), spelled out here so that
# --help answers without importing torch and the OpenMMLab stack
TARGETS = ('mmpretrain', 'mmseg', 'mmdet', 'timm')
ALGORITHMS = ('sdae', 'dbot', 'rc_mae', 'mae')

DESCRIPTION = """\
Take an sdae-mm pretraining checkpoint (student encoder under 'backbone.', teacher
encoder under 'teacher.'; an mmpretrain MAE checkpoint has only 'backbone.') and write
one encoder's weights, without prefix, in the naming of the target backbone:
  mmpretrain, mmdet  mmpretrain VisionTransformer names
  mmseg              mmseg 1.2.2 MAE backbone names
  timm               timm VisionTransformer names; loads with
                     timm.create_model('vit_base_patch16_224', num_classes=0) (or S/L)
                     and load_state_dict(..., strict=True)
The output is {'state_dict': ..., 'meta': ...}. Load it with init_cfg=dict(
type='Pretrained', checkpoint=DST) and no prefix, or timm.models.load_checkpoint.
"""

EPILOG = """\
default --branch (what each paper fine-tunes):
  sdae    student  (official main_finetune.py: --model_mode defaults to 'model')
  dbot    student  (official main_finetune.py loads checkpoint['model'] of the
                    pretraining checkpoint; the teacher is saved separately)
  rc_mae  teacher  (official run_finetune.py: --checkpoint_key defaults to 'teacher')
  mae     student  (the only encoder)
With --algo auto the method is read from the checkpoint's meta (config model type),
else from its keys ('teacher_neck.' = RC-MAE; 'teacher.' = SdAE or dBOT, student).
A missing, unexpected or mis-shaped key is an error naming the key.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='pretraining checkpoint (mmengine format)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--to', required=True, choices=TARGETS, dest='target',
                        help='naming of the target backbone')
    parser.add_argument('--branch', choices=('teacher', 'student'), default=None,
                        help='encoder to export (default: see below)')
    parser.add_argument('--img-size', type=int, default=None,
                        help='input size of the target; the position embedding is '
                        'interpolated (bicubic, cls position kept). The patch size '
                        'is read from the weights. Default: keep the pretraining size')
    parser.add_argument('--algo', default='auto', choices=('auto', ) + ALGORITHMS,
                        help='pretraining method (sets the default branch)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    try:
        from sdae_mm.utils.checkpoint import convert_state_dict, load_checkpoint_dict
    except ImportError:  # run from a source tree without `pip install -e .`
        sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
        from sdae_mm.utils.checkpoint import convert_state_dict, load_checkpoint_dict
    try:
        state_dict, meta = load_checkpoint_dict(args.src)
        converted, out_meta, notes = convert_state_dict(
            state_dict, meta, target=args.target, branch=args.branch, algo=args.algo,
            img_size=args.img_size)
    except (KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        return 1
    out_meta['source'] = osp.abspath(args.src)
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save({'state_dict': converted, 'meta': out_meta}, args.dst)

    m = out_meta
    print(f'source: {args.src}')
    print(f"algorithm: {m['algorithm']} ({m['algorithm_source']}); branch: "
          f"{m['branch']} ({m['branch_source']}, keys '{m['source_prefix']}*')")
    print(f"encoder: {m['num_layers']} blocks, embed_dims {m['embed_dims']}, "
          f"mlp {m['mlp_hidden']}, patch {m['patch_size']}; position embedding "
          f"{m['pretrain_img_size']} -> {m['img_size']} px "
          f"({m['grid'][0]}x{m['grid'][1]} patches)")
    print(f"wrote {len(converted)} tensors in {args.target} naming to {args.dst}")
    print('the target model initialises itself / leaves unused:')
    for note in notes:
        print(f'  - {note}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
