"""Time the pretraining step of SdAE, dBOT, RC-MAE or MAE.

Examples:
    # SdAE ViT-S/16, batch 8, 224, fp32 on 2 CPU threads (docs/benchmarks.md)
    python tools/benchmark.py --algo sdae --arch s --batch-size 8 --threads 2 \\
        --iters 10 --warmup 3 --json work_dirs/bench/sdae_s_cpu.json
    # the same with the teacher on the whole image instead of its fold views
    python tools/benchmark.py --algo sdae --arch s --batch-size 8 --threads 2 \\
        --teacher-views full
    # ViT-B on a GPU with the fastest settings
    python tools/benchmark.py --algo sdae --arch b --batch-size 96 --device cuda \\
        --amp bf16 --compile --iters 50 --warmup 10 --json sdae_b_gpu.json
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys
from contextlib import contextmanager

try:
    from sdae_mm.utils.benchmark import (ALGO_CONFIGS, AMP_DTYPES, ARCHS, TEACHER_VIEWS,
                                         format_table, parse_cfg_options, run_benchmark)
except ImportError:  # run from a source tree without `pip install -e .`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from sdae_mm.utils.benchmark import (ALGO_CONFIGS, AMP_DTYPES, ARCHS, TEACHER_VIEWS,
                                         format_table, parse_cfg_options, run_benchmark)

EPILOG = """\
A step: model.loss on a synthetic batch (normalised random images; ids_shuffle =
argsort(rand) with the mask generator's visible count), parse_losses, backward, the
config's optimizer (AdamW, param-wise settings; one step per iteration), and the
teacher update of the method (SdAE, RC-MAE: EMA with the hook's momentum, run every
step here even where the recipe runs it per epoch; dBOT, MAE: none per step).
Breakdown (CPU always, GPU with --breakdown, which adds a sync between phases):
student_forward (encoder, decoder, loss head), teacher_forward, backward, optimizer,
teacher_update; medians over the timed steps.
Peak memory: max RSS of this process on CPU (run one setting per process to compare),
torch.cuda.max_memory_allocated on GPU. FLOPs: torch.utils.flop_counter over one eager
forward + backward, per image (multiply-add = 2 FLOPs).
--teacher-views full (SdAE): the teacher encodes the whole image (all patches + cls as
one sequence) and the patches the loss needs are gathered from it, instead of encoding
those patches in fold views.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark one pretraining step', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--algo', choices=sorted(ALGO_CONFIGS), default='sdae')
    parser.add_argument('--arch', choices=sorted(ARCHS), default='s',
                        help='t: DeiT-Tiny 192-d, s: DeiT-Small 384-d, b: ViT-B, l: ViT-L')
    parser.add_argument('--config', default=None,
                        help="config file instead of the method's ViT-B config")
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=20, help='timed steps')
    parser.add_argument('--warmup', type=int, default=5, help='untimed steps before them')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES), default='none',
                        help='autocast dtype (fp16 uses a dynamic loss scaler)')
    parser.add_argument('--teacher-views', choices=TEACHER_VIEWS, default='folds')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile every transformer block')
    parser.add_argument('--compile-mode', default=None,
                        help="torch.compile mode, e.g. 'max-autotune' (default: torch's)")
    parser.add_argument('--breakdown', action='store_true',
                        help='time each phase on GPU (adds syncs); always on for CPU')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='peak for model FLOP utilisation (known GPUs by default)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='write the results to this file')
    parser.add_argument('--verbose', action='store_true',
                        help="keep mmengine's INFO logs (model init, param-wise options)")
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='config overrides after the arch swap, e.g. '
                        'model.neck.num_layers=2')
    return parser.parse_args(argv)


@contextmanager
def quiet_logs(enabled: bool = True):
    """Raise the current mmengine logger to WARNING for the duration."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    if enabled:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def main(argv=None) -> dict:
    args = parse_args(argv)
    with quiet_logs(not args.verbose):
        result = run_benchmark(
            algo=args.algo, arch=args.arch, batch_size=args.batch_size,
            img_size=args.img_size, iters=args.iters, warmup=args.warmup, device=args.device,
            amp=args.amp, teacher_views=args.teacher_views, compile=args.compile,
            compile_mode=args.compile_mode,
            breakdown=True if args.breakdown else None, threads=args.threads,
            config=args.config, cfg_options=parse_cfg_options(args.cfg_options),
            flops=not args.no_flops, peak_tflops=args.peak_tflops, seed=args.seed)
    print(format_table(result))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
