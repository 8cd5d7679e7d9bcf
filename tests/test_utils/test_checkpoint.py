"""Tests of sdae_mm.utils.checkpoint: pretraining checkpoint -> downstream backbones."""
import pytest
import torch

import sdae_mm  # noqa: F401
from sdae_mm.utils import checkpoint as ck

DEMO_ARCH = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)


def demo_vit(img_size=64, seed=None, **kwargs):
    """The demo ViT (mmpretrain VisionTransformer); random non-trivial weights."""
    from mmpretrain.models import VisionTransformer
    model = VisionTransformer(arch=dict(DEMO_ARCH), img_size=img_size, patch_size=8,
                              **kwargs)
    model.eval()  # (mmpretrain's train() does not return the module)
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model


def fake_pretrain_state_dict(student, teacher=None, teacher_neck=False):
    state = {'backbone.' + k: v.clone() for k, v in student.state_dict().items()}
    state['neck.decoder_pos_embed'] = torch.zeros(1, 65, 32)
    if teacher is not None:
        state.update({'teacher.' + k: v.clone() for k, v in teacher.state_dict().items()})
    if teacher_neck:
        state['teacher_neck.decoder_pos_embed'] = torch.zeros(1, 65, 32)
    return state


@pytest.fixture(scope='module')
def models():
    return demo_vit(seed=1), demo_vit(seed=2)


@pytest.fixture(scope='module')
def image():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def save_converted(tmp_path, converted, meta, name='converted.pth'):
    path = tmp_path / name
    torch.save({'state_dict': converted, 'meta': meta}, path)
    return str(path)


# ---------------------------------------------------------------------- loading
def test_load_checkpoint_dict_reads_runner_checkpoints(tmp_path, models):
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_load_checkpoint_dict')
    hub.update_scalar('train/loss', 1.5)
    state = fake_pretrain_state_dict(models[0])
    path = tmp_path / 'epoch_1.pth'
    # what mmengine's Runner writes: message hub (HistoryBuffer), numpy in meta
    torch.save({'state_dict': state, 'message_hub': hub.state_dict(),
                'meta': {'epoch': 1, 'seed': np.int64(0),
                         'cfg': "model = dict(type='MAE')"},
                'optimizer': {'state': {}, 'param_groups': []}}, path)
    loaded, meta = ck.load_checkpoint_dict(str(path))
    assert set(loaded) == set(state) and meta['epoch'] == 1
    torch.save(state, tmp_path / 'bare.pth')
    loaded, meta = ck.load_checkpoint_dict(str(tmp_path / 'bare.pth'))
    assert set(loaded) == set(state) and meta == {}


class _Opaque:
    pass


def test_load_checkpoint_dict_refuses_arbitrary_objects(tmp_path):
    torch.save({'state_dict': {}, 'meta': {'thing': _Opaque()}}, tmp_path / 'x.pth')
    with pytest.raises(ValueError, match='holds objects the safe loader refuses'):
        ck.load_checkpoint_dict(str(tmp_path / 'x.pth'))
    torch.save({'model': {'a': 1}}, tmp_path / 'y.pth')
    with pytest.raises(KeyError, match="has no 'state_dict'"):
        ck.load_checkpoint_dict(str(tmp_path / 'y.pth'))


# ------------------------------------------------------------- algorithm, branch
@pytest.mark.parametrize('cfg, algo', [
    ("model = dict(\n    type='SdAE',\n    backbone=dict(type='MAEViT'))", 'sdae'),
    ("model = dict(\n    backbone=dict(type='MIMVisionTransformer',\n"
     "        init_cfg=dict(checkpoint='a(1).pth')),\n    type='DBOT')\n"
     "optim_wrapper = dict(type='OptimWrapper')", 'dbot'),
    ("model = dict(backbone=dict(type='X', init_cfg=dict(type='Pretrained')),\n"
     "    type='RCMAE')", 'rc_mae'),
    ("model = dict(type='mmpretrain.MAE', backbone=dict(type='MAEViT'))", 'mae'),
    ("model = dict(type='DBOT')", 'dbot'),
])
def test_detect_algorithm_from_meta_cfg(cfg, algo):
    assert ck.detect_algorithm({}, {'cfg': 'default_scope = 1\n' + cfg})[0] == algo


def test_detect_algorithm_from_keys():
    assert ck.detect_algorithm({'backbone.a': 0, 'teacher.a': 0, 'teacher_neck.b': 0},
                               {})[0] == 'rc_mae'
    assert ck.detect_algorithm({'backbone.a': 0, 'teacher.a': 0})[0] == 'sdae_or_dbot'
    assert ck.detect_algorithm({'backbone.a': 0, 'neck.b': 0}, {'cfg': 'x = 1'})[0] == 'mae'
    assert ck.detect_algorithm({}, {'algorithm': 'dBOT'})[0] == 'dbot'


def test_default_branches_follow_official_finetuning():
    assert ck.DEFAULT_BRANCH == {'sdae': 'student', 'dbot': 'student',
                                 'rc_mae': 'teacher', 'mae': 'student',
                                 'sdae_or_dbot': 'student'}
    with pytest.raises(ValueError, match="unknown algorithm 'byol'"):
        ck.default_branch('byol')


def test_extract_encoder_missing_teacher_names_prefix(models):
    state = fake_pretrain_state_dict(models[0])
    with pytest.raises(KeyError, match=r"no key starting with 'teacher\.'"):
        ck.extract_encoder(state, 'teacher')
    with pytest.raises(KeyError, match=r"no key starting with 'teacher\.'"):
        ck.convert_state_dict(state, {}, 'timm', branch='teacher')
    # RC-MAE's default is the teacher: the error names the prefix too
    with pytest.raises(KeyError, match=r"'teacher\.'"):
        ck.convert_state_dict(state, {}, 'timm', algo='rc_mae')


# -------------------------------------------------------------------- checking
def test_inspect_encoder_reads_sizes(models):
    spec = ck.inspect_encoder(models[0].state_dict())
    assert dict(spec) == dict(embed_dims=96, num_layers=6, patch_size=8, in_channels=3,
                              mlp_hidden=384, grid=(8, 8))


def test_missing_key_is_an_error_naming_it(models):
    state = fake_pretrain_state_dict(*models)
    del state['teacher.layers.3.attn.proj.bias']
    with pytest.raises(KeyError,
                       match=r"missing key 'teacher\.layers\.3\.attn\.proj\.bias'"):
        ck.convert_state_dict(state, {}, 'mmpretrain', branch='teacher')
    state = fake_pretrain_state_dict(*models)
    del state['backbone.ln1.weight']
    with pytest.raises(KeyError, match=r"'backbone\.ln1\.weight'"):
        ck.convert_state_dict(state, {}, 'timm')


def test_mismatched_shape_is_an_error_naming_it(models):
    state = fake_pretrain_state_dict(*models)
    state['backbone.layers.2.ffn.layers.1.weight'] = torch.zeros(96, 100)
    with pytest.raises(ValueError, match=r"'backbone\.layers\.2\.ffn\.layers\.1\.weight' "
                       r'has shape \(96, 100\), expected \(96, 384\)'):
        ck.convert_state_dict(state, {}, 'mmseg')
    state = fake_pretrain_state_dict(*models)
    state['backbone.pos_embed'] = torch.zeros(1, 64, 96)  # no cls position
    with pytest.raises(ValueError, match='pos_embed has 64 positions'):
        ck.convert_state_dict(state, {}, 'mmseg')


def test_unexpected_key_is_an_error(models):
    state = fake_pretrain_state_dict(*models)
    state['backbone.mask_token'] = torch.zeros(1, 1, 96)
    with pytest.raises(KeyError, match=r"unexpected key 'backbone\.mask_token'"):
        ck.convert_state_dict(state, {}, 'mmpretrain')


def test_bad_img_size(models):
    state = fake_pretrain_state_dict(*models)
    with pytest.raises(ValueError, match='img_size=100 must be a positive multiple of '
                       'the patch size 8'):
        ck.convert_state_dict(state, {}, 'timm', img_size=100)
    with pytest.raises(ValueError, match="target must be one of"):
        ck.convert_state_dict(state, {}, 'detectron2')


# ------------------------------------------------------------ position embedding
def test_resize_pos_embed_matches_mmpretrain_and_keeps_cls():
    from mmpretrain.models.utils import resize_pos_embed
    pos = torch.randn(1, 1 + 8 * 8, 96, generator=torch.Generator().manual_seed(3))
    out = ck.resize_pos_embed(pos, (8, 8), (14, 14))
    assert out.shape == (1, 1 + 14 * 14, 96)
    assert torch.equal(out[:, 0], pos[:, 0])
    torch.testing.assert_close(out, resize_pos_embed(pos, (8, 8), (14, 14)),
                               rtol=0, atol=0)
    assert torch.equal(ck.resize_pos_embed(pos, (8, 8), (8, 8)), pos)
    with pytest.raises(ValueError, match='does not fit a 7x7 grid'):
        ck.resize_pos_embed(pos, (7, 7), (8, 8))


# ---------------------------------------------------------------------- names
def test_timm_names():
    assert ck.mmpretrain_to_timm_key('layers.11.ffn.layers.0.0.weight') == \
        'blocks.11.mlp.fc1.weight'
    assert ck.mmpretrain_to_timm_key('layers.0.ln2.bias') == 'blocks.0.norm2.bias'
    assert ck.mmpretrain_to_timm_key('patch_embed.projection.weight') == \
        'patch_embed.proj.weight'
    assert ck.mmpretrain_to_timm_key('ln1.weight') == 'norm.weight'
    with pytest.raises(KeyError, match="no timm name for ViT parameter 'layers.0.gamma_1'"):
        ck.mmpretrain_to_timm_key('layers.0.gamma_1')


# ------------------------------------------------------------------ round trips
def test_mmpretrain_round_trip_student_and_teacher(tmp_path, models, image):
    from mmpretrain.models import VisionTransformer
    student, teacher = models
    state = fake_pretrain_state_dict(student, teacher)
    meta = {'cfg': "model = dict(type='SdAE')"}
    outputs = {}
    for branch, source in (('student', student), ('teacher', teacher)):
        converted, out_meta, _ = ck.convert_state_dict(state, meta, 'mmpretrain',
                                                       branch=branch)
        assert out_meta['branch'] == branch and out_meta['algorithm'] == 'sdae'
        # strict: every key of the target, nothing else
        target = demo_vit()
        target.load_state_dict(converted, strict=True)
        # the way configs load it: init_cfg Pretrained, no prefix
        path = save_converted(tmp_path, converted, out_meta, f'{branch}.pth')
        target = VisionTransformer(
            arch=dict(DEMO_ARCH), img_size=64, patch_size=8,
            init_cfg=dict(type='Pretrained', checkpoint=path))
        target.init_weights()
        target.eval()
        with torch.no_grad():
            outputs[branch] = target(image)[0]
            torch.testing.assert_close(outputs[branch], source(image)[0])
    assert not torch.allclose(outputs['student'], outputs['teacher'])


def test_default_branch_picks_the_teacher_for_rc_mae(models):
    student, teacher = models
    state = fake_pretrain_state_dict(student, teacher, teacher_neck=True)
    converted, meta, _ = ck.convert_state_dict(state, {}, 'mmpretrain')
    assert meta['algorithm'] == 'rc_mae' and meta['branch'] == 'teacher'
    assert torch.equal(converted['layers.0.attn.qkv.weight'],
                       teacher.state_dict()['layers.0.attn.qkv.weight'])
    # an mmpretrain MAE checkpoint: only the student
    mae_state = fake_pretrain_state_dict(student)
    converted, meta, _ = ck.convert_state_dict(
        mae_state, {'cfg': "model = dict(type='MAE')"}, 'mmpretrain')
    assert meta['algorithm'] == 'mae' and meta['branch'] == 'student'
    assert torch.equal(converted['ln1.bias'], student.state_dict()['ln1.bias'])


def test_mmdet_round_trip_featmap(models, image):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    student, teacher = models
    converted, _, notes = ck.convert_state_dict(
        fake_pretrain_state_dict(student, teacher), {}, 'mmdet')
    assert any('neck' in n for n in notes)
    cfg = dict(type='mmpretrain.VisionTransformer', arch=dict(DEMO_ARCH), img_size=64,
               patch_size=8, out_type='featmap', out_indices=(1, 3, 5))
    with DefaultScope.overwrite_default_scope('mmdet'):
        target = MODELS.build(cfg)
    target.eval()
    target.load_state_dict(converted, strict=True)
    reference = demo_vit(out_type='featmap', out_indices=(1, 3, 5))
    reference.load_state_dict(student.state_dict())
    with torch.no_grad():
        for got, want in zip(target(image), reference(image)):
            assert got.shape == (2, 96, 8, 8)
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize('final_norm', [False, True])
def test_mmseg_mae_round_trip_block_outputs(tmp_path, models, image, final_norm):
    from mmseg.models.backbones import MAE
    student, teacher = models
    converted, meta, notes = ck.convert_state_dict(
        fake_pretrain_state_dict(student, teacher), {}, 'mmseg')
    assert any('relative_position_bias_table' in n for n in notes)
    assert any('gamma_1' in n for n in notes)
    mae_cfg = dict(img_size=64, patch_size=8, embed_dims=96, num_layers=6, num_heads=3,
                   mlp_ratio=4, init_values=1.0, out_indices=list(range(6)),
                   final_norm=final_norm, norm_cfg=dict(type='LN', eps=1e-6))
    # keys: what the target has beyond ours, and what it leaves unused
    result = MAE(**mae_cfg).load_state_dict(converted, strict=False)
    n = 6
    expected_missing = {f'layers.{i}.{k}' for i in range(n)
                        for k in ('gamma_1', 'gamma_2', 'attn.relative_position_bias_table',
                                  'attn.relative_position_index')}
    assert set(result.missing_keys) == expected_missing
    assert set(result.unexpected_keys) == (set() if final_norm else
                                           {'ln1.weight', 'ln1.bias'})
    # the way mmseg configs load it (init_cfg Pretrained, MAE.init_weights)
    path = save_converted(tmp_path, converted, meta)
    target = MAE(**mae_cfg, init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    target.eval()
    assert all(torch.equal(layer.gamma_1, torch.ones(96)) for layer in target.layers)
    reference = demo_vit(out_type='featmap', out_indices=list(range(6)),
                         final_norm=final_norm)
    reference.load_state_dict(student.state_dict(), strict=final_norm)
    with torch.no_grad():
        got, want = target(image), reference(image)
    assert len(got) == len(want) == 6
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_mmseg_beit_qv_bias_drops_k_bias_exactly(models):
    from mmseg.models.backbones.beit import BEiTAttention
    student = models[0]
    encoder = student.state_dict()
    assert encoder['layers.0.attn.qkv.bias'][96:192].abs().sum() > 1  # a real k bias
    converted = ck.to_mmseg(encoder, qv_bias=True)
    assert 'layers.0.attn.qkv.bias' not in converted
    torch.testing.assert_close(converted['layers.0.attn.q_bias'],
                               encoder['layers.0.attn.qkv.bias'][:96])
    torch.testing.assert_close(converted['layers.0.attn.v_bias'],
                               encoder['layers.0.attn.qkv.bias'][192:])
    attn = BEiTAttention(embed_dims=96, num_heads=3, window_size=(8, 8),
                         bias='qv_bias').eval()
    prefix = 'layers.0.attn.'
    attn.load_state_dict({k[len(prefix):]: v for k, v in converted.items()
                          if k.startswith(prefix)}, strict=False)
    torch.nn.init.zeros_(attn.relative_position_bias_table)
    x = torch.randn(2, 65, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(attn(x), student.layers[0].attn(x),
                                   rtol=1e-5, atol=1e-5)


def _timm_demo_vit(img_size=64):
    import timm
    return timm.models.vision_transformer.VisionTransformer(
        img_size=img_size, patch_size=8, embed_dim=96, depth=6, num_heads=3,
        mlp_ratio=4, num_classes=0).eval()


def test_timm_round_trip_strict_and_features(tmp_path, models, image):
    import timm
    student, teacher = models
    converted, meta, notes = ck.convert_state_dict(
        fake_pretrain_state_dict(student, teacher), {}, 'timm')
    assert 'num_heads=<as in your config>' in notes[0]
    path = save_converted(tmp_path, converted, meta)
    target = _timm_demo_vit()
    # what a timm user does: strict loading of the file (safe loader: plain meta)
    timm.models.load_checkpoint(target, path, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(target(image), student(image)[0],
                                   rtol=1e-5, atol=1e-5)


def test_img_size_interpolates_for_every_target(models, image):
    from mmpretrain.models.utils import resize_pos_embed
    student, teacher = models
    state = fake_pretrain_state_dict(student, teacher)
    big = torch.nn.functional.interpolate(image, size=(128, 128), mode='bilinear')
    want_pos = resize_pos_embed(student.pos_embed.detach(), (8, 8), (16, 16))
    converted, meta, _ = ck.convert_state_dict(state, {}, 'mmpretrain', img_size=128)
    assert meta['img_size'] == 128 and meta['grid'] == [16, 16]
    torch.testing.assert_close(converted['pos_embed'], want_pos, rtol=0, atol=0)
    vit128 = demo_vit(img_size=128)
    vit128.load_state_dict(converted, strict=True)
    timm_converted, _, _ = ck.convert_state_dict(state, {}, 'timm', img_size=128)
    timm128 = _timm_demo_vit(img_size=128)
    timm128.load_state_dict(timm_converted, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(timm128(big), vit128(big)[0], rtol=1e-5, atol=1e-5)
    seg_converted, _, _ = ck.convert_state_dict(state, {}, 'mmseg', img_size=128)
    assert seg_converted['pos_embed'].shape == (1, 257, 96)


@pytest.mark.parametrize('name, arch', [
    ('vit_small_patch16_224', 'deit-small'),
    ('vit_base_patch16_224', 'base'),
    ('vit_large_patch16_224', 'large'),
])
def test_timm_strict_loading_for_s_b_l(name, arch):
    """Key names and shapes for the real sizes; on the meta device (no memory)."""
    import timm
    from mmpretrain.models import VisionTransformer
    with torch.device('meta'):
        source = VisionTransformer(arch=arch, img_size=224, patch_size=16)
        target = timm.create_model(name, num_classes=0)
    state = {'backbone.' + k: v for k, v in source.state_dict().items()}
    converted, meta, notes = ck.convert_state_dict(state, {}, 'timm')
    assert f"timm.create_model('{name}', num_classes=0)" in notes[0]
    result = target.load_state_dict(converted, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
