"""tools/evaluate.py: the paper preset's plans (pytorch and Slurm), and the demo preset end to
end on tiny settings (--resume, tools/test.py results, a protocol whose data is missing)."""
import json
import os
import os.path as osp
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import evaluate  # noqa: E402
from run_demo import QUICK_EVAL  # noqa: E402

CLS = 'configs/benchmarks/classification/'
LINEAR = CLS + 'vit-base-p16_linear-8xb512-coslr-90e_in1k.py'
FINETUNE = CLS + 'vit-base-p16_8xb128-coslr-100e_in1k.py'
UPERNET = 'configs/benchmarks/segmentation/upernet_vit-b-p16_8xb2-amp-160k_ade20k-512x512.py'
MASKRCNN = 'configs/benchmarks/detection/mask-rcnn_vit-b-p16_fpn_16xb2-ms-1x_coco.py'
VITDET = 'configs/benchmarks/detection/vitdet_mask-rcnn_vit-b-p16_simplefpn_16xb4-lsj-100e_coco.py'


@pytest.fixture(scope='module')
def vit_b_checkpoint(tmp_path_factory):
    """A file whose patch embedding says ViT-B (all --arch auto reads)."""
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_300.pth'
    torch.save({'state_dict': {'backbone.patch_embed.projection.weight':
                               torch.zeros(768, 3, 16, 16)}}, path)
    return str(path)


def _commands(out):
    return [line[2:] for line in out.splitlines() if line.startswith('$ ')]


def test_config_names_declare_gpus():
    assert evaluate.declared_gpus(LINEAR) == 8
    assert evaluate.declared_gpus(VITDET) == 16
    assert evaluate.declared_gpus('configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py') == 1
    with pytest.raises(ValueError, match='GPU count'):
        evaluate.declared_gpus('configs/sdae_vit-b_300e.py')


def test_arch_from_an_official_layout(tmp_path):
    import argparse
    path = tmp_path / 'mae_pretrain_vit_large.pth'
    torch.save({'model': {'patch_embed.proj.weight': torch.zeros(1024, 3, 16, 16)},
                'args': argparse.Namespace(model='mae_vit_large_patch16')}, path)
    assert evaluate.detect_arch(str(path)) == 'l'
    torch.save({'model': {'pos_embed': torch.zeros(1, 197, 768)}}, path)
    with pytest.raises(ValueError, match='no patch embedding'):
        evaluate.detect_arch(str(path))


def test_cfg_options_per_protocol():
    opts = evaluate.split_options(['a=1', 'linear:b=2', 'ade20k:c=3'], ['knn', 'linear'],
                                  ['ade20k'])
    assert opts == {'knn': ['a=1'], 'linear': ['a=1', 'b=2']}
    with pytest.raises(ValueError, match='is no protocol'):
        evaluate.split_options(['ade2k:b=2'], ['knn'], ['ade20k'])
    with pytest.raises(ValueError, match='KEY=VALUE'):
        evaluate.split_options(['b'], ['knn'])


def test_paper_dry_run_pytorch(vit_b_checkpoint, tmp_path, capsys):
    work = tmp_path / 'eval'
    assert evaluate.main([vit_b_checkpoint, '--launcher', 'pytorch', '--work-dir', str(work),
                          '--dry-run']) == 0
    out = capsys.readouterr().out
    cmds = _commands(out)
    assert '(ViT-b)' in out  # --arch auto read the 768-wide patch embedding
    ckpt = {t: str(work / 'checkpoints' / f'{t}.pth') for t in ('mmpretrain', 'mmseg', 'mmdet')}
    converts = [c for c in cmds if 'tools/convert_checkpoint.py' in c]
    assert len(converts) == 3  # once per target library
    assert any(c.endswith(f'{vit_b_checkpoint} {ckpt["mmseg"]} --to mmseg --img-size 512')
               for c in converts)
    assert any(c.endswith(f'{ckpt["mmdet"]} --to mmdet') for c in converts)
    knn = [c for c in cmds if 'tools/knn_eval.py' in c]
    assert len(knn) == 1 and '-m torch.distributed.run --nproc_per_node=8' in knn[0]
    assert f'{LINEAR} --checkpoint {ckpt["mmpretrain"]}' in knn[0]
    assert knn[0].endswith('--launcher pytorch')
    train = [c for c in cmds if 'dist_train.sh' in c]
    test = [c for c in cmds if 'dist_test.sh' in c]
    for config, key, target in ((LINEAR, 'model.backbone.init_cfg.checkpoint', 'mmpretrain'),
                                (FINETUNE, 'model.backbone.init_cfg.checkpoint', 'mmpretrain'),
                                (UPERNET, 'model.backbone.init_cfg.checkpoint', 'mmseg')):
        assert sum(c.startswith(f'bash tools/dist_train.sh {config} 8 ')
                   and f'{key}={ckpt[target]}' in c for c in train) == 1
        name = 'linear' if config == LINEAR else 'finetune' if config == FINETUNE else 'ade20k'
        last = work / name / 'last_checkpoint'
        assert f'bash tools/dist_test.sh {config} "$(cat {last})" 8 ' in '\n'.join(test)
    # 16 GPUs = 2 nodes x 8: one command per node, never fewer GPUs
    assert not any('--auto-scale-lr' in c for c in train)  # the declared GPU counts
    for config in (MASKRCNN, VITDET):
        runs = [c for c in train if f'dist_train.sh {config} 8 ' in c]
        assert [c.split(' bash')[0] for c in runs] == [
            f'NNODES=2 NODE_RANK={r} MASTER_ADDR=${{MASTER_ADDR:?the address of node 0}}'
            for r in (0, 1)]
        assert all(f'model.backbone.checkpoint={ckpt["mmdet"]}' in c for c in runs)
    assert 'data missing: data/coco/annotations/instances_train2017.json' in out
    assert not work.exists()  # a dry run writes nothing but Slurm scripts


def test_paper_dry_run_slurm(vit_b_checkpoint, tmp_path, capsys):
    work = tmp_path / 'eval'
    assert evaluate.main([vit_b_checkpoint, '--launcher', 'slurm', '--partition', 'gpu',
                          '--work-dir', str(work), '--dry-run']) == 0
    cmds = _commands(capsys.readouterr().out)
    scripts = sorted(os.listdir(work / 'slurm'))
    assert scripts == sorted(f'{p}.sh' for p in evaluate.PRESETS['paper']['protocols'])
    assert [c for c in cmds if c.startswith('sbatch')] == [
        f'sbatch {work / "slurm" / p}.sh' for p in evaluate.PRESETS['paper']['protocols']]
    expect = {'knn': (LINEAR, 1), 'linear': (LINEAR, 1), 'finetune': (FINETUNE, 1),
              'ade20k': (UPERNET, 1), 'coco-maskrcnn': (MASKRCNN, 2),
              'coco-vitdet': (VITDET, 2)}
    for name, (config, nodes) in expect.items():
        text = (work / 'slurm' / f'{name}.sh').read_text()
        assert f'#SBATCH --nodes={nodes}\n' in text
        assert '#SBATCH --ntasks-per-node=8\n#SBATCH --gres=gpu:8\n' in text
        assert '#SBATCH --partition=gpu\n' in text
        sruns = [line for line in text.splitlines() if line.startswith('srun ')]
        assert len(sruns) == (1 if name == 'knn' else 2)
        assert all(f' {config} ' in s and s.endswith('--launcher slurm') for s in sruns)
        target = {'ade20k': 'mmseg', 'coco-maskrcnn': 'mmdet', 'coco-vitdet': 'mmdet'}.get(
            name, 'mmpretrain')
        assert str(work / 'checkpoints' / f'{target}.pth') in sruns[0]
        if name != 'knn':
            assert f'"$(cat {work / name / "last_checkpoint"})"' in sruns[1]
            assert f'--metrics-json {work / name / "metrics.json"}' in sruns[1]
        assert text.rstrip().splitlines()[-1].split('  #')[0].endswith('--collect')


def test_gpu_counts_other_than_declared_are_refused(vit_b_checkpoint, tmp_path, capsys):
    args = [vit_b_checkpoint, '--work-dir', str(tmp_path), '--dry-run']
    assert evaluate.main(args) == 2  # --launcher none: one process for 8-GPU recipes
    assert evaluate.main(args + ['--launcher', 'pytorch', '--gpus', '8', '--protocols',
                                 'coco-vitdet']) == 2
    err = capsys.readouterr().err
    assert 'declares 16 GPU(s), this run would use 8' in err
    assert evaluate.main(args + ['--launcher', 'pytorch', '--gpus', '8', '--protocols',
                                 'coco-vitdet', '--auto-scale-lr']) == 0
    out = capsys.readouterr().out
    assert '8 GPU(s) (the config declares 16' in out
    [train] = [c for c in _commands(out) if 'dist_train.sh' in c]
    assert train.startswith(f'bash tools/dist_train.sh {VITDET} 8 ')
    assert ' --auto-scale-lr ' in train


# ---------------------------------------------------------------- the demo preset, run
@pytest.fixture(scope='module')
def data_dir(demo_data, tmp_path_factory):
    """A data/ folder holding the session's demo data as data/demo."""
    data = tmp_path_factory.mktemp('data')
    os.symlink(demo_data, data / 'demo')
    return data


@pytest.fixture(scope='module')
def tiny_checkpoint(data_dir, tmp_path_factory):
    """Two iterations of the MAE demo pretraining."""
    import train
    work = tmp_path_factory.mktemp('mae')
    train.main(['configs/demo/mae_vit-demo-p8_1xb64-40e_digits.py', '--work-dir', str(work),
                '--cfg-options', f'train_dataloader.dataset.data_root={data_dir}/demo/cls',
                'train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
                'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                'train_cfg.max_epochs=1'])
    return str(work / 'epoch_1.pth')


@pytest.fixture(scope='module')
def demo_run(tiny_checkpoint, data_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp('eval')
    argv = [tiny_checkpoint, '--preset', 'demo', '--work-dir', str(work), '--data-root',
            str(data_dir), '--cfg-options', *QUICK_EVAL]
    assert evaluate.main(argv) == 0
    return work, argv


def test_demo_preset_end_to_end(demo_run):
    work, _ = demo_run
    results = json.loads((work / 'results.json').read_text())
    assert results['arch'] == 'demo' and results['failed'] == [] and results['pending'] == []
    got = {(r['protocol'], r['metric']): r['value'] for r in results['rows']}
    assert set(got) == {('knn', 'top1'), ('linear', 'accuracy/top1'),
                        ('finetune', 'accuracy/top1'), ('ade20k', 'mIoU'),
                        ('coco-maskrcnn', 'coco/bbox_mAP'), ('coco-maskrcnn', 'coco/segm_mAP')}
    for (_, metric), value in got.items():
        assert 0 <= value <= (1 if metric.startswith('coco/') else 100)
    for row in results['rows']:
        assert row['work_dir'] == str(work / row['protocol'])
        assert row['config'].startswith('configs/demo/')
    for target in ('mmpretrain', 'mmseg', 'mmdet'):
        assert (work / 'checkpoints' / f'{target}.pth').stat().st_size > 0
    # the demo's numbers are the training runs' final validations, as mmengine logged them
    metrics = json.loads((work / 'linear' / 'metrics.json').read_text())
    assert metrics['source'].endswith(osp.join('vis_data', 'scalars.json'))
    assert metrics['step'] == 1  # quick: one epoch
    md = (work / 'results.md').read_text()
    assert '| linear | linear probe, digits val | accuracy/top1 |' in md
    assert '| coco-maskrcnn | Mask R-CNN FPN, digit scenes val | coco/bbox_mAP |' in md


def test_resume_skips_finished_protocols(demo_run, capsys):
    work, argv = demo_run
    before = {p: os.stat(work / p / 'metrics.json').st_mtime_ns
              for p in ('knn', 'linear', 'coco-maskrcnn')}
    capsys.readouterr()
    assert evaluate.main(argv + ['--resume']) == 0
    out = capsys.readouterr().out
    assert _commands(out) == []  # nothing converted, trained or tested again
    assert out.count('finished earlier') == 5
    assert {p: os.stat(work / p / 'metrics.json').st_mtime_ns for p in before} == before
    assert len(json.loads((work / 'results.json').read_text())['rows']) == 6


def test_final_metric_from_tools_test(demo_run, capsys):
    work, argv = demo_run
    assert evaluate.main(argv + ['--protocols', 'linear', '--final-metric', 'test']) == 0
    cmds = _commands(capsys.readouterr().out)
    assert [c.split()[1] for c in cmds] == ['tools/train.py', 'tools/test.py']
    metrics = json.loads((work / 'linear' / 'metrics.json').read_text())
    assert 'source' not in metrics and 0 <= metrics['accuracy/top1'] <= 100


def test_missing_data_fails_that_protocol_only(demo_data, tmp_path, capsys):
    data = tmp_path / 'data'
    (data / 'demo').mkdir(parents=True)
    os.symlink(osp.join(demo_data, 'cls'), data / 'demo' / 'cls')  # no scenes/
    work = tmp_path / 'eval'
    rc = evaluate.main(['random', '--preset', 'demo', '--protocols', 'ade20k', 'knn',
                        '--work-dir', str(work), '--data-root', str(data)])
    assert rc == 1
    results = json.loads((work / 'results.json').read_text())
    assert [r['protocol'] for r in results['rows']] == ['knn']
    [failed] = results['failed']
    assert failed['protocol'] == 'ade20k'
    assert f'data missing: {data}/demo/scenes/img_dir/train' in failed['error']
    assert 'ann_dir/{train,val}/*.png' in failed['error']  # the expected layout
    assert '| ade20k | UperNet, digit scenes val | failed |' in (work / 'results.md').read_text()
    assert 'FAILED ade20k' in capsys.readouterr().out
