"""The end-to-end demo's outputs: results table and loss curve."""
import glob
import json
import os.path as osp
from typing import Dict, List, Tuple


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


def plot_loss_curve(work_dir: str, out_png: str, title: str = 'SdAE pretraining loss') -> str:
    """Plot the training loss of a run to ``out_png``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    steps, values = loss_curve(work_dir)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, values, lw=1.2)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss (1 - cosine)')
    ax.set_title(title)
    ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def _fmt(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def results_rows(results: Dict) -> List[Tuple[str, str, str, str]]:
    """``(evaluation, metric, SdAE, random init)`` rows of the demo's results."""
    rows = []
    knn, lin = results.get('knn', {}), results.get('linear', {})
    if knn:
        rows.append(('kNN (k=20, T=0.07, mean patch feature), digits val', 'top-1 %',
                     _fmt(knn['sdae'].get('top1')),
                     _fmt(knn['random'].get('top1'))))
    if lin:
        rows.append(('linear probe, digits val', 'top-1 %', _fmt(lin.get('sdae')),
                     _fmt(lin.get('random'))))
    if 'seg' in results:
        rows.append(('UperNet, digit scenes val', 'mIoU %', _fmt(results['seg']['mIoU']), '-'))
    if 'det' in results:
        det = results['det']
        rows.append(('Mask R-CNN, digit scenes val', 'bbox AP %',
                     _fmt(100 * det['coco/bbox_mAP']), '-'))
        rows.append(('Mask R-CNN, digit scenes val', 'segm AP %',
                     _fmt(100 * det['coco/segm_mAP']), '-'))
    return rows


def write_report(results: Dict, out_md: str) -> str:
    """Write the results table as Markdown; returns the text."""
    lines = ['| evaluation | metric | SdAE pretrained | random init |', '|---|---|---|---|']
    lines += [f'| {a} | {b} | {c} | {d} |' for a, b, c, d in results_rows(results)]
    secs = results.get('seconds', {})
    if secs:
        lines += ['', 'Seconds per stage: ' + ', '.join(
            f'{k} {v:.0f}' for k, v in secs.items() if k != 'total')]
    text = '\n'.join(lines) + '\n'
    with open(out_md, 'w') as f:
        f.write(text)
    return text
