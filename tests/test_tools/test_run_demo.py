"""The end-to-end demo (tools/run_demo.py, ``make demo``) on tiny settings: SdAE and MAE
pretraining, tools/evaluate.py for both and for a random initialisation, the report."""
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import run_demo  # noqa: E402


@pytest.fixture(scope='module')
def quick_demo(tmp_path_factory):
    work = tmp_path_factory.mktemp('demo_run')
    data = tmp_path_factory.mktemp('data')
    # kNN keeps the test short; tools/evaluate.py's own test runs every protocol
    results = run_demo.main(['--quick', '--work-dir', str(work), '--data-root', str(data),
                             '--protocols', 'knn'])
    return work, data, results


def test_all_stages_ran_and_saved_results(quick_demo):
    work, data, results = quick_demo
    assert set(results['seconds']) >= {
        'data', 'pretrain', 'pretrain sdae', 'pretrain mae', 'evaluate', 'evaluate sdae',
        'evaluate mae', 'evaluate random', 'report', 'total'}
    assert (data / 'demo' / 'manifest.json').exists()
    with open(work / 'results.json') as f:
        saved = json.load(f)
    for name in ('sdae', 'mae'):  # quick pretraining: two epochs
        assert saved['pretrain'][name] == str(work / name / 'epoch_2.pth')
    assert set(saved['evaluations']) == {'sdae', 'mae', 'random'}


def test_every_column_evaluated(quick_demo):
    _, _, results = quick_demo
    for name, res in results['evaluations'].items():
        assert res['failed'] == [], name
        assert res['checkpoint'] == (results['pretrain'][name] if name != 'random'
                                     else 'random')
        got = {(r['protocol'], r['metric']): r['value'] for r in res['rows']}
        assert set(got) == {('knn', 'top1')}
        assert all(0 <= v <= 100 for v in got.values())


def test_report_files(quick_demo):
    work, _, results = quick_demo
    md = (work / 'results.md').read_text()
    assert '| evaluation | metric | SdAE | MAE | random init |' in md
    knn = results['evaluations']['mae']['rows'][0]
    assert '| kNN (k=20, T=0.07, mean patch feature), digits val | top1 | ' in md
    assert f'{knn["value"]:.2f}' in md
    assert (work / 'loss_curve.png').stat().st_size > 1000
    assert len(list((work / 'masks').glob('*.png'))) == 4
