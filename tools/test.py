"""Evaluate a checkpoint on a config's test set with mmengine's Runner.

Serves mmpretrain, mmseg and mmdet configs (scope from the config's ``default_scope``).
The checkpoint is loaded strictly (``sdae_mm.checkpoint.load_model_checkpoint``): a file
that does not fit the model (missing, unexpected or mis-shaped keys) is an error naming
them, never a silent evaluation of partly random weights.

Examples::

    .venv/bin/python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--json metrics.json]
    .venv/bin/python tools/test.py CONFIG CHECKPOINT --show-dir vis    # draw the predictions
    .venv/bin/python tools/test.py CONFIG CHECKPOINT --out predictions.pkl

``--json FILE`` writes the metrics as JSON, as ``tools/knn_eval.py`` and the speed tools do;
``--out FILE.pkl`` dumps the raw predictions (OpenMMLab's ``--out``).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402  (light: --help answers at once)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--json', '--metrics-json', dest='json',
                        help='write the evaluation metrics to this JSON file')
    parser.add_argument('--show', action='store_true', help='show the predictions in a window')
    parser.add_argument('--show-dir', help='draw the predictions into this directory')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument('--interval', type=int, default=1,
                        help='draw every this many samples (batches for mmseg)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Turn on the config's visualization hook for ``--show``/``--show-dir``, as the
    mmpretrain, mmseg and mmdet test scripts do for their own hooks. ``--show-dir`` is made
    absolute, so the images land there whichever library's hook draws them."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise KeyError('--show/--show-dir need default_hooks.visualization in the config')
    show_dir = osp.abspath(args.show_dir) if args.show_dir else None
    hook.update(show=args.show, wait_time=args.wait_time, interval=args.interval)
    kind = hook['type'] if isinstance(hook['type'], str) else hook['type'].__name__
    if kind.endswith('DetVisualizationHook'):
        hook.update(draw=True, test_out_dir=show_dir)
    elif kind.endswith('SegVisualizationHook'):
        hook.update(draw=True)
        if show_dir:
            cfg.visualizer['save_dir'] = show_dir
    elif kind.endswith('VisualizationHook'):  # mmpretrain
        hook.update(enable=True, out_dir=show_dir)
    else:
        raise TypeError(f'--show/--show-dir: unknown visualization hook {kind}')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    import sdae_mm  # noqa: F401  (registers modules, applies compat)
    from mmengine.config import Config
    from mmengine.model import is_model_wrapper
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from sdae_mm.checkpoint import check_readable, load_model_checkpoint
    from sdae_mm.utils.cfg_options import merge_cfg_options
    from sdae_mm.utils.dist import prepare_cpu_distributed
    from sdae_mm.utils.workers import shutdown_dataloader_workers
    from tools.dataset_converters.demo_data import ensure_demo_data
    check_readable(args.checkpoint)  # a missing or unreadable file stops here
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    merge_cfg_options(cfg, args.cfg_options)  # unknown top-level keys are an error
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = None  # loaded strictly below, not by mmengine (which only warns)
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    if cfg.get('test_dataloader') is None:
        raise KeyError(f'{args.config} has no test_dataloader')
    ensure_demo_data(cfg)  # configs/demo/* on a fresh clone
    prepare_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    # as mmengine's Runner.load_checkpoint: hooks see the checkpoint first (e.g. EMAHook)
    load_model_checkpoint(model, args.checkpoint, before_load=lambda ckpt: runner.call_hook(
        'after_load_checkpoint', checkpoint=ckpt))
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    shutdown_dataloader_workers(runner)  # now, not whenever the runner is collected
    from mmengine.dist import is_main_process
    if args.json and is_main_process():  # every rank has the metrics; one writes them
        import json
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) or hasattr(v, 'item') else v
                       for k, v in metrics.items()}, f, indent=2)
    return metrics


if __name__ == '__main__':
    main()
