"""tools/analysis_tools/benchmark_pipeline.py on a few small synthetic JPEGs."""
import json
import os.path as osp

import numpy as np
from PIL import Image

from tests.helpers.tools import load_tool as load_tool_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_pipeline.py')
CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets', 'imagenet_bs96_sdae.py')


def load_tool():
    return load_tool_file('tools/analysis_tools/benchmark_pipeline.py')


tool = load_tool()


def test_imagenet_like_sizes_and_files(tmp_path):
    rng = np.random.default_rng(0)
    sizes = np.array([tool.imagenet_like_size(rng) for _ in range(2000)], dtype=float)
    assert 440 < sizes[:, 0].mean() < 520 and 370 < sizes[:, 1].mean() < 450
    assert 75 <= sizes[:, 2].min() and sizes[:, 2].max() <= 96
    assert (sizes[:, :2].max(1) == 500).mean() > 0.7
    stats = tool.make_synthetic_jpegs(str(tmp_path), 3, size=(200, 150), quality=90)
    assert stats['num'] == 3 and stats['mean_width'] == 200
    with Image.open(tmp_path / 'train' / 'synthetic' / '000000.JPEG') as img:
        assert img.format == 'JPEG' and img.size == (200, 150)


def test_tool_times_both_loaders_and_measures_psnr(tmp_path):
    out = tmp_path / 'pipe.json'
    result = tool.main([CONFIG, '--synthetic', '6', '--size', '600', '480', '--batch-size',
                        '3', '--rounds', '2', '--psnr-images', '4', '--json', str(out)])
    assert json.loads(out.read_text())['per_core'] == result['per_core']
    core = result['per_core']
    assert core['ours_img_s'] > 0 and core['official_img_s'] > 0 and core['speedup_median'] > 0
    assert result['crop']['type'] == 'DecodeRandomResizedCrop'
    # the fast IDCT changes every crop a little
    assert result['psnr']['crops'] == 4 and result['psnr']['crops_changed'] == 4
    assert result['psnr']['psnr_db_min'] > 30
    exact = tool.main([CONFIG, '--synthetic', '3', '--size', '300', '200', '--batch-size',
                       '3', '--rounds', '1', '--exact'])
    assert exact['crop']['exact'] is True and 'psnr' not in exact
    pil = tool.main([CONFIG, '--synthetic', '3', '--size', '300', '200', '--batch-size', '3',
                     '--rounds', '1', '--psnr-images', '2', '--decode-backend', 'pillow',
                     '--resize-backend', 'pillow'])
    assert pil['crop']['decode_backend'] == 'pillow' and pil['crop']['resize_backend'] == 'pillow'
    assert pil['psnr']['crops'] == 2 and pil['psnr']['psnr_db_min'] > 30
