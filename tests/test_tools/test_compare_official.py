"""tools/analysis_tools/compare_official.py against a stand-in for the official SdAE source.

The official code is not part of the project, so a small directory with its interface
(``models_mae``, ``models_teacher``, ``util/misc.py``) and its legacy habits (``np.float``
while building, ``from torch._six import inf``, ``Block(..., qk_scale=None)``) stands in.
"""
import json
import sys
import textwrap

import numpy as np
import pytest

from tools.analysis_tools import compare_official

# ours: ViT-S/16 at 224 as the official small model, the decoder shrunk to one 32-d block
SMALL_DECODER = ['model.neck.embed_dims=32', 'model.neck.num_layers=1',
                 'model.neck.num_heads=2']

MODELS_MAE = '''
import numpy as np
import torch
import torch.nn as nn


class Block(nn.Module):  # like timm 1.x: no qk_scale argument
    def __init__(self, dim, num_heads, drop_path=0.):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        return x + self.fc(x)


class Student(nn.Module):
    def __init__(self, drop_path):
        super().__init__()
        self.scale = np.float(1)  # the official pos_embed.py needs the removed alias
        self.embed = nn.Linear(3 * 16 * 16, 384)
        self.block = Block(384, 6, qk_scale=None, drop_path=drop_path)

    def forward(self, imgs, mask_ratio=0.75):
        B = imgs.shape[0]
        patches = imgs.unfold(2, 16, 16).unfold(3, 16, 16).permute(0, 2, 3, 1, 4, 5)
        x = self.block(self.embed(patches.reshape(B, 196, -1)))
        ids = torch.argsort(torch.rand(B, 196), dim=1)
        keep = int(196 * (1 - mask_ratio))
        mask = torch.ones(B, 196)
        mask.scatter_(1, ids[:, :keep], 0)
        return x, mask, ids[:, keep:]


def mae_vit_small_patch16(norm_pix_loss=False, drop_path=0.):
    return Student(drop_path)
'''

MODELS_TEACHER = '''
import torch
import torch.nn as nn


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3 * 16 * 16, 384)

    def forward(self, x, ids_unkeep=None, shrink_num=None, ncrop_loss=None):
        B = x.shape[0]
        patches = x.unfold(2, 16, 16).unfold(3, 16, 16).permute(0, 2, 3, 1, 4, 5)
        feats = self.embed(patches.reshape(B, 196, -1))
        n = shrink_num - shrink_num % ncrop_loss
        feats = torch.gather(feats, 1, ids_unkeep[:, :n, None].expand(-1, -1, 384))
        return feats.reshape(B * ncrop_loss, n // ncrop_loss, 384)


def vit_small_patch16(drop_path_rate=0., shrink_num=None):
    return Teacher()
'''

UTIL_MISC = '''
from torch._six import inf


class NativeScalerWithGradNormCount:
    def __call__(self, loss, optimizer, clip_grad=None, parameters=None, create_graph=False,
                 update_grad=True):
        loss.backward()
        if update_grad:
            optimizer.step()
'''


tool = compare_official


@pytest.fixture
def official_src(tmp_path, monkeypatch):
    src = tmp_path / 'SdAE'
    (src / 'util').mkdir(parents=True)
    (src / 'models_mae.py').write_text(textwrap.dedent(MODELS_MAE))
    (src / 'models_teacher.py').write_text(textwrap.dedent(MODELS_TEACHER))
    (src / 'util' / 'misc.py').write_text(textwrap.dedent(UTIL_MISC))
    # the tool leaves the official modules imported: drop them after the test
    for name in ('models_mae', 'models_teacher', 'util', 'util.misc'):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield str(src)
    for name in ('models_mae', 'models_teacher', 'util', 'util.misc'):
        sys.modules.pop(name, None)


def assert_shims_removed(src):
    assert 'float' not in np.__dict__
    assert 'torch._six' not in sys.modules
    assert src not in sys.path


def test_paired_rounds_write_ratios(official_src, tmp_path):
    out = tmp_path / 'paired.json'
    returned = tool.main(['--official-src', official_src, '--pairs', '3', '--warmup', '1',
                          '--json', str(out),
                          '--cfg-options', *SMALL_DECODER])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert_shims_removed(official_src)
    names = ['official', 'ours_ema', 'ours']
    assert sorted(written['step_ms']) == sorted(names)
    assert len(written['step_ms_all']) == 3
    for row in written['step_ms_all']:
        assert sorted(row) == sorted(names) and all(v > 0 for v in row.values())
    for name in names:
        times = sorted(row[name] for row in written['step_ms_all'])
        assert written['step_ms'][name] == pytest.approx(times[1])
        assert written['img_per_s'][name] == pytest.approx(8e3 / times[1])
    for name in ('ours_ema', 'ours'):
        ratios = sorted(row['official'] / row[name] for row in written['step_ms_all'])
        speedup = written['speedup'][name]
        assert speedup['median'] == pytest.approx(ratios[1])
        assert speedup['q25'] <= speedup['median'] <= speedup['q75']
        assert speedup['faster_in'] == sum(r > 1 for r in ratios)
    assert written['settings'] == tool.RECIPE
    assert (written['device'], written['amp_ours'], written['amp_official']) == \
        ('cpu', 'none', 'none')
    assert 'peak_mem_mb' not in written  # one process held both models


def test_official_alone_reports_its_memory(official_src, tmp_path):
    out = tmp_path / 'official.json'
    tool.main(['--official-src', official_src, '--only', 'official', '--pairs', '2',
               '--warmup', '0', '--json', str(out)])
    written = json.loads(out.read_text())
    assert list(written['step_ms']) == ['official'] and 'speedup' not in written
    assert written['step_ms']['official'] > 0
    assert 0 < written['import_mem_mb'] <= written['peak_mem_mb']
    assert_shims_removed(official_src)


def test_official_step_trains_the_student(official_src):
    import torch
    step = tool.OfficialStep(official_src, 's', 2, torch.device('cpu'))
    before = step.student.embed.weight.detach().clone()
    loss = step()
    assert 0 <= loss <= 2  # 1 - cosine similarity
    assert not torch.equal(before, step.student.embed.weight)
    assert all(p.grad is None for p in step.student.parameters())  # zero_grad ran


def test_rejects_a_directory_without_the_official_code(tmp_path):
    with pytest.raises(FileNotFoundError, match='models_mae, models_teacher, util.misc'):
        tool.import_official(str(tmp_path))


def test_rejects_an_official_module_loaded_from_elsewhere(official_src, tmp_path,
                                                          monkeypatch):
    import types
    other = types.ModuleType('models_mae')
    other.__file__ = str(tmp_path / 'elsewhere' / 'models_mae.py')
    monkeypatch.setitem(sys.modules, 'models_mae', other)
    with pytest.raises(ImportError, match='not under --official-src'):
        tool.import_official(official_src)
    assert_shims_removed(official_src)


def test_rejects_archs_without_an_official_model(official_src):
    import torch
    with pytest.raises(ValueError, match="arch must be one of"):
        tool.OfficialStep(official_src, 't', 2, torch.device('cpu'))
    with pytest.raises(SystemExit):
        tool.parse_args(['--official-src', official_src, '--arch', 't'])


def test_block_shim_passes_everything_but_qk_scale():
    seen = {}

    def block(*args, **kwargs):
        seen.update(args=args, kwargs=kwargs)

    build = tool.block_without_qk_scale(block)
    build(8, 2, qk_scale=None, qkv_bias=True)
    assert seen == dict(args=(8, 2), kwargs=dict(qkv_bias=True))
    with pytest.raises(ValueError, match='qk_scale=0.5'):
        build(8, 2, qk_scale=0.5)
