"""The end-to-end demo on the embedded data (the README's ``make demo``).

SdAE, the MAE baseline and a random initialisation, compared under one budget on every
transfer protocol of ``tools/evaluate.py``'s demo preset. Each stage is a command of the
project's tools, printed before it runs:

1. ``data``: ``tools/prepare_demo_data.py`` (kept if already complete);
2. ``pretrain``: ``tools/train.py`` on the SdAE and MAE demo configs (same data, same
   epochs, same optimizer);
3. ``evaluate``: ``tools/evaluate.py --preset demo`` for the SdAE checkpoint, the MAE
   checkpoint and ``random`` (kNN, linear probe, fine-tuning, UperNet and Mask R-CNN);
4. ``report``: ``WORK_DIR/results.md`` and ``results.json`` (SdAE / MAE / random init side
   by side), the pretraining loss curves and SdAE's masks and teacher folds.

``--quick`` shrinks every stage to a few iterations (the tests use it).

Example::

    python tools/run_demo.py [--work-dir work_dirs/demo] [--data-root data] [--quick] \\
        [--stages data pretrain evaluate report]
"""
import argparse
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

STAGES = ('data', 'pretrain', 'evaluate', 'report')
#: name -> pretraining config; the demo's columns, then the random-init baseline.
PRETRAIN = {
    'sdae': 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py',
    'mae': 'configs/demo/mae_vit-demo-p8_1xb64-60e_digits.py',
}
COLUMNS = (('sdae', 'SdAE'), ('mae', 'MAE'), ('random', 'random init'))

#: --quick: a few iterations of every stage
QUICK_PRETRAIN = ['train_dataloader.dataset.indices=32', 'train_dataloader.batch_size=16',
                  'train_cfg.max_epochs=2', 'param_scheduler.0.end=1',
                  'param_scheduler.1.begin=1', 'param_scheduler.1.T_max=1',
                  'param_scheduler.1.end=2', 'default_hooks.logger.interval=1',
                  'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']
_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
QUICK_EVAL = [f'{loader}.{key}' for loader in _LOADERS
              for key in ('num_workers=0', 'persistent_workers=False')]
QUICK_EVAL += [f'{p}:{o}' for p in ('linear', 'finetune') for o in (
    'train_dataloader.dataset.indices=64', 'val_dataloader.dataset.indices=32',
    'test_dataloader.dataset.indices=32', 'train_cfg.max_epochs=1')]
QUICK_EVAL += [f'{p}:{o}' for p in ('ade20k', 'coco-maskrcnn', 'coco-vitdet') for o in (
    'train_cfg.max_iters=2', 'train_dataloader.dataset.indices=8',
    'val_dataloader.dataset.indices=4', 'test_dataloader.dataset.indices=4')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='sdae-mm end-to-end demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data',
                        help='the demo data is built into DATA_ROOT/demo')
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations per stage (for tests)')
    parser.add_argument('--protocols', nargs='+',
                        help="tools/evaluate.py's protocols (default: its demo preset's)")
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES),
                        help='run only these stages (later ones read earlier outputs)')
    return parser.parse_args(argv)


def run(words: List[str]) -> int:
    """Print and run one command from the repository root; returns its exit status."""
    print('$ ' + ' '.join(shlex.quote(str(w)) for w in words), flush=True)
    return subprocess.run([str(w) for w in words], cwd=ROOT).returncode


# ------------------------------------------------------------------------------- report
def read_scalars(work_dir: str) -> List[dict]:
    """The records of the newest ``vis_data/scalars.json`` under an mmengine work dir."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def loss_curve(work_dir: str, key: str = 'loss') -> Tuple[List[int], List[float]]:
    """``(steps, values)`` of a training scalar."""
    records = [r for r in read_scalars(work_dir) if key in r and 'step' in r]
    return [int(r['step']) for r in records], [float(r[key]) for r in records]


def plot_loss_curves(runs: Dict[str, str], out_png: str) -> str:
    """One panel per pretraining run (``{title: work_dir}``): its training loss."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.5), dpi=100,
                             squeeze=False)
    for ax, (title, work_dir) in zip(axes[0], runs.items()):
        steps, values = loss_curve(work_dir)
        ax.plot(steps, values, lw=1.2)
        ax.set_xlabel('iteration')
        ax.set_ylabel('loss')
        ax.set_title(title)
        ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def comparison_rows(evaluations: Dict[str, dict]) -> List[list]:
    """``[evaluation, metric, value per column]`` rows from ``tools/evaluate.py``'s
    ``results.json`` of each column (``-`` where a column has no value)."""
    from evaluate import PRESETS, format_value
    labels = PRESETS['demo']['protocols']
    keys, values = [], {}
    for name, results in evaluations.items():
        for row in results.get('rows', []):
            key = (row['protocol'], row['metric'])
            if key not in values:
                keys.append(key)
                values[key] = {}
            values[key][name] = format_value(row['metric'], row['value'])
    order = list(labels)
    keys.sort(key=lambda k: order.index(k[0]))
    return [[labels[p]['label'], metric] + [values[(p, metric)].get(c, '-') for c, _ in COLUMNS]
            for p, metric in keys]


def machine_description() -> str:
    """CPU model, core count and the torch version, for the report's provenance line."""
    import torch
    from analysis_tools.benchmark_step import cpu_model_name
    return (f'{cpu_model_name()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads')


def provenance_markdown(results: dict) -> List[str]:
    """When, where and with which configs the table was made, and what "-" means."""
    configs = [f'`{c}`' for c in PRETRAIN.values()]
    configs += [f'`{row["config"]}`' for res in results.get('evaluations', {}).values()
                for row in res.get('rows', [])]
    return [f'`make demo` (tools/run_demo.py) on {results.get("date", "?")}, '
            f'{results.get("machine", "?")}.',
            'Configs: ' + ', '.join(dict.fromkeys(configs)) + '.',
            '"-" means the evaluation has no value for that column (not run, or failed).', '']


def comparison_markdown(results: dict) -> str:
    lines = provenance_markdown(results)
    lines += ['| evaluation | metric | ' + ' | '.join(t for _, t in COLUMNS) + ' |',
              '|---|---|' + '---|' * len(COLUMNS)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in comparison_rows(results['evaluations'])]
    failed = [f'{name}: {item["protocol"]}' for name, res in results['evaluations'].items()
              for item in res.get('failed', [])]
    if failed:
        lines += ['', 'Failed: ' + ', '.join(failed)]
    secs = results.get('seconds', {})
    if secs:
        lines += ['', 'Seconds per stage: ' + ', '.join(
            f'{k} {v:.0f}' for k, v in secs.items() if k != 'total')
            + (f'; total {secs["total"]:.0f}' if 'total' in secs else '')]
    return '\n'.join(lines) + '\n'


# ------------------------------------------------------------------------------- stages
class Demo:
    """Runs the stages and collects their results.

    Args:
        args (Namespace): The command line (see :func:`parse_args`).
    """

    def __init__(self, args) -> None:
        self.args = args
        self.work_dir = osp.abspath(args.work_dir)
        self.data_root = osp.abspath(args.data_root)
        self.python = sys.executable
        os.makedirs(self.work_dir, exist_ok=True)
        self.results_path = osp.join(self.work_dir, 'results.json')
        self.results = {}
        if osp.exists(self.results_path):
            with open(self.results_path) as f:
                self.results = json.load(f)
        # timings of the stages not run now are kept (e.g. --stages report)
        self.results['seconds'] = {k: v for k, v in self.results.get('seconds', {}).items()
                                   if k.split()[0] in STAGES and k.split()[0] not in args.stages}
        self.failed = []

    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def save(self) -> None:
        with open(self.results_path, 'w') as f:
            json.dump(self.results, f, indent=2)

    def run(self, stages) -> None:
        for index, name in enumerate(STAGES, 1):
            if name not in stages:
                continue
            print(f'\n===== [demo] stage {index}/{len(STAGES)}: {name} =====', flush=True)
            start = time.time()
            getattr(self, f'stage_{name}')()
            self.results['seconds'][name] = round(time.time() - start, 1)
            print(f'===== [demo] {name} done in {self.results["seconds"][name]:.0f} s =====',
                  flush=True)
            self.save()

    def stage_data(self) -> None:
        if run([self.python, 'tools/prepare_demo_data.py', '--out',
                osp.join(self.data_root, 'demo')]) != 0:
            raise RuntimeError('building the demo data failed (message above)')

    def stage_pretrain(self) -> None:
        checkpoints = {}
        for name, config in PRETRAIN.items():
            start = time.time()
            work_dir = self.path(name)
            options = [f'train_dataloader.dataset.data_root={self.data_root}/demo/cls']
            options += QUICK_PRETRAIN if self.args.quick else []
            if run([self.python, 'tools/train.py', config, '--work-dir', work_dir,
                    '--cfg-options', *options]) != 0:
                raise RuntimeError(f'pretraining {config} failed (message above)')
            with open(osp.join(work_dir, 'last_checkpoint')) as f:  # written by mmengine
                checkpoints[name] = f.read().strip()
            self.results['seconds'][f'pretrain {name}'] = round(time.time() - start, 1)
        self.results['pretrain'] = checkpoints

    def stage_evaluate(self) -> None:
        evaluations = {}
        sources = dict(self.results['pretrain'], random='random')
        for name, _ in COLUMNS:
            start = time.time()
            work_dir = self.path('eval', name)
            words = [self.python, 'tools/evaluate.py', sources[name], '--preset', 'demo',
                     '--work-dir', work_dir, '--data-root', self.data_root]
            words += ['--protocols', *self.args.protocols] if self.args.protocols else []
            words += ['--cfg-options', *QUICK_EVAL] if self.args.quick else []
            status = run(words)
            if status != 0:
                self.failed.append(name)
            results = osp.join(work_dir, 'results.json')
            if osp.isfile(results):
                with open(results) as f:
                    evaluations[name] = json.load(f)
            else:  # refused before running anything (message above)
                evaluations[name] = dict(rows=[], failed=[dict(
                    protocol='all', error=f'tools/evaluate.py exited with {status}')])
            self.results['seconds'][f'evaluate {name}'] = round(time.time() - start, 1)
        self.results['evaluations'] = evaluations

    def stage_report(self) -> None:
        titles = dict(COLUMNS)
        plot_loss_curves({f'{titles[name]} pretraining loss': self.path(name)
                          for name in PRETRAIN}, self.path('loss_curve.png'))
        if run([self.python, 'tools/visualize_masks.py', PRETRAIN['sdae'], '--out-dir',
                self.path('masks'), '--num-images', '4', '--cfg-options',
                f'train_dataloader.dataset.data_root={self.data_root}/demo/cls']) != 0:
            raise RuntimeError('drawing the masks failed (message above)')


def main(argv=None) -> dict:
    args = parse_args(argv)
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    demo = Demo(args)
    demo.results['date'] = time.strftime('%Y-%m-%d %H:%M %Z')
    demo.results['machine'] = machine_description()
    start = time.time()
    demo.run(args.stages)
    demo.results['seconds']['total'] = round(time.time() - start, 1)
    demo.save()
    if 'evaluations' in demo.results:
        text = comparison_markdown(demo.results)
        with open(demo.path('results.md'), 'w') as f:
            f.write(text)
        print('\n' + text, flush=True)
    print(f'[demo] finished in {time.time() - start:.0f} s; results in {demo.work_dir}',
          flush=True)
    if demo.failed:
        print(f'[demo] evaluations with failed protocols: {", ".join(demo.failed)}',
              file=sys.stderr)
    return demo.results


if __name__ == '__main__':
    results = main()
    sys.exit(1 if any(r.get('failed') for r in results.get('evaluations', {}).values()) else 0)
