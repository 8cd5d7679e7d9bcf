"""Tests of tools/convert_checkpoint.py (run in-process through its main())."""
import os.path as osp

import pytest
import torch

import sdae_mm  # noqa: F401
from tests.helpers.tools import load_tool as load_tool_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'convert_checkpoint.py')
ARCH = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)


def load_tool():
    return load_tool_file('tools/convert_checkpoint.py')


tool = load_tool()


def demo_encoder_state(seed):
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(seed)
    model = VisionTransformer(arch=dict(ARCH), img_size=64, patch_size=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.state_dict()


@pytest.fixture(scope='module')
def encoders():
    return demo_encoder_state(1), demo_encoder_state(2)


def write_pretrain_ckpt(path, student, teacher=None, model_type=None, teacher_neck=False):
    """An mmengine-style pretraining checkpoint as the contract describes it."""
    state = {'backbone.' + k: v for k, v in student.items()}
    state['neck.mask_token'] = torch.zeros(1, 1, 32)
    if teacher is not None:
        state.update({'teacher.' + k: v for k, v in teacher.items()})
    if teacher_neck:
        state['teacher_neck.mask_token'] = torch.zeros(1, 1, 32)
    meta = {'epoch': 1, 'iter': 10}
    if model_type:
        meta['cfg'] = f"default_scope = 'mmpretrain'\nmodel = dict(type='{model_type}')\n"
    torch.save({'state_dict': state, 'meta': meta,
                'optimizer': {'state': {}, 'param_groups': []}}, path)
    return str(path)


def run(argv, capsys):
    code = tool.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize('target, key', [
    ('mmpretrain', 'layers.5.ffn.layers.1.weight'),
    ('mmdet', 'layers.5.ffn.layers.1.weight'),
    ('mmseg', 'layers.5.ffn.layers.1.weight'),
    ('timm', 'blocks.5.mlp.fc2.weight'),
])
def test_convert_each_target(tmp_path, capsys, encoders, target, key):
    student, teacher = encoders
    src = write_pretrain_ckpt(tmp_path / 'sdae.pth', student, teacher, 'SdAE')
    dst = tmp_path / 'out' / f'{target}.pth'
    code, out, err = run([src, dst, '--to', target], capsys)
    assert code == 0, err
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    state = saved['state_dict']
    assert len(state) == len(student)
    assert not any(k.startswith(('backbone.', 'teacher.', 'neck.')) for k in state)
    # SdAE fine-tunes the student
    assert torch.equal(state[key], student['layers.5.ffn.layers.1.weight'])
    meta = saved['meta']
    assert meta['target'] == target and meta['branch'] == 'student'
    assert meta['algorithm'] == 'sdae' and meta['source'] == osp.abspath(src)
    assert 'algorithm: sdae' in out and 'branch: student (default for sdae' in out
    assert 'the target model initialises itself' in out


def test_outputs_printed_per_target(tmp_path, capsys, encoders):
    src = write_pretrain_ckpt(tmp_path / 'mae.pth', encoders[0], model_type='MAE')
    notes = {}
    for target in ('mmseg', 'mmpretrain', 'timm'):
        code, out, _ = run([src, tmp_path / f'{target}.pth', '--to', target], capsys)
        assert code == 0
        notes[target] = out
    assert 'relative_position_bias_table' in notes['mmseg']
    assert 'gamma_1/gamma_2' in notes['mmseg']
    assert 'head' in notes['mmpretrain']
    assert 'num_heads=<as in your config>' in notes['timm']


def test_branch_defaults_and_override(tmp_path, capsys, encoders):
    student, teacher = encoders
    rc = write_pretrain_ckpt(tmp_path / 'rc.pth', student, teacher, teacher_neck=True)
    code, out, _ = run([rc, tmp_path / 'rc_out.pth', '--to', 'mmpretrain'], capsys)
    assert code == 0 and 'rc_mae' in out
    state = torch.load(tmp_path / 'rc_out.pth', weights_only=True)['state_dict']
    assert torch.equal(state['cls_token'], teacher['cls_token'])  # RC-MAE: teacher
    code, _, _ = run([rc, tmp_path / 'rc_s.pth', '--to', 'mmpretrain', '--branch',
                      'student'], capsys)
    state = torch.load(tmp_path / 'rc_s.pth', weights_only=True)['state_dict']
    assert code == 0 and torch.equal(state['cls_token'], student['cls_token'])
    dbot = write_pretrain_ckpt(tmp_path / 'dbot.pth', student, teacher, 'DBOT')
    code, out, _ = run([dbot, tmp_path / 'd.pth', '--to', 'timm', '--algo', 'rc_mae'],
                       capsys)
    state = torch.load(tmp_path / 'd.pth', weights_only=True)['state_dict']
    assert code == 0 and torch.equal(state['norm.weight'], teacher['ln1.weight'])
    code, out, _ = run([dbot, tmp_path / 'd2.pth', '--to', 'timm'], capsys)
    state = torch.load(tmp_path / 'd2.pth', weights_only=True)['state_dict']
    assert 'algorithm: dbot' in out
    assert torch.equal(state['norm.weight'], student['ln1.weight'])


def test_img_size(tmp_path, capsys, encoders):
    src = write_pretrain_ckpt(tmp_path / 'mae.pth', encoders[0])
    code, out, _ = run([src, tmp_path / 'o.pth', '--to', 'mmseg', '--img-size', '128'],
                       capsys)
    assert code == 0 and '64 -> 128 px (16x16 patches)' in out
    state = torch.load(tmp_path / 'o.pth', weights_only=True)['state_dict']
    assert state['pos_embed'].shape == (1, 257, 96)
    assert torch.equal(state['pos_embed'][:, 0], encoders[0]['pos_embed'][:, 0])


def test_errors(tmp_path, capsys, encoders):
    student, teacher = encoders
    mae = write_pretrain_ckpt(tmp_path / 'mae.pth', student, model_type='MAE')
    code, _, err = run([mae, tmp_path / 'x.pth', '--to', 'timm', '--branch', 'teacher'],
                       capsys)
    assert code == 1 and 'has no teacher encoder' in err
    assert not (tmp_path / 'x.pth').exists()

    broken = dict(teacher)
    del broken['layers.4.attn.qkv.bias']
    src = write_pretrain_ckpt(tmp_path / 'b.pth', student, broken, 'SdAE')
    code, _, err = run([src, tmp_path / 'x.pth', '--to', 'mmseg', '--branch', 'teacher'],
                       capsys)
    assert code == 1 and "teacher]: missing key 'layers.4.attn.qkv.bias'" in err

    bad = dict(student)
    bad['layers.0.attn.qkv.weight'] = torch.zeros(96 * 3, 95)
    src = write_pretrain_ckpt(tmp_path / 'c.pth', bad)
    code, _, err = run([src, tmp_path / 'x.pth', '--to', 'mmdet'], capsys)
    assert code == 1
    assert "'layers.0.attn.qkv.weight' has shape (288, 95), expected (288, 96)" in err
    assert not (tmp_path / 'x.pth').exists()

    with pytest.raises(SystemExit):
        tool.main([mae, str(tmp_path / 'x.pth'), '--to', 'detectron2'])


def test_help_documents_default_branches(capsys):
    with pytest.raises(SystemExit) as exc:
        tool.main(['--help'])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for line in ('sdae    student', 'dbot    student', 'rc_mae  teacher',
                 'mae     student'):
        assert line in out
    assert '--img-size' in out and '--branch' in out


def test_src_as_dst_is_refused_and_src_intact(tmp_path, capsys, encoders):
    src = write_pretrain_ckpt(tmp_path / 'epoch_1.pth', encoders[0], encoders[1], 'SdAE')
    before = open(src, 'rb').read()
    for extra in ([], ['--force']):
        code, _, err = run([src, src, '--to', 'mmpretrain'] + extra, capsys)
        assert code == 1 and 'it is the source checkpoint' in err
        assert open(src, 'rb').read() == before
    # the same file by another path
    code, _, err = run([src, tmp_path / '.' / 'epoch_1.pth', '--to', 'timm'], capsys)
    assert code == 1 and open(src, 'rb').read() == before


def test_existing_dst_needs_force(tmp_path, capsys, encoders):
    src = write_pretrain_ckpt(tmp_path / 'pre.pth', encoders[0])
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'a file of the user')
    code, _, err = run([src, dst, '--to', 'timm'], capsys)
    assert code == 1 and 'use --force' in err and dst.read_bytes() == b'a file of the user'
    code, _, _ = run([src, dst, '--to', 'timm', '--force'], capsys)
    assert code == 0 and 'blocks.0.norm1.weight' in torch.load(dst, weights_only=True)[
        'state_dict']


def test_failed_write_leaves_no_partial_or_empty_dst(tmp_path, capsys, encoders,
                                                     monkeypatch):
    src = write_pretrain_ckpt(tmp_path / 'pre.pth', encoders[0])
    real_save = torch.save

    def interrupted(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(0)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', interrupted)
    code, _, err = run([src, tmp_path / 'out' / 'dst.pth', '--to', 'mmseg'], capsys)
    assert code == 1 and 'No space left on device' in err and 'dst.pth' in err
    assert not (tmp_path / 'out' / 'dst.pth').exists()
    assert list((tmp_path / 'out').iterdir()) == []  # no temporary file left either


@pytest.mark.parametrize('content, what', [
    (b'', 'is empty (0 bytes)'), (b'not a checkpoint\n', 'a text file'),
    (bytes(range(1, 200)), 'not a torch checkpoint')])
def test_unreadable_src_is_named(tmp_path, capsys, content, what):
    src = tmp_path / 'bad.pth'
    src.write_bytes(content)
    code, _, err = run([src, tmp_path / 'o.pth', '--to', 'timm'], capsys)
    assert code == 1 and str(src) in err and what in err and 'weights_only' not in err
    assert not (tmp_path / 'o.pth').exists()


def test_official_files_convert_in_one_command(tmp_path, capsys):
    """An official RC-MAE and SdAE file (with their argparse args) to every target."""
    import argparse

    import timm
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=2, num_classes=0)
    enc = vit.state_dict()
    extras = dict(optimizer={}, epoch=9, scaler={}, args=argparse.Namespace(lr=1.5e-4))
    teacher = {k: v + 1 for k, v in enc.items()}
    rc = tmp_path / 'rc_mae_vit_pt.pth'
    torch.save(dict(student={'module.' + k: v for k, v in enc.items()}, teacher=teacher,
                    student_without_ddp=enc, teacher_without_ddp=teacher, **extras), rc)
    sdae = tmp_path / 'checkpoint-299.pth'
    torch.save(dict(model=dict(enc, mask_token=torch.zeros(1, 1, 16)), model_teacher=teacher,
                    **extras), sdae)
    for src, fmt, want in ((rc, 'official-rc-mae', teacher), (sdae, 'official-sdae', enc)):
        for target in ('mmpretrain', 'mmseg', 'mmdet', 'timm'):
            dst = tmp_path / f'{src.stem}_{target}.pth'
            code, out, err = run([src, dst, '--to', target], capsys)
            assert code == 0, err
            assert f'({fmt}:' in out
            state = torch.load(dst, weights_only=True)['state_dict']
            key = 'blocks.1.attn.qkv.weight' if target == 'timm' else 'layers.1.attn.qkv.weight'
            assert torch.equal(state[key], want['blocks.1.attn.qkv.weight'])
