"""SdMIMSegViT: loading converted (and raw) sdae-mm checkpoints into mmseg's MAE ViT."""
import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmseg.registry import MODELS

from sdae_mm.downstream.seg import SdMIMSegViT
from sdae_mm.checkpoint import convert_checkpoint_dict

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmseg'

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=128)


def encoder_state(img_size=32, patch_size=8, seed=0):
    """State dict of an mmpretrain ViT encoder (the pretraining naming contract)."""
    torch.manual_seed(seed)
    vit = VisionTransformer(arch=ARCH, img_size=img_size, patch_size=patch_size,
                            norm_cfg=dict(type='LN', eps=1e-6))
    vit.init_weights()
    with torch.no_grad():  # make every tensor distinctive
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return vit.state_dict()


def pretraining_checkpoint(path, img_size=32):
    """A fabricated SdAE pretraining checkpoint: student, teacher and decoder."""
    student, teacher = encoder_state(img_size, seed=0), encoder_state(img_size, seed=1)
    state = {'backbone.' + k: v for k, v in student.items()}
    state.update({'teacher.' + k: v for k, v in teacher.items()})
    state['neck.decoder_pos_embed'] = torch.zeros(1, 17, 16)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return student, teacher


def build_backbone(checkpoint=None, prefix=None, img_size=64, **kwargs):
    init_cfg = None
    if checkpoint is not None:
        init_cfg = dict(type='Pretrained', checkpoint=str(checkpoint))
        if prefix is not None:
            init_cfg['prefix'] = prefix
    cfg = dict(type='SdMIMSegViT', img_size=img_size, patch_size=8, embed_dims=32,
               num_layers=2, num_heads=2, mlp_ratio=4, out_indices=(0, 1),
               init_values=1.0, norm_cfg=dict(type='LN', eps=1e-6), init_cfg=init_cfg)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def interpolate_reference(pos_embed, src, dst):
    grid = pos_embed[:, 1:].reshape(1, src, src, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, size=(dst, dst), mode='bicubic',
                                           align_corners=False)
    return torch.cat([pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, dst * dst, -1)],
                     dim=1)


@pytest.fixture
def converted(tmp_path):
    """A `--to mmseg` conversion of the teacher of a fabricated pretraining checkpoint."""
    raw = tmp_path / 'pretrain.pth'
    student, teacher = pretraining_checkpoint(raw)
    ckpt = torch.load(raw)
    state, meta, _ = convert_checkpoint_dict(ckpt, 'mmseg', branch='teacher',
                                             algo='sdae')
    path = tmp_path / 'teacher_mmseg.pth'
    torch.save({'state_dict': state, 'meta': meta}, path)
    return path, teacher, raw


def test_registered_in_mmseg():
    assert MODELS.get('SdMIMSegViT') is SdMIMSegViT


def test_converted_checkpoint_leaves_only_new_params(converted):
    path, teacher, _ = converted
    model = build_backbone(path)
    model.init_weights()
    report = model.init_report
    # exactly the parameters a plain pretrained ViT lacks
    assert report['initialised'] == [
        'layers.0.attn.relative_position_bias_table', 'layers.0.gamma_1',
        'layers.0.gamma_2', 'layers.1.attn.relative_position_bias_table',
        'layers.1.gamma_1', 'layers.1.gamma_2']
    assert report['skipped'] == ['ln1.bias', 'ln1.weight']  # final norm, unused
    assert report['pos_embed'] == ((4, 4), (8, 8))
    assert len(report['loaded']) == len(teacher) - 2
    state = model.state_dict()
    for key, value in teacher.items():
        if key in ('ln1.weight', 'ln1.bias', 'pos_embed'):
            continue
        assert torch.equal(state[key], value), key
    # pos_embed: cls position kept, patch grid 4x4 -> 8x8 bicubic
    assert torch.allclose(state['pos_embed'],
                          interpolate_reference(teacher['pos_embed'], 4, 8), atol=1e-6)
    # new parameters: zero relative position bias, layer scale = init_values
    for i in range(2):
        assert torch.count_nonzero(state[f'layers.{i}.attn.relative_position_bias_table']) == 0
        assert torch.equal(state[f'layers.{i}.gamma_1'], torch.ones(32))


def test_same_grid_keeps_pos_embed_and_output_matches_plain_vit(converted):
    """At the pretraining size the backbone computes the pretrained ViT's features."""
    path, teacher, _ = converted
    model = build_backbone(path, img_size=32, out_indices=(1, ))
    model.init_weights()
    assert model.init_report['pos_embed'] == ((4, 4), (4, 4))
    assert torch.equal(model.state_dict()['pos_embed'], teacher['pos_embed'])
    vit = VisionTransformer(arch=ARCH, img_size=32, patch_size=8, out_type='raw',
                            final_norm=False, norm_cfg=dict(type='LN', eps=1e-6))
    vit.load_state_dict({k: v for k, v in teacher.items() if not k.startswith('ln1.')})
    model.eval(), vit.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model(x)[0]  # (B, C, 4, 4); zero rel-pos bias and unit gammas
        ref = vit(x)[0][:, 1:].transpose(1, 2).reshape(2, 32, 4, 4)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_raw_pretraining_checkpoint_with_our_prefix(converted):
    _, teacher, raw = converted
    model = build_backbone(raw, prefix='teacher.')
    model.init_weights()
    assert model.init_report['prefix'] == 'teacher.'
    assert torch.equal(model.layers[1].attn.qkv.weight, teacher['layers.1.attn.qkv.weight'])
    student_model = build_backbone(raw, prefix='backbone.')
    student_model.init_weights()
    assert not torch.equal(student_model.layers[1].attn.qkv.weight,
                           teacher['layers.1.attn.qkv.weight'])


def test_raw_pretraining_checkpoint_without_prefix_takes_the_default_branch(converted):
    _, _, raw = converted
    student = torch.load(raw)['state_dict']
    model = build_backbone(raw)  # SdAE or dBOT (keys only): both fine-tune the student
    model.init_weights()
    assert model.init_report['source']['branch'] == 'student'
    assert torch.equal(model.layers[1].attn.qkv.weight,
                       student['backbone.layers.1.attn.qkv.weight'])
    with pytest.raises(KeyError, match="prefix 'student.'"):
        build_backbone(raw, prefix='student.').init_weights()


def test_qv_bias_pair_is_refused_naming_the_key(tmp_path):
    """BEiT naming (q_bias/v_bias) is not a layout of a pretrained MAE-family encoder."""
    state = encoder_state()
    for i in range(2):
        q, _, v = state.pop(f'layers.{i}.attn.qkv.bias').chunk(3)
        state[f'layers.{i}.attn.q_bias'], state[f'layers.{i}.attn.v_bias'] = q, v
    path = tmp_path / 'beit_style.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(KeyError, match=r'layers\.0\.attn\.qkv\.bias'):
        build_backbone(path).init_weights()


@pytest.mark.parametrize('edit, error, match', [
    (lambda s: s.update(extra_head=torch.zeros(3)), KeyError, 'extra_head'),
    (lambda s: s.pop('layers.1.attn.proj.weight'), KeyError, 'layers.1.attn.proj.weight'),
    (lambda s: s.update({'layers.0.attn.proj.weight': torch.zeros(32, 16)}), ValueError,
     r"'layers.0.attn.proj.weight' has shape \(32, 16\), expected \(32, 32\)"),
    (lambda s: s.update(pos_embed=torch.zeros(1, 16, 32)), ValueError,
     'pos_embed has 16 positions'),
])
def test_bad_checkpoints_raise_clear_errors(tmp_path, edit, error, match):
    state = encoder_state()
    edit(state)
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(error, match=match):
        build_backbone(path).init_weights()


def test_deeper_checkpoint_is_refused(tmp_path):
    state = encoder_state()
    state['layers.2.ln1.weight'] = torch.ones(32)
    path = tmp_path / 'deeper.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(KeyError, match=r'layers\.2\.ln1'):
        build_backbone(path).init_weights()


def test_missing_or_empty_checkpoint_path(tmp_path):
    with pytest.raises(ValueError, match='init_cfg.checkpoint'):
        build_backbone(checkpoint='').init_weights()
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build_backbone(checkpoint=tmp_path / 'nope.pth').init_weights()


def test_bad_init_cfg_and_input_size():
    with pytest.raises(ValueError, match='init_cfg'):
        build_backbone(init_cfg=dict(type='Normal'))
    with pytest.raises(ValueError, match='pretrained'):
        build_backbone(pretrained='x.pth')
    model = build_backbone()
    model.init_weights()
    assert model.init_report['checkpoint'] is None
    with pytest.raises(ValueError, match=r'input size \(48, 64\)'):
        model(torch.zeros(1, 3, 48, 64))
    assert [tuple(o.shape) for o in model(torch.zeros(1, 3, 64, 64))] == [(1, 32, 8, 8)] * 2
