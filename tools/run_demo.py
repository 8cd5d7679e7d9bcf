"""The end-to-end demo on the embedded data (the README's ``make demo``).

Stages, each logged as it runs:

1. build the demo data (``tools/prepare_demo_data.py``);
2. pretrain SdAE on the digits (``configs/demo/sdae_*``);
3. convert the checkpoint for mmpretrain, mmseg and mmdet (``tools/convert_checkpoint.py``);
4. kNN on frozen features, SdAE beside a randomly initialised backbone;
5. linear probe, SdAE beside a randomly initialised backbone;
6. UperNet segmentation of the digit scenes (mIoU);
7. Mask R-CNN on the digit scenes (bbox and segm AP);
8. the results table (Markdown and JSON), the pretraining loss curve and a mask/fold picture.

``--quick`` shrinks every stage to a few iterations (used by the tests); the full demo takes
well under 20 minutes on 2 CPU cores.

Example::

    python tools/run_demo.py [--work-dir work_dirs/demo] [--quick] [--stages pretrain knn]
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

STAGES = ('data', 'pretrain', 'convert', 'knn', 'linear', 'seg', 'det', 'report')

PRETRAIN_CFG = 'configs/demo/sdae_vit-demo-p8_1xb64-60e_digits.py'
LINEAR_CFG = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'
SEG_CFG = 'configs/demo/upernet_vit-demo_1xb8-300iters_digit-scenes-128x128.py'
DET_CFG = 'configs/demo/mask-rcnn_vit-demo_fpn_1xb4-300iters_digit-scenes-128x128.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='sdae-mm end-to-end demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/demo')
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations per stage (for tests)')
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES),
                        help='run only these stages (later ones read earlier outputs)')
    return parser.parse_args(argv)


class Demo:
    """Runs the stages and collects their results.

    Args:
        work_dir (str): Output folder.
        data_root (str): Demo data folder.
        quick (bool): Tiny settings for tests.
    """

    def __init__(self, work_dir: str, data_root: str, quick: bool = False) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.data_root = osp.abspath(data_root)
        self.quick = quick
        os.makedirs(self.work_dir, exist_ok=True)
        self.results_path = osp.join(self.work_dir, 'results.json')
        self.results = {}
        if osp.exists(self.results_path):
            with open(self.results_path) as f:
                self.results = json.load(f)
        self.timings = self.results.setdefault('seconds', {})

    # ------------------------------------------------------------------ helpers
    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def save(self) -> None:
        with open(self.results_path, 'w') as f:
            json.dump(self.results, f, indent=2)

    def run(self, stages) -> None:
        for name in STAGES:
            if name not in stages:
                continue
            print(f'\n===== [demo] stage {STAGES.index(name) + 1}/{len(STAGES)}: {name} =====',
                  flush=True)
            t0 = time.time()
            getattr(self, f'stage_{name}')()
            self.timings[name] = round(time.time() - t0, 1)
            print(f'===== [demo] {name} done in {self.timings[name]:.0f} s =====', flush=True)
            self.save()

    def _train(self, config: str, work_dir: str, options: list):
        import train as train_tool
        argv = [osp.join(ROOT, config), '--work-dir', work_dir, '--cfg-options'] + options
        return train_tool.main(argv)

    @staticmethod
    def _val_metrics(runner, keys):
        hub = runner.message_hub
        out = {}
        for key in keys:
            scalar = hub.get_scalar(f'val/{key}') if f'val/{key}' in hub.log_scalars else None
            if scalar is None:
                raise KeyError(f'validation metric {key} missing; logged: '
                               f'{sorted(hub.log_scalars)}')
            out[key] = float(scalar.current())
        return out

    # ------------------------------------------------------------------- stages
    def stage_data(self) -> None:
        from tools.dataset_converters.demo_data import build_demo_data
        summary = build_demo_data(self.data_root)
        self.results['data'] = {k: v for k, v in summary.items() if k in ('counts', 'version')}

    def stage_pretrain(self) -> None:
        opts = [f'train_dataloader.dataset.data_root={self.data_root}/cls']
        if self.quick:
            opts += ['train_dataloader.dataset.indices=64', 'train_dataloader.batch_size=16',
                     'train_cfg.max_epochs=2', 'param_scheduler.0.end=1',
                     'param_scheduler.1.begin=1', 'param_scheduler.1.T_max=1',
                     'param_scheduler.1.end=2', 'default_hooks.logger.interval=1',
                     'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']
        runner = self._train(PRETRAIN_CFG, self.path('sdae'), opts)
        ckpt = self.path('sdae', f'epoch_{runner.max_epochs}.pth')
        if not osp.exists(ckpt):
            raise FileNotFoundError(f'pretraining did not write {ckpt}')
        self.results['pretrain'] = dict(checkpoint=ckpt, epochs=runner.max_epochs,
                                        iters=runner.iter)

    def stage_convert(self) -> None:
        import convert_checkpoint
        src = self.results['pretrain']['checkpoint']
        out = {}
        for target in ('mmpretrain', 'mmseg', 'mmdet'):
            dst = self.path('sdae', f'backbone_{target}.pth')
            if convert_checkpoint.main([src, dst, '--to', target]) != 0:
                raise RuntimeError(f'converting {src} for {target} failed (message above)')
            out[target] = dst
        self.results['convert'] = out

    def stage_knn(self) -> None:
        from sdae_mm.evaluation.knn import knn_eval_checkpoint
        ckpt = self.results['convert']['mmpretrain']
        res = {}
        for name, path in (('sdae', ckpt), ('random', None)):
            res[name] = knn_eval_checkpoint(
                path, arch_config=osp.join(ROOT, LINEAR_CFG),
                data_root=f'{self.data_root}/cls', k=20, temperature=0.07, feature='avg',
                max_train=256 if self.quick else None, max_val=64 if self.quick else None)
        self.results['knn'] = res

    def stage_linear(self) -> None:
        ckpt = self.results['convert']['mmpretrain']
        res = {}
        for name, path in (('sdae', ckpt), ('random', None)):
            opts = [f'train_dataloader.dataset.data_root={self.data_root}/cls',
                    f'val_dataloader.dataset.data_root={self.data_root}/cls',
                    f'test_dataloader.dataset.data_root={self.data_root}/cls',
                    f'model.backbone.init_cfg.checkpoint={path}' if path else
                    'model.backbone.init_cfg=None']
            if self.quick:
                opts += ['train_dataloader.dataset.indices=64', 'val_dataloader.dataset.indices=32',
                         'train_cfg.max_epochs=1', 'train_dataloader.num_workers=0',
                         'val_dataloader.num_workers=0',
                         'train_dataloader.persistent_workers=False',
                         'val_dataloader.persistent_workers=False']
            runner = self._train(LINEAR_CFG, self.path('linear', name), opts)
            res[name] = self._val_metrics(runner, ['accuracy/top1'])['accuracy/top1']
        self.results['linear'] = res

    def _downstream(self, config, name, target, ckpt_key, metric_keys, extra=()):
        ckpt = self.results['convert'][target]
        opts = [f'train_dataloader.dataset.data_root={self.data_root}/scenes',
                f'val_dataloader.dataset.data_root={self.data_root}/scenes',
                f'test_dataloader.dataset.data_root={self.data_root}/scenes',
                f'{ckpt_key}={ckpt}', *extra]
        if self.quick:
            opts += ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                     'train_dataloader.dataset.indices=8', 'val_dataloader.dataset.indices=4',
                     'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
                     'train_dataloader.persistent_workers=False',
                     'val_dataloader.persistent_workers=False']
        runner = self._train(config, self.path(name), opts)
        return self._val_metrics(runner, metric_keys)

    def stage_seg(self) -> None:
        self.results['seg'] = self._downstream(SEG_CFG, 'upernet', 'mmseg',
                                               'model.backbone.init_cfg.checkpoint', ['mIoU'])

    def stage_det(self) -> None:
        # the COCO metric reads the annotation file itself, not through the dataset
        ann = f'{self.data_root}/scenes/annotations/instances_val.json'
        self.results['det'] = self._downstream(
            DET_CFG, 'mask-rcnn', 'mmdet', 'model.backbone.checkpoint',
            ['coco/bbox_mAP', 'coco/segm_mAP'],
            extra=[f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'])

    def stage_report(self) -> None:
        from sdae_mm.utils.demo_report import plot_loss_curve, write_report
        import visualize_masks
        plot_loss_curve(self.path('sdae'), self.path('loss_curve.png'))
        visualize_masks.main([osp.join(ROOT, PRETRAIN_CFG), '--out-dir', self.path('masks'),
                              '--num-images', '4', '--cfg-options',
                              f'train_dataloader.dataset.data_root={self.data_root}/cls'])
        md = write_report(self.results, self.path('results.md'))
        print('\n' + md, flush=True)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    demo = Demo(args.work_dir, args.data_root, args.quick)
    t0 = time.time()
    demo.run(args.stages)
    demo.results['seconds']['total'] = round(time.time() - t0, 1)
    demo.save()
    print(f'[demo] finished in {time.time() - t0:.0f} s; results in {demo.work_dir}', flush=True)
    return demo.results


if __name__ == '__main__':
    main()
