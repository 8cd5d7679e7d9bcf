"""Convert a pretraining (or fine-tuned) checkpoint into one library's backbone weights.

Reads sdae-mm/mmengine checkpoints, the official SdAE, dBOT, RC-MAE and MAE releases,
mmpretrain and timm ViTs (``sdae_mm.checkpoint``); see docs/checkpoints.md.

Example:
    .venv/bin/python tools/convert_checkpoint.py work_dirs/sdae_vit-b_300e/epoch_300.pth \\
        work_dirs/sdae_vit-b_300e/backbone_mmseg.pth --to mmseg --img-size 512
"""
import argparse
import os.path as osp
import sys

# the library's choices (tests check they agree with sdae_mm.checkpoint), spelled out here
# so that --help answers without importing torch and the OpenMMLab stack
TARGETS = ('mmpretrain', 'mmseg', 'mmdet', 'timm')
ALGORITHMS = ('sdae', 'dbot', 'rc_mae', 'mae')
BRANCHES = ('student', 'teacher')
FORMATS = ('sdae-mm', 'mmpretrain', 'official-sdae', 'official-dbot', 'official-rc-mae',
           'official-mae', 'timm')

DESCRIPTION = """\
Write one ViT encoder of SRC, without prefix, in the names of the target library:
  mmpretrain, mmdet, mmseg  mmpretrain VisionTransformer names (= mmseg MAE, PlainViT, ViTDet)
  timm                      timm VisionTransformer names (strict load_state_dict)
SRC may be an sdae-mm/mmengine checkpoint, an official SdAE ({'model', 'model_teacher'}),
dBOT or MAE ({'model'}) or RC-MAE ({'student', 'teacher', ...}) file, an mmpretrain
checkpoint or a timm state dict; fine-tuned ones keep their head for mmpretrain (a whole
ImageClassifier: backbone.* and head.fc.*) and timm. The output is {'state_dict', 'meta'}.
"""

EPILOG = """\
default --branch (what each method's own fine-tuning loads):
  sdae    student  (main_finetune.py --model_mode default 'model')
  dbot    student  (main_finetune.py loads checkpoint['model']; the teacher is a
                    separate file, checkpoint-teacher-<epoch>.pth)
  rc_mae  teacher  (run_finetune.py --checkpoint_key default 'teacher')
  mae     student  (the only encoder)
DST is never SRC, and an existing DST is replaced only with --force; the file is written
to a temporary name beside DST and renamed, so a failed write leaves no partial DST.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('dst', help='output file (must differ from SRC)')
    parser.add_argument('--to', required=True, choices=TARGETS, dest='target',
                        help='naming of the target backbone')
    parser.add_argument('--branch', choices=BRANCHES, default=None,
                        help='encoder to export (default: see below)')
    parser.add_argument('--img-size', type=int, default=None,
                        help='input size of the target; the position embedding is resized '
                        '(bicubic, cls position kept). Default: the pretraining size')
    parser.add_argument('--algo', default='auto', choices=('auto', ) + ALGORITHMS,
                        help='pretraining method (sets the default branch)')
    parser.add_argument('--format', default='auto', choices=('auto', ) + FORMATS,
                        dest='fmt', help='layout of SRC (default: detected)')
    parser.add_argument('--no-head', action='store_true',
                        help='drop the classification head of a fine-tuned SRC')
    parser.add_argument('--force', action='store_true', help='replace an existing DST')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from sdae_mm.checkpoint import (CheckpointReadError, CheckpointWriteError,
                                    convert_checkpoint_dict, read_checkpoint, save_checkpoint)
    try:
        converted, meta, notes = convert_checkpoint_dict(
            read_checkpoint(args.src), args.target, fmt=args.fmt, path=args.src,
            branch=args.branch, algo=None if args.algo == 'auto' else args.algo,
            img_size=args.img_size, keep_head=not args.no_head)
        meta['source'] = osp.abspath(args.src)
        save_checkpoint({'state_dict': converted, 'meta': meta}, args.dst,
                        sources=[args.src], force=args.force)
    except (KeyError, ValueError, FileNotFoundError, CheckpointReadError,
            CheckpointWriteError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        return 1
    m = meta
    print(f'source: {args.src} ({m["format"]}: {m["format_source"]})')
    print(f"algorithm: {m['algorithm']}; branch: {m['branch']} ({m['branch_source']})")
    print(f"encoder: {m['num_layers']} blocks, embed_dims {m['embed_dims']}, mlp "
          f"{m['mlp_hidden']}, patch {m['patch_size']}; position embedding "
          f"{m['pretrain_img_size']} -> {m['img_size']} px ({m['grid'][0]}x{m['grid'][1]} "
          'patches)')
    if m['dropped']:
        print(f"not exported (pretraining/classifier parts): {len(m['dropped'])} tensors")
    print(f'wrote {len(converted)} tensors in {args.target} naming to {args.dst}')
    print('the target model initialises itself / leaves unused:')
    for note in notes:
        print(f'  - {note}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
