"""Layouts of sdae-mm/mmpretrain checkpoints, methods, branches, names, pos-embed resizing."""
import pytest
import torch
from mmpretrain.models import VisionTransformer

from sdae_mm.checkpoint import (DEFAULT_BRANCH, convert_checkpoint_dict, detect_layout,
                                inspect_encoder, mmpretrain_to_timm_key, resize_pos_embed,
                                summarize_keys, timm_to_mmpretrain_key)
from sdae_mm.checkpoint.layouts import detect_algorithm

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def vit_state(seed, img_size=32):
    torch.manual_seed(seed)
    vit = VisionTransformer(arch=ARCH, img_size=img_size, patch_size=8)
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return vit.state_dict()


def pretrain(student, teacher=None, teacher_neck=False, cfg=None):
    state = {'backbone.' + k: v for k, v in student.items()}
    state['neck.decoder_pos_embed'] = torch.zeros(1, 17, 16)
    if teacher is not None:
        state.update({'teacher.' + k: v for k, v in teacher.items()})
    if teacher_neck:
        state['teacher_neck.mask_token'] = torch.zeros(1, 1, 16)
    return {'state_dict': state, 'meta': {'cfg': cfg} if cfg else {}}


@pytest.mark.parametrize('cfg, algo', [
    ("model = dict(\n    type='SdAE',\n    backbone=dict(type='MAEViT'))", 'sdae'),
    ("model = dict(\n    backbone=dict(type='MIMVisionTransformer',\n"
     "        init_cfg=dict(checkpoint='a(1).pth')),\n    type='DBOT')", 'dbot'),
    ("model = dict(backbone=dict(type='X'),\n    type='RCMAE')", 'rc_mae'),
    ("model = dict(type='mmpretrain.MAE', backbone=dict(type='MAEViT'))", 'mae'),
])
def test_detect_algorithm_from_meta_cfg(cfg, algo):
    assert detect_algorithm({}, {'cfg': 'default_scope = 1\n' + cfg})[0] == algo


def test_detect_algorithm_from_keys():
    assert detect_algorithm({'teacher.a': 0, 'teacher_neck.b': 0})[0] == 'rc_mae'
    assert detect_algorithm({'backbone.a': 0, 'teacher.a': 0})[0] is None
    assert detect_algorithm({'backbone.a': 0, 'neck.b': 0})[0] == 'mae'
    assert detect_algorithm({}, {'algorithm': 'dBOT'})[0] == 'dbot'


def test_default_branches_follow_official_finetuning():
    assert DEFAULT_BRANCH == {'sdae': 'student', 'dbot': 'student', 'rc_mae': 'teacher',
                              'mae': 'student'}


def test_sdae_mm_layouts_and_branches():
    student, teacher = vit_state(1), vit_state(2)
    ckpt = pretrain(student, teacher, cfg="model = dict(type='SdAE')")
    layout = detect_layout(ckpt)
    assert layout['format'] == 'sdae-mm' and layout['algo'] == 'sdae'
    state, meta, _ = convert_checkpoint_dict(ckpt, 'mmpretrain')
    assert meta['branch'] == 'student' and torch.equal(state['cls_token'], student['cls_token'])
    state, meta, _ = convert_checkpoint_dict(pretrain(student, teacher, True), 'mmpretrain')
    assert meta['algorithm'] == 'rc_mae' and meta['branch'] == 'teacher'
    assert torch.equal(state['cls_token'], teacher['cls_token'])
    # bare state dicts: a converted backbone, a prefixed one, a DDP one
    assert detect_layout(student)['format'] == 'mmpretrain'
    assert detect_layout({'module.' + k: v for k, v in student.items()})['naming'] == \
        'mmpretrain'
    with pytest.raises(KeyError, match="has no teacher encoder; it has: \\['student'\\]"):
        convert_checkpoint_dict(pretrain(student), 'timm', branch='teacher')


def test_mmpretrain_classifier_keeps_its_head():
    student = vit_state(1)
    student.pop('ln1.weight'), student.pop('ln1.bias')
    student['ln2.weight'], student['ln2.bias'] = torch.ones(32), torch.zeros(32)
    ckpt = {'state_dict': dict({'backbone.' + k: v for k, v in student.items()},
                               **{'head.fc.weight': torch.ones(5, 32),
                                  'head.fc.bias': torch.zeros(5)})}
    state, meta, _ = convert_checkpoint_dict(ckpt, 'mmpretrain')
    assert meta['with_head'] and state['head.fc.weight'].shape == (5, 32)
    assert 'backbone.ln2.weight' in state
    state, meta, _ = convert_checkpoint_dict(ckpt, 'timm')
    assert state['head.weight'].shape == (5, 32) and 'fc_norm.weight' in state
    state, meta, _ = convert_checkpoint_dict(ckpt, 'mmseg')
    assert not any(k.startswith(('head', 'ln2')) for k in state)


def test_errors_name_the_key():
    student, teacher = vit_state(1), vit_state(2)
    ckpt = pretrain(student, dict(teacher))
    del ckpt['state_dict']['teacher.layers.1.attn.proj.bias']
    with pytest.raises(KeyError, match=r"missing key 'layers\.1\.attn\.proj\.bias'"):
        convert_checkpoint_dict(ckpt, 'mmpretrain', branch='teacher')
    ckpt = pretrain(dict(student, **{'layers.0.ffn.layers.1.weight': torch.zeros(32, 65)}))
    with pytest.raises(ValueError, match=r"'layers\.0\.ffn\.layers\.1\.weight' has shape "
                       r'\(32, 65\), expected \(32, 64\)'):
        convert_checkpoint_dict(ckpt, 'mmseg')
    ckpt = pretrain(dict(student, pos_embed=torch.zeros(1, 16, 32)))
    with pytest.raises(ValueError, match='pos_embed has 16 positions'):
        convert_checkpoint_dict(ckpt, 'mmseg')
    ckpt = pretrain(dict(student, mask_token=torch.zeros(1, 1, 32)))
    with pytest.raises(KeyError, match=r"not parameters of a ViT encoder: \['mask_token'\]"):
        convert_checkpoint_dict(ckpt, 'mmpretrain')
    ckpt['state_dict'] = dict(pretrain(student)['state_dict'], **{'foo.bar': torch.ones(1)})
    with pytest.raises(KeyError, match=r"foo\.bar"):
        convert_checkpoint_dict(ckpt, 'mmpretrain')
    with pytest.raises(ValueError, match='img_size=100 must be a positive multiple of the '
                       'patch size 8'):
        convert_checkpoint_dict(pretrain(student), 'timm', img_size=100)
    with pytest.raises(ValueError, match='target must be one of'):
        convert_checkpoint_dict(pretrain(student), 'detectron2')
    with pytest.raises(KeyError, match="none of the layouts.*'weights'"):
        detect_layout({'weights': 1})
    with pytest.raises(KeyError, match='holds a list'):
        detect_layout([1, 2])


def test_inspect_encoder_reads_sizes():
    spec = inspect_encoder(vit_state(0))
    assert spec == dict(embed_dims=32, num_layers=2, patch_size=8, in_channels=3,
                        mlp_hidden=64, grid=(4, 4), final_norm=True, fc_norm=False,
                        num_classes=0)


def test_names_round_trip():
    keys = list(vit_state(0))
    for key in keys:
        assert timm_to_mmpretrain_key(mmpretrain_to_timm_key(key)) == key
    assert mmpretrain_to_timm_key('layers.11.ffn.layers.0.0.weight') == \
        'blocks.11.mlp.fc1.weight'
    assert mmpretrain_to_timm_key('ln1.weight') == 'norm.weight'
    assert mmpretrain_to_timm_key('ln2.bias') == 'fc_norm.bias'
    with pytest.raises(KeyError):
        mmpretrain_to_timm_key('layers.0.gamma_1')
    assert summarize_keys(['a.0.b', 'a.1.b', 'a.3.b', 'c']) == ['a.{0,1,3}.b', 'c']


def test_resize_pos_embed_is_mmpretrains_and_keeps_cls():
    from mmpretrain.models.utils import resize_pos_embed as reference
    pos = torch.randn(1, 1 + 8 * 8, 16, generator=torch.Generator().manual_seed(3))
    out = resize_pos_embed(pos, (8, 8), (14, 14))
    assert out.shape == (1, 197, 16) and torch.equal(out[:, 0], pos[:, 0])
    torch.testing.assert_close(out, reference(pos, (8, 8), (14, 14)), rtol=0, atol=0)
    assert torch.equal(resize_pos_embed(pos, (8, 8), (8, 8)), pos)
    with pytest.raises(ValueError, match='does not fit a 7x7 grid'):
        resize_pos_embed(pos, (7, 7), (8, 8))
    state, meta, _ = convert_checkpoint_dict(pretrain(vit_state(0)), 'timm', img_size=64)
    assert meta['grid'] == [8, 8] and state['pos_embed'].shape == (1, 65, 32)
