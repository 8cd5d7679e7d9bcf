"""Every stage of the end-to-end demo (tools/run_demo.py) on tiny settings."""
import json
import os.path as osp
import sys

import pytest


@pytest.fixture(scope='module')
def quick_demo(repo_root, demo_data, tmp_path_factory):
    sys.path.insert(0, osp.join(repo_root, 'tools'))
    import run_demo
    work = tmp_path_factory.mktemp('demo_run')
    results = run_demo.main(['--quick', '--work-dir', str(work), '--data-root', demo_data])
    return work, results


def test_all_stages_ran_and_saved_results(quick_demo):
    work, results = quick_demo
    assert set(results['seconds']) >= {
        'data', 'pretrain', 'convert', 'knn', 'linear', 'seg', 'det', 'report', 'total'
    }
    with open(work / 'results.json') as f:
        assert json.load(f)['pretrain']['epochs'] == 2


def test_conversion_outputs_exist(quick_demo):
    _, results = quick_demo
    for target in ('mmpretrain', 'mmseg', 'mmdet'):
        assert osp.exists(results['convert'][target])


def test_metrics_are_in_range(quick_demo):
    _, results = quick_demo
    for name in ('sdae', 'random'):
        assert 0 <= results['knn'][name]['top1'] <= 100
        assert 0 <= results['linear'][name] <= 100
    assert 0 <= results['seg']['mIoU'] <= 100
    assert 0 <= results['det']['coco/bbox_mAP'] <= 1 and 0 <= results['det']['coco/segm_mAP'] <= 1


def test_report_files(quick_demo):
    work, _ = quick_demo
    md = (work / 'results.md').read_text()
    assert '| kNN' in md and '| linear probe' in md and 'mIoU' in md and 'bbox AP' in md
    assert (work / 'loss_curve.png').stat().st_size > 1000
    assert len(list((work / 'masks').glob('*.png'))) == 4
