"""Train a model from a config with mmengine's Runner (pretraining or transfer).

Works for mmpretrain, mmseg and mmdet configs alike: the scope comes from the config's
``default_scope``, and ``sdae_mm`` is imported so all its modules are registered.

Examples::

    .venv/bin/python tools/train.py configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py
    .venv/bin/python tools/train.py CONFIG --resume            # resume from the latest checkpoint
    bash tools/dist_train.sh configs/sdae_vit-b_300e.py 8
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402  (light: --help answers at once)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir '
        'when no path is given')
    parser.add_argument('--amp', action='store_true', help='enable mixed precision (fp16)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size')
    parser.add_argument('--strict-recipe', action='store_true',
                        help='refuse to start when the effective total batch (GPUs x batch x '
                        'accumulation) differs from the one the config declares')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value (e.g. '
        'train_dataloader.batch_size=32 model.backbone.drop_path_rate=0.1)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Apply the command line to the config."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs an OptimWrapper, the config has {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint {args.resume} does not exist')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True

    def set_loader(key, value):
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(name)
            if loader is not None and key in loader:
                loader[key] = value
    if args.no_pin_memory:
        set_loader('pin_memory', False)
    if args.no_persistent_workers:
        set_loader('persistent_workers', False)

    from sdae_mm.engine.hooks import add_divergence_guard
    from sdae_mm.utils.cfg_options import merge_cfg_options
    merge_cfg_options(cfg, args.cfg_options)  # unknown top-level keys are an error
    add_divergence_guard(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    import sdae_mm  # noqa: F401  (registers modules, applies compat)
    from mmengine.config import Config

    from sdae_mm.checkpoint import check_pretrained_inits, check_resume_checkpoint
    from sdae_mm.engine.recipe import check_launch
    from sdae_mm.engine.runner import build_runner
    from sdae_mm.utils.dist import prepare_cpu_distributed
    from sdae_mm.utils.run_lock import hold_work_dir
    from sdae_mm.utils.workers import shutdown_dataloader_workers
    from tools.dataset_converters.demo_data import ensure_demo_data
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    check_resume_checkpoint(cfg)  # an unreadable one: name it and the previous good one
    with hold_work_dir(cfg.work_dir):  # one run per work_dir
        ensure_demo_data(cfg)  # configs/demo/* on a fresh clone
        prepare_cpu_distributed(cfg)
        runner = build_runner(cfg)  # RecipeRunner: auto_scale_lr counts gradient accumulation
        check_pretrained_inits(runner.model)  # mmengine's Pretrained only warns on a misfit
        check_launch(runner, strict=args.strict_recipe)  # what a non-declared batch changes
        runner.train()
        shutdown_dataloader_workers(runner)  # now, not whenever the runner is collected
    return runner


if __name__ == '__main__':
    main()
