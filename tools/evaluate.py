"""Evaluate one pretrained checkpoint on every transfer protocol, as one table.

For each protocol (kNN, linear probe, fine-tuning, ADE20K UperNet, COCO Mask R-CNN and
ViTDet) the preset names a config; the runner converts the checkpoint once per target
library (``tools/convert_checkpoint.py``, the encoder the paper fine-tunes), fills it into
the config and drives the project's own command-line tools:

- ``kNN``: ``tools/knn_eval.py CONFIG --checkpoint CKPT --out W/knn/metrics.json``;
- the others: ``tools/train.py`` then ``tools/test.py`` on the last checkpoint of the run
  (``--metrics-json W/<protocol>/metrics.json``; the demo preset reads the training run's
  final validation from its ``vis_data/scalars.json`` instead), through ``tools/dist_train.sh`` /
  ``tools/dist_test.sh`` (``--launcher pytorch``) or ``srun`` in one Slurm job per protocol
  (``--launcher slurm``), with the GPU count each config's name declares (``8xb128``: 8;
  ViTDet ``16xb4``: 16 = 2 nodes x 8). A different count is refused unless
  ``--auto-scale-lr`` asks for the lr to follow the batch size.

Every command is printed before it runs (``--dry-run`` prints them and writes the Slurm
scripts, running nothing). The metrics mmengine writes are collected into
``W/results.json``::

    {"checkpoint": ..., "preset": ..., "arch": ..., "rows": [{"protocol": ..., "metric": ...,
     "value": ..., "config": ..., "work_dir": ...}], "failed": [...], "seconds": {...}}

and ``W/results.md``. A protocol whose data is missing fails with the path and layout it
expects; the others still run, and the exit status is 1 if any failed. ``--resume`` skips
the protocols that finished (their ``metrics.json`` holds every metric) and resumes an
interrupted training from its last checkpoint.

Examples::

    # the paper's protocols for a ViT-B checkpoint, 8 GPUs (16 for ViTDet) per protocol
    python tools/evaluate.py work_dirs/sdae_vit-b_300e/epoch_300.pth --launcher slurm \\
        --partition gpu --work-dir work_dirs/eval/sdae_vit-b_300e
    python tools/evaluate.py CKPT --launcher pytorch --protocols linear ade20k --dry-run
    # the CPU demo on the embedded digits; ``random`` is a randomly initialised encoder
    python tools/evaluate.py work_dirs/demo/sdae/epoch_60.pth --preset demo
    python tools/evaluate.py random --preset demo --work-dir work_dirs/demo/eval/random
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RANDOM = 'random'
CLS = 'configs/benchmarks/classification/'
SEG = 'configs/benchmarks/segmentation/'
DET = 'configs/benchmarks/detection/'
DEMO = 'configs/demo/'

IMAGENET = ('ImageNet in mmpretrain\'s layout: {root}/train/<class>/*.JPEG and '
            '{root}/val/<class>/*.JPEG (or the lists meta/train.txt, meta/val.txt)')
ADE20K = ('ADEChallengeData2016 as mmseg expects: {root}/images/{{training,validation}}/*.jpg '
          'and {root}/annotations/{{training,validation}}/*.png')
COCO = ('COCO 2017 as mmdet expects: {root}/train2017/, {root}/val2017/ and '
        '{root}/annotations/instances_{{train,val}}2017.json')
DEMO_CLS = ('the demo digits: {root}/{{train,val}}/<digit>/*.png '
            '(build them with: .venv/bin/python tools/prepare_demo_data.py --out data/demo)')
DEMO_SCENES = ('the demo digit scenes: {root}/img_dir/{{train,val}}/*.png, '
               '{root}/ann_dir/{{train,val}}/*.png and '
               '{root}/annotations/instances_{{train,val}}.json '
               '(build them with: .venv/bin/python tools/prepare_demo_data.py --out data/demo)')

# How a protocol's config receives the converted encoder, and a random initialisation.
INIT_CFG = ('model.backbone.init_cfg.checkpoint', 'model.backbone.init_cfg=None')
MMDET_CKPT = ('model.backbone.checkpoint', 'model.backbone.checkpoint=None')
CLS_METRIC = ('accuracy/top1', )
SEG_METRIC = ('mIoU', )
DET_METRIC = ('coco/bbox_mAP', 'coco/segm_mAP')


def _protocol(kind, target, configs, metrics, layout, label, init=INIT_CFG, args=()):
    return dict(kind=kind, target=target, configs=configs, metrics=metrics, layout=layout,
                label=label, init=init, args=tuple(args))


#: protocol -> how to run it; ``configs`` maps the encoder's size (``--arch``) to a config.
PRESETS = {
    'paper': dict(
        default_arch='b',
        final_metric='test',
        convert_args={'mmseg': ('--img-size', '512')},
        protocols={
            'knn': _protocol(
                'knn', 'mmpretrain', {'b': CLS + 'vit-base-p16_linear-8xb512-coslr-90e_in1k.py'},
                ('top1', ), IMAGENET, 'kNN (k=20, T=0.07), ImageNet val'),
            'linear': _protocol(
                'train', 'mmpretrain', {'b': CLS + 'vit-base-p16_linear-8xb512-coslr-90e_in1k.py'},
                CLS_METRIC, IMAGENET, 'linear probe, ImageNet val'),
            'finetune': _protocol(
                'train', 'mmpretrain', {
                    's': CLS + 'rc_mae_vit-small-p16_8xb128-coslr-300e_in1k.py',
                    'b': CLS + 'vit-base-p16_8xb128-coslr-100e_in1k.py',
                    'l': CLS + 'vit-large-p16_8xb128-coslr-50e_in1k.py',
                    'h': CLS + 'dbot_vit-huge-p14_8xb128-coslr-50e_in1k.py'},
                CLS_METRIC, IMAGENET, 'fine-tuning, ImageNet val'),
            'ade20k': _protocol(
                'train', 'mmseg', {
                    's': SEG + 'upernet_vit-s-p16_8xb2-amp-160k_ade20k-512x512.py',
                    'b': SEG + 'upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py',
                    'l': SEG + 'upernet_vit-l-p16_8xb2-amp-160k_ade20k-512x512.py'},
                SEG_METRIC, ADE20K, 'UperNet, ADE20K val'),
            'coco-maskrcnn': _protocol(
                'train', 'mmdet', {'b': DET + 'mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py'},
                DET_METRIC, COCO, 'Mask R-CNN FPN 1x, COCO val', init=MMDET_CKPT),
            'coco-vitdet': _protocol(
                'train', 'mmdet',
                {'b': DET + 'vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py'},
                DET_METRIC, COCO, 'ViTDet Mask R-CNN, COCO val', init=MMDET_CKPT),
        },
        default_protocols=('knn', 'linear', 'finetune', 'ade20k', 'coco-maskrcnn',
                           'coco-vitdet')),
    'demo': dict(
        default_arch='demo',
        # the demo's schedules validate once, at the end: that validation is the result
        # (a separate tools/test.py process would cost as much again on 2 CPU cores)
        final_metric='val',
        convert_args={'mmseg': ('--img-size', '128')},
        protocols={
            'knn': _protocol(
                'knn', 'mmpretrain', {'demo': DEMO + 'linear_vit-demo-p8_1xb64-10e_digits.py'},
                ('top1', ), DEMO_CLS, 'kNN (k=20, T=0.07, mean patch feature), digits val',
                args=('--feature', 'avg')),
            'linear': _protocol(
                'train', 'mmpretrain', {'demo': DEMO + 'linear_vit-demo-p8_1xb64-10e_digits.py'},
                CLS_METRIC, DEMO_CLS, 'linear probe, digits val'),
            'finetune': _protocol(
                'train', 'mmpretrain',
                {'demo': DEMO + 'finetune_vit-demo-p8_1xb64-coslr-10e_digits.py'},
                CLS_METRIC, DEMO_CLS, 'fine-tuning, digits val'),
            'ade20k': _protocol(
                'train', 'mmseg',
                {'demo': DEMO + 'upernet_vit-demo_1xb8-60iters_digit-scenes-128x128.py'},
                SEG_METRIC, DEMO_SCENES, 'UperNet, digit scenes val'),
            'coco-maskrcnn': _protocol(
                'train', 'mmdet',
                {'demo': DEMO + 'mask-rcnn_vit-demo_fpn_1xb4-60iters_digit-scenes-128x128.py'},
                DET_METRIC, DEMO_SCENES, 'Mask R-CNN FPN, digit scenes val', init=MMDET_CKPT),
            'coco-vitdet': _protocol(
                'train', 'mmdet', {'demo': DEMO + 'vitdet_mask-rcnn_vit-demo_simplefpn_'
                                   '1xb4-300iters_digit-scenes-128x128.py'},
                DET_METRIC, DEMO_SCENES, 'ViTDet Mask R-CNN, digit scenes val',
                init=MMDET_CKPT),
        },
        default_protocols=('knn', 'linear', 'finetune', 'ade20k', 'coco-maskrcnn')),
}

#: Width of the encoder -> ``--arch`` (the demo ViT is 96 wide).
ARCH_OF_WIDTH = {96: 'demo', 384: 's', 768: 'b', 1024: 'l', 1280: 'h'}


class ProtocolError(RuntimeError):
    """One protocol cannot run or failed; the others go on."""


class Raw(str):
    """A command-line word written to the shell as it is (``"$(cat FILE)"``)."""


def shell_join(words) -> str:
    return ' '.join(w if isinstance(w, Raw) else shlex.quote(str(w)) for w in words)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate a pretrained checkpoint on every transfer protocol',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='protocols: ' + ', '.join(PRESETS['paper']['protocols']))
    parser.add_argument('checkpoint', help='pretraining checkpoint (any layout '
                        'tools/convert_checkpoint.py reads), or "random" for a randomly '
                        'initialised encoder (the baseline)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper',
                        help='protocols -> configs: the paper recipes or the CPU demo')
    parser.add_argument('--protocols', nargs='+', help='default: every protocol of the '
                        'preset (demo: all but coco-vitdet)')
    parser.add_argument('--arch', default='auto', choices=['auto'] + sorted(ARCH_OF_WIDTH.values()),
                        help='encoder size; auto: read from the checkpoint\'s patch embedding')
    parser.add_argument('--work-dir', help='default: work_dirs/eval/<checkpoint name>')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--gpus', type=int, help='GPUs per protocol (default: what each '
                        "config's name declares; a different count needs --auto-scale-lr)")
    parser.add_argument('--nodes', type=int,
                        help='nodes per protocol (default: GPUs / --gpus-per-node, rounded up)')
    parser.add_argument('--gpus-per-node', type=int, default=8)
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='allow a GPU count other than the declared one; the lr follows '
                        'the total batch size (the configs\' auto_scale_lr)')
    parser.add_argument('--partition', help='Slurm partition (--launcher slurm)')
    parser.add_argument('--cpus-per-task', type=int, default=5, help='Slurm, per GPU')
    parser.add_argument('--data-root', help='folder holding what the configs read as data/ '
                        '(e.g. DIR/imagenet, DIR/coco, DIR/demo)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='[PROTOCOL:]KEY=VALUE',
                        help='config overrides for every protocol, or for one with a '
                        '"PROTOCOL:" prefix (e.g. linear:train_cfg.max_epochs=1)')
    parser.add_argument('--final-metric', choices=['test', 'val'],
                        help='test: tools/test.py on the last checkpoint (paper preset); val: '
                        'the training run\'s final validation, read from its '
                        'vis_data/scalars.json (demo preset)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands and write the Slurm scripts; run nothing')
    parser.add_argument('--resume', action='store_true',
                        help='skip finished protocols, resume interrupted trainings')
    parser.add_argument('--collect', action='store_true',
                        help='only gather the finished protocols\' metrics into the table '
                        '(what each Slurm job does when it ends)')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- planning
def declared_gpus(config: str) -> int:
    """The GPU count of an OpenMMLab config name: ``..._8xb128-...`` -> 8."""
    match = re.search(r'(?:^|[_-])(\d+)xb\d+', osp.basename(config))
    if match is None:
        raise ValueError(f'{config}: no "<gpus>xb<batch>" in the name to read the GPU count')
    return int(match.group(1))


def detect_arch(checkpoint: str) -> str:
    """``--arch auto``: the encoder size from the width of a patch embedding.

    Reads any 4-d tensor whose name contains ``patch_embed`` (official, mmengine,
    mmpretrain and timm layouts alike) at any nesting level of the checkpoint.
    """
    from sdae_mm.checkpoint import CheckpointReadError, read_checkpoint
    try:
        ckpt = read_checkpoint(checkpoint)  # the safe loader every reader uses
    except CheckpointReadError as err:
        raise ValueError(f'{checkpoint}: cannot read it safely to find the encoder size '
                         f'({err}); pass --arch') from None
    stack = [ckpt]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if isinstance(value, dict):
                stack.append(value)
            elif ('patch_embed' in str(key) and hasattr(value, 'dim') and value.dim() == 4):
                width = int(value.shape[0])
                if width not in ARCH_OF_WIDTH:
                    raise ValueError(f'{checkpoint}: encoder width {width} is none of '
                                     f'{sorted(ARCH_OF_WIDTH)}; pass --arch')
                return ARCH_OF_WIDTH[width]
    raise ValueError(f'{checkpoint}: no patch embedding found to read the encoder size; '
                     'pass --arch')


def split_options(options: List[str], protocols, known=()) -> Dict[str, List[str]]:
    """``[PROTOCOL:]KEY=VALUE`` words -> ``{protocol: ['KEY=VALUE', ...]}`` for the protocols
    run; words for other ``known`` protocols are dropped, unknown names are an error."""
    out = {name: [] for name in protocols}
    for word in options:
        key = word.split('=', 1)[0]
        if '=' not in word:
            raise ValueError(f'--cfg-options {word!r}: expected [PROTOCOL:]KEY=VALUE')
        if ':' in key:
            name, rest = word.split(':', 1)
            if name not in out and name not in known:
                raise ValueError(f'--cfg-options {word!r}: {name!r} is no protocol '
                                 f'({", ".join(list(out) + list(known))})')
            if name in out:
                out[name].append(rest)
        else:
            for name in out:
                out[name].append(word)
    return out


def _datasets(cfg) -> List[tuple]:
    """``(key, dataset dict)`` of the train/val/test loaders, wrappers unwrapped."""
    found = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset, key = (cfg.get(loader) or {}).get('dataset'), f'{loader}.dataset'
        while isinstance(dataset, dict) and 'data_root' not in dataset and \
                isinstance(dataset.get('dataset'), dict):
            dataset, key = dataset['dataset'], key + '.dataset'
        if isinstance(dataset, dict):
            found.append((key, dataset))
    return found


def data_root_options(cfg, data_root: str) -> List[str]:
    """Overrides that move every ``data/...`` path of a config under ``data_root``."""
    def moved(path):
        rel = osp.relpath(osp.normpath(path), 'data')
        return osp.join(data_root, rel) + ('/' if path.endswith('/') else '')
    opts = []
    for key, dataset in _datasets(cfg):
        root = dataset.get('data_root')
        if isinstance(root, str) and osp.normpath(root).split(os.sep)[0] == 'data':
            opts.append(f'{key}.data_root={moved(root)}')
    for key in ('val_evaluator', 'test_evaluator'):
        ann = (cfg.get(key) or {}).get('ann_file') if isinstance(cfg.get(key), dict) else None
        if isinstance(ann, str) and osp.normpath(ann).split(os.sep)[0] == 'data':
            opts.append(f'{key}.ann_file={moved(ann)}')
    return opts


def expected_data(cfg) -> List[str]:
    """The files and folders a config's datasets read."""
    paths = []
    for _, dataset in _datasets(cfg):
        root = dataset.get('data_root') or ''
        parts = []
        if dataset.get('ann_file'):
            parts.append(dataset['ann_file'])
        prefix = dataset.get('data_prefix')
        if isinstance(prefix, str) and prefix:
            parts.append(prefix)
        elif isinstance(prefix, dict):
            parts += [v for v in prefix.values() if isinstance(v, str) and v]
        if dataset.get('split'):
            parts.append(dataset['split'])
        paths += [osp.join(root, p) for p in parts] or ([root] if root else [])
    return list(dict.fromkeys(osp.normpath(p) for p in paths))


def load_config(config: str, options: List[str]):
    """A config as its run will see it: ``options`` are ``KEY=VALUE`` overrides."""
    import warnings

    from mmengine.config import Config, DictAction
    with warnings.catch_warnings():  # mmdet's pkg_resources deprecation, on every load
        warnings.simplefilter('ignore', UserWarning)
        cfg = Config.fromfile(osp.join(ROOT, config))
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o'] + list(options)).o)
    return cfg


class Plan:
    """One protocol of one run: its config, GPUs, work dir and commands.

    Args:
        name (str): Protocol name.
        spec (dict): Its entry of :data:`PRESETS`.
        config (str): Config path, relative to the repository.
        work_dir (str): The protocol's work dir.
        checkpoint (str | None): Converted encoder, None for a random initialisation.
        options (list[str]): ``KEY=VALUE`` overrides (data root, user options).
        gpus (int), nodes (int): Processes of the run.
        declared (int): The GPU count of the config's name.
        final_metric (str): ``'test'`` (``tools/test.py`` on the last checkpoint) or
            ``'val'`` (the training run's final validation).
    """

    def __init__(self, name, spec, config, work_dir, checkpoint, options, gpus, nodes,
                 declared, final_metric='test'):
        self.name, self.spec, self.config, self.work_dir = name, spec, config, work_dir
        self.checkpoint, self.options, self.gpus, self.nodes = checkpoint, options, gpus, nodes
        self.declared, self.final_metric = declared, final_metric
        self.metrics_json = osp.join(work_dir, 'metrics.json')

    @property
    def per_node(self) -> int:
        return self.gpus // self.nodes

    def metrics(self) -> Optional[dict]:
        """The finished run's metrics, None while any is missing."""
        if not osp.isfile(self.metrics_json) and self.final_metric == 'val':
            self.save_final_validation()
        if not osp.isfile(self.metrics_json):
            return None
        with open(self.metrics_json) as f:
            metrics = json.load(f)
        return metrics if all(k in metrics for k in self.spec['metrics']) else None

    def save_final_validation(self) -> None:
        """``final_metric='val'``: write the final validation of a finished training run
        (mmengine's ``vis_data/scalars.json``) to ``metrics.json``."""
        last = osp.join(self.work_dir, 'last_checkpoint')
        if not osp.isfile(last):
            return
        cfg = load_config(self.config, self.options)
        by_epoch = 'max_epochs' in cfg.train_cfg
        final = f'epoch_{cfg.train_cfg.max_epochs}.pth' if by_epoch else \
            f'iter_{cfg.train_cfg.max_iters}.pth'
        with open(last) as f:
            if osp.basename(f.read().strip()) != final:
                return  # not finished: an earlier validation is not the result
        runs = sorted(glob.glob(osp.join(self.work_dir, '*', 'vis_data', 'scalars.json')))
        if not runs:
            return
        with open(runs[-1]) as f:
            records = [json.loads(line) for line in f if line.strip()]
        if records and all(k in records[-1] for k in self.spec['metrics']):
            _write_atomic(self.metrics_json, json.dumps(
                dict(records[-1], source=runs[-1]), indent=2) + '\n')

    def init_option(self) -> str:
        key, random = self.spec['init']
        return random if self.checkpoint is None else f'{key}={self.checkpoint}'

    def steps(self, launcher: str, python: str, resume: bool) -> List[tuple]:
        """``(step, words)`` of the commands; multi-node ``pytorch`` runs give one command
        per node (``NODE_RANK=i``)."""
        cfg, wd, opts = self.config, self.work_dir, list(self.options)
        if self.spec['kind'] == 'knn':
            ckpt = ['--random-init'] if self.checkpoint is None else \
                ['--checkpoint', self.checkpoint]
            tail = ['tools/knn_eval.py', cfg, *ckpt, *self.spec['args'],
                    '--out', self.metrics_json]
            tail += ['--cfg-options', *opts] if opts else []
            return [('knn', w) for w in self._launch(launcher, python, tail, 'knn')]
        train_args = ['--work-dir', wd]
        if self.gpus != self.declared:  # allowed with --auto-scale-lr only
            train_args.append('--auto-scale-lr')
        if resume and osp.isfile(osp.join(wd, 'last_checkpoint')):
            train_args.append('--resume')
        train_args += ['--cfg-options', self.init_option(), *opts]
        last = Raw(f'"$(cat {shlex.quote(osp.join(wd, "last_checkpoint"))})"')
        test_args = ['--work-dir', osp.join(wd, 'test'), '--metrics-json', self.metrics_json]
        test_args += ['--cfg-options', *opts] if opts else []
        steps = [('train', w) for w in self._launch(
            launcher, python, ['tools/train.py', cfg, *train_args], 'train')]
        if self.final_metric == 'val':
            return steps
        steps += [('test', w) for w in self._launch(
            launcher, python, ['tools/test.py', cfg, last, *test_args], 'test')]
        return steps

    def _launch(self, launcher, python, tail, what) -> List[list]:
        script, args = tail[0], tail[1:]
        if launcher == 'none':
            return [[python, script, *args]]
        if launcher == 'slurm':
            return [['srun', '--kill-on-bad-exit=1', python, '-u', script, *args,
                     '--launcher', 'slurm']]
        commands = []  # pytorch: one command per node
        master = '${MASTER_ADDR:?the address of node 0}'
        for rank in range(self.nodes):
            env = [Raw(f'NNODES={self.nodes}'), Raw(f'NODE_RANK={rank}'),
                   Raw(f'MASTER_ADDR={master}')] if self.nodes > 1 else []
            if what == 'knn':
                nodes = [f'--nnodes={self.nodes}', f'--node_rank={rank}',
                         Raw(f'--master_addr={master}')] if self.nodes > 1 else []
                commands.append([python, '-m', 'torch.distributed.run', *nodes,
                                 f'--nproc_per_node={self.per_node}', script, *args,
                                 '--launcher', 'pytorch'])
            elif what == 'train':
                commands.append([*env, 'bash', 'tools/dist_train.sh', args[0],
                                 str(self.per_node), *args[1:]])
            else:
                commands.append([*env, 'bash', 'tools/dist_test.sh', args[0], args[1],
                                 str(self.per_node), *args[2:]])
        return commands

    def slurm_script(self, partition, cpus_per_task, python, resume, collect_cmd) -> str:
        lines = [
            '#!/usr/bin/env bash',
            f'#SBATCH --job-name=eval-{self.name}',
            f'#SBATCH --partition={partition}',
            f'#SBATCH --nodes={self.nodes}',
            f'#SBATCH --ntasks-per-node={self.per_node}',
            f'#SBATCH --gres=gpu:{self.per_node}',
            f'#SBATCH --cpus-per-task={cpus_per_task}',
            f'#SBATCH --output={osp.join(self.work_dir, "slurm-%j.out")}',
            f'# {self.name}: {self.config} on {self.gpus} GPUs ({self.nodes} x '
            f'{self.per_node}); written by tools/evaluate.py',
            'set -euo pipefail',
            f'cd {shlex.quote(ROOT)}',
            f'export PYTHONPATH={shlex.quote(ROOT)}${{PYTHONPATH:+:$PYTHONPATH}}',
        ]
        lines += [shell_join(words) for _, words in self.steps('slurm', python, resume)]
        lines.append(shell_join(collect_cmd) + '  # refresh results.json / results.md')
        return '\n'.join(lines) + '\n'


# ----------------------------------------------------------------------------- running
class Evaluation:
    """Plans, runs and collects the protocols of one checkpoint (see the module doc)."""

    def __init__(self, args):
        self.args = args
        self.preset = PRESETS[args.preset]
        self.python = sys.executable
        self.random = args.checkpoint == RANDOM
        self.checkpoint = RANDOM if self.random else osp.abspath(args.checkpoint)
        stem = RANDOM if self.random else osp.splitext(osp.basename(args.checkpoint))[0]
        self.work_dir = osp.abspath(args.work_dir or osp.join('work_dirs', 'eval', stem))
        self.names = list(args.protocols or self.preset['default_protocols'])
        unknown = [n for n in self.names if n not in self.preset['protocols']]
        if unknown:
            raise ValueError(f'unknown protocol(s) {unknown}; the {args.preset} preset has '
                             f'{", ".join(self.preset["protocols"])}')
        self.arch = self._arch()
        self.options = split_options(args.cfg_options, self.names, self.preset['protocols'])
        self.plans, self.failed, self.seconds = {}, {}, {}
        for name in self.names:
            try:  # a GPU count that differs from the recipe's refuses the whole run
                self.plans[name] = self._plan(name)
            except ProtocolError as err:
                self.failed[name] = str(err)

    # -- planning
    def _arch(self) -> str:
        if self.args.arch != 'auto':
            return self.args.arch
        if self.random:
            return self.preset['default_arch']
        if not osp.isfile(self.checkpoint):
            raise FileNotFoundError(f'checkpoint {self.checkpoint} does not exist')
        return detect_arch(self.checkpoint)

    def converted(self, target: str) -> str:
        return osp.join(self.work_dir, 'checkpoints', f'{target}.pth')

    def _gpus(self, name, config):
        args, declared = self.args, declared_gpus(config)
        if args.collect or args.launcher == 'none' and args.gpus is None:
            gpus = 1 if args.launcher == 'none' else declared
        else:
            gpus = args.gpus or declared
        if args.launcher == 'none' and gpus != 1:
            raise ValueError(f'{name}: --launcher none runs one process, not {gpus} GPUs')
        is_knn = self.preset['protocols'][name]['kind'] == 'knn'  # no lr, any count
        if not args.collect and gpus != declared and not is_knn and not args.auto_scale_lr:
            raise ValueError(
                f'{name}: {osp.basename(config)} declares {declared} GPU(s), this run would '
                f'use {gpus} (a different total batch, so a different recipe). Run it with '
                f'{"--launcher pytorch or slurm" if args.launcher == "none" else "--gpus"} '
                f'({declared} GPUs), or pass --auto-scale-lr to scale the lr with the batch')
        nodes = args.nodes or math.ceil(gpus / args.gpus_per_node)
        if gpus % nodes:
            raise ValueError(f'{name}: {gpus} GPUs do not split evenly over {nodes} nodes')
        return gpus, nodes, declared

    def _plan(self, name) -> Plan:
        spec = self.preset['protocols'][name]
        config = spec['configs'].get(self.arch)
        if config is None:
            raise ProtocolError(f'the {self.args.preset} preset has no {name} config for a '
                                f'ViT-{self.arch} (it has: {", ".join(spec["configs"])})')
        gpus, nodes, declared = self._gpus(name, config)
        options = list(self.options[name])
        if self.args.data_root:  # the commands run from the repository root
            options = data_root_options(load_config(config, []),
                                        osp.abspath(self.args.data_root)) + options
        ckpt = None if self.random else self.converted(spec['target'])
        return Plan(name, spec, config, osp.join(self.work_dir, name), ckpt, options, gpus,
                    nodes, declared, self.args.final_metric or self.preset['final_metric'])

    # -- output
    def log(self, message: str) -> None:
        print(f'[evaluate] {message}', flush=True)

    def run_command(self, words, cwd=ROOT) -> int:
        command = shell_join(words)
        print(f'$ {command}', flush=True)
        if self.args.dry_run:
            return 0
        return subprocess.run(['bash', '-c', command], cwd=cwd).returncode

    def collect_cmd(self) -> list:
        cmd = [self.python, 'tools/evaluate.py', self.checkpoint, '--preset', self.args.preset,
               '--arch', self.arch, '--work-dir', self.work_dir, '--protocols', *self.names,
               '--final-metric', self.args.final_metric or self.preset['final_metric'],
               '--collect']
        return cmd

    # -- stages
    def convert(self, targets) -> Dict[str, str]:
        """Convert once per target library; returns ``{target: error}`` of failures."""
        errors = {}
        for target in targets:
            dst = self.converted(target)
            if (not self.args.dry_run and osp.isfile(dst)
                    and osp.getmtime(dst) >= osp.getmtime(self.checkpoint)):
                self.log(f'{target} encoder: {dst} is up to date')
                continue
            self.log(f'convert for {target} -> {dst}')
            if not self.args.dry_run and osp.exists(dst):
                os.remove(dst)  # stale: older than the checkpoint
            words = [self.python, 'tools/convert_checkpoint.py', self.checkpoint, dst,
                     '--to', target, *self.preset['convert_args'].get(target, ())]
            if self.run_command(words) != 0:
                errors[target] = f'converting {self.checkpoint} for {target} failed'
        return errors

    def check_data(self, plan: Plan) -> Optional[str]:
        """A message naming the missing paths and the expected layout, or None."""
        cfg = load_config(plan.config, plan.options)
        missing = [p for p in expected_data(cfg) if not osp.exists(osp.join(ROOT, p))]
        if not missing:
            return None
        roots = [d.get('data_root') for _, d in _datasets(cfg) if d.get('data_root')]
        layout = plan.spec['layout'].format(root=osp.normpath(roots[0]) if roots else 'data')
        return (f'data missing: {", ".join(missing)} (relative to {ROOT} unless absolute). '
                f'Expected {layout}. --data-root DIR points data/ elsewhere.')

    def run_protocol(self, index: int, plan: Plan) -> None:
        args, name = self.args, plan.name
        self.log(f'({index}/{len(self.names)}) {name}: {plan.config}, {plan.gpus} GPU(s)'
                 + (f' = {plan.nodes} nodes x {plan.per_node}' if plan.nodes > 1 else '')
                 + (f' (the config declares {plan.declared}; lr scaled with the batch)'
                    if plan.gpus != plan.declared and plan.spec['kind'] != 'knn' else ''))
        if args.resume and plan.metrics() is not None:
            self.log(f'{name}: finished earlier ({plan.metrics_json}), skipped')
            return
        missing = self.check_data(plan)
        if missing and not args.dry_run:
            raise ProtocolError(missing)
        if missing:
            self.log(f'{name}: warning: {missing}')
        if not args.dry_run:
            os.makedirs(plan.work_dir, exist_ok=True)
            if osp.exists(plan.metrics_json):
                os.remove(plan.metrics_json)  # a failed rerun must not leave old numbers
        if args.launcher == 'slurm':
            script = osp.join(self.work_dir, 'slurm', f'{name}.sh')
            os.makedirs(osp.dirname(script), exist_ok=True)
            with open(script, 'w') as f:
                f.write(plan.slurm_script(args.partition, args.cpus_per_task, self.python,
                                          args.resume, self.collect_cmd()))
            os.chmod(script, 0o755)
            self.log(f'{name}: job script {script}')
            if self.run_command(['sbatch', script]) != 0:
                raise ProtocolError(f'sbatch {script} failed')
            return
        steps = plan.steps(args.launcher, self.python, args.resume)
        if plan.nodes > 1:
            self.log(f'{name}: run each of these on its node (MASTER_ADDR = node 0):')
            for _, words in steps:
                print('$ ' + shell_join(words), flush=True)
            if not args.dry_run:
                raise ProtocolError(f'{plan.nodes} nodes: start the commands above on each '
                                    'node or use --launcher slurm')
            return
        for step, words in steps:
            self.log(f'{name}: {step}')
            if self.run_command(words) != 0:
                raise ProtocolError(f'{step} failed (exit status above; logs in {plan.work_dir})')
        if not args.dry_run and plan.metrics() is None:
            raise ProtocolError(f'{plan.metrics_json} lacks {plan.spec["metrics"]}')

    def run(self) -> int:
        args = self.args
        if args.launcher == 'slurm' and not args.partition and not args.collect:
            raise ValueError('--launcher slurm needs --partition')
        self.log(f'{self.checkpoint} (ViT-{self.arch}), preset {args.preset}, launcher '
                 f'{args.launcher}, work dir {self.work_dir}'
                 + (' [dry run: nothing is executed]' if args.dry_run else ''))
        if not args.dry_run:
            os.makedirs(self.work_dir, exist_ok=True)
        if not args.collect:
            self._run_all()
        if not args.dry_run:
            self.write_results()
        for name, error in self.failed.items():
            self.log(f'FAILED {name}: {error}')
        return 1 if self.failed else 0

    def _run_all(self) -> None:
        todo = [p for p in self.plans.values()
                if not (self.args.resume and p.metrics() is not None)]
        if not self.random:
            targets = list(dict.fromkeys(p.spec['target'] for p in todo))
            if targets and not self.args.dry_run and not osp.isfile(self.checkpoint):
                raise FileNotFoundError(f'checkpoint {self.checkpoint} does not exist')
            for target, error in self.convert(targets).items():
                for plan in todo:
                    if plan.spec['target'] == target:
                        self.failed[plan.name] = error
        for index, name in enumerate(self.names, 1):
            if name not in self.plans or name in self.failed:
                continue
            start = time.time()
            try:
                self.run_protocol(index, self.plans[name])
            except Exception as err:  # one protocol's failure stops no other
                self.failed[name] = str(err) if isinstance(err, ProtocolError) else \
                    f'{type(err).__name__}: {err}'
                self.log(f'{name}: FAILED: {err}')
            self.seconds[name] = round(time.time() - start, 1)
            if not self.args.dry_run and name not in self.failed:
                self.log(f'{name}: done in {self.seconds[name]:.0f} s')

    # -- results
    def rows(self) -> List[dict]:
        rows = []
        for name in self.names:
            plan = self.plans.get(name)
            try:
                metrics = plan.metrics() if plan else None
            except Exception as err:  # a broken result is reported, not fatal
                self.failed.setdefault(name, f'reading its metrics: {err}')
                metrics = None
            if metrics is None:
                continue
            rows += [dict(protocol=name, metric=key, value=float(metrics[key]),
                          config=plan.config, work_dir=plan.work_dir)
                     for key in plan.spec['metrics']]
        return rows

    def write_results(self) -> dict:
        path = osp.join(self.work_dir, 'results.json')
        seconds = {}
        if osp.isfile(path):  # keep the timings of protocols run before (--resume)
            with open(path) as f:
                seconds = json.load(f).get('seconds', {})
        seconds.update(self.seconds)
        rows = self.rows()
        done = {r['protocol'] for r in rows}
        failed = [dict(protocol=n, error=e) for n, e in self.failed.items()]
        pending = [n for n in self.names if n not in done and n not in self.failed]
        results = dict(checkpoint=self.checkpoint, preset=self.args.preset, arch=self.arch,
                       rows=rows, failed=failed, pending=pending, seconds=seconds)
        _write_atomic(path, json.dumps(results, indent=2) + '\n')
        _write_atomic(osp.join(self.work_dir, 'results.md'), results_markdown(results))
        self.log(f'results: {path}\n' + results_markdown(results))
        return results


def format_value(metric: str, value: float) -> str:
    """Percent with two decimals (COCO's mAP is a fraction)."""
    return f'{100 * value:.2f}' if metric.startswith('coco/') else f'{value:.2f}'


def results_markdown(results: dict) -> str:
    """The table of ``results.json``."""
    preset = PRESETS[results['preset']]['protocols']
    lines = [f'Checkpoint: `{results["checkpoint"]}` (ViT-{results["arch"]}, '
             f'{results["preset"]} preset)', '',
             '| protocol | evaluation | metric | value (%) | config |', '|---|---|---|---|---|']
    for row in results['rows']:
        lines.append(f'| {row["protocol"]} | {preset[row["protocol"]]["label"]} | '
                     f'{row["metric"]} | {format_value(row["metric"], row["value"])} | '
                     f'`{row["config"]}` |')
    for item in results.get('failed', []):
        lines.append(f'| {item["protocol"]} | {preset[item["protocol"]]["label"]} | failed | '
                     f'- | {item["error"].splitlines()[0]} |')
    for name in results.get('pending', []):
        lines.append(f'| {name} | {preset[name]["label"]} | not finished | - | |')
    return '\n'.join(lines) + '\n'


def _write_atomic(path: str, text: str) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        evaluation = Evaluation(args)
        return evaluation.run()
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
