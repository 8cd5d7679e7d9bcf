"""PlainViT and ViTDet: outputs, and loading converted sdae-mm checkpoints."""
import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from sdae_mm.downstream.det import PlainViT, ViTDet
from sdae_mm.downstream.det.checkpoint import CheckpointMismatchError, summarize_keys
from sdae_mm.checkpoint import convert_checkpoint_dict

#: default scope of every test here (see tests/conftest.py)
DEFAULT_SCOPE = 'mmdet'

ARCH2 = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
ARCH4 = dict(ARCH2, num_layers=4)


def _pretrain_ckpt(tmp_path, arch, img_size=32, patch_size=8, branch='teacher'):
    """A fabricated SdAE pretraining checkpoint converted with ``--to mmdet``.

    Returns the path and the teacher's and student's encoder state dicts.
    """
    torch.manual_seed(0)
    student = VisionTransformer(arch=arch, img_size=img_size, patch_size=patch_size)
    torch.manual_seed(1)
    teacher = VisionTransformer(arch=arch, img_size=img_size, patch_size=patch_size)
    for vit in (student, teacher):  # non-trivial values everywhere
        with torch.no_grad():
            for p in vit.parameters():
                p.normal_(0, 0.1)
    sd = {'backbone.' + k: v for k, v in student.state_dict().items()}
    sd.update({'teacher.' + k: v for k, v in teacher.state_dict().items()})
    converted, meta, _ = convert_checkpoint_dict({'state_dict': sd}, 'mmdet', branch=branch,
                                                 algo='sdae')
    path = str(tmp_path / f'{branch}_mmdet.pth')
    torch.save({'state_dict': converted, 'meta': meta}, path)
    return path, teacher.state_dict(), student.state_dict()


def test_summarize_keys():
    keys = [f'layers.{i}.attn.rel_pos_h' for i in range(3)]
    keys += ['layers.5.attn.rel_pos_h', 'fpn1.weight']
    assert summarize_keys(keys) == ['fpn1.weight', 'layers.{0,1,2,5}.attn.rel_pos_h']
    assert summarize_keys(['a.0.b', 'a.1.b']) == ['a.{0-1}.b']


def test_vitdet_output_and_names():
    model = ViTDet(arch=ARCH2, img_size=64, patch_size=8, pretrain_img_size=32,
                   window_size=4, global_attn_indexes=(1, ))
    model.init_weights()
    out = model(torch.randn(2, 3, 64, 48))
    assert len(out) == 1 and out[0].shape == (2, 32, 8, 6)
    assert [layer.window_size for layer in model.layers] == [4, 0]
    names = set(model.state_dict())
    assert {'patch_embed.projection.weight', 'pos_embed', 'layers.0.ln1.weight',
            'layers.0.attn.qkv.weight', 'layers.0.attn.qkv.bias', 'layers.0.attn.proj.weight',
            'layers.0.ffn.layers.0.0.weight', 'layers.0.ffn.layers.1.weight',
            'layers.1.attn.rel_pos_h', 'layers.1.attn.rel_pos_w'} <= names
    assert 'cls_token' not in names and 'ln1.weight' not in names
    assert model.pos_embed.shape == (1, 16, 32)  # pretraining grid 4x4, no cls slot
    # windowed block tables are sized for the window, global ones for the map
    assert model.layers[0].attn.rel_pos_h.shape == (7, 16)
    assert model.layers[1].attn.rel_pos_h.shape == (15, 16)
    assert model.get_layer_depth('backbone.layers.1.attn.qkv.weight', 'backbone.') == (2, 4)
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 4)


def test_vitdet_equals_mmpretrain_vit_without_windows_and_rel_pos(tmp_path):
    """All-global ViTDet without relative positions is mmpretrain's ViT (no cls token)."""
    path, teacher, _ = _pretrain_ckpt(tmp_path, ARCH2)
    vitdet = ViTDet(arch=ARCH2, img_size=32, patch_size=8, pretrain_img_size=32,
                    global_attn_indexes=(0, 1), use_rel_pos=False, drop_path_rate=0.,
                    checkpoint=path)
    vitdet.init_weights()
    ref = VisionTransformer(arch=ARCH2, img_size=32, patch_size=8, with_cls_token=False,
                            out_type='featmap', final_norm=False)
    state = {k: v for k, v in teacher.items() if k not in ('cls_token', 'ln1.weight', 'ln1.bias')}
    state['pos_embed'] = teacher['pos_embed'][:, 1:]
    ref.load_state_dict(state)
    vitdet.eval(), ref.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(vitdet(x)[0], ref(x)[0], rtol=1e-5, atol=1e-5)
        # a window covering the whole 4x4 map changes nothing either
        for layer in vitdet.layers:
            layer.window_size = 4
        torch.testing.assert_close(vitdet(x)[0], ref(x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('branch', ['teacher', 'student'])
def test_vitdet_loads_converted_checkpoint(tmp_path, branch):
    path, teacher, student = _pretrain_ckpt(tmp_path, ARCH2, branch=branch)
    source = teacher if branch == 'teacher' else student
    model = ViTDet(arch=ARCH2, img_size=64, patch_size=8, pretrain_img_size=32,
                   window_size=4, global_attn_indexes=(1, ), checkpoint=path)
    model.init_weights()
    report = model.init_report
    # only the relative position tables are left to the backbone
    assert report['initialised'] == sorted(
        f'layers.{i}.attn.rel_pos_{a}' for i in range(2) for a in 'hw')
    assert report['ignored'] == ['cls_token', 'ln1.bias', 'ln1.weight']
    # the class-token slot is dropped, the 4x4 grid kept
    assert report['resized'] == {'pos_embed': ((1, 17, 32), (1, 16, 32))}
    assert report['meta']['branch'] == branch
    state = model.state_dict()
    for key in ('layers.1.attn.qkv.weight', 'layers.0.ffn.layers.1.bias',
                'patch_embed.projection.weight'):
        torch.testing.assert_close(state[key], source[key])
    torch.testing.assert_close(state['pos_embed'], source['pos_embed'][:, 1:])
    assert torch.count_nonzero(state['layers.0.attn.rel_pos_h']) == 0  # zero init


def test_vitdet_resizes_pos_embed_of_other_pretraining_size(tmp_path):
    path, teacher, _ = _pretrain_ckpt(tmp_path, ARCH2, img_size=32)
    model = ViTDet(arch=ARCH2, img_size=64, patch_size=8, pretrain_img_size=64,
                   window_size=4, global_attn_indexes=(1, ), checkpoint=path)
    model.init_weights()
    assert model.init_report['resized'] == {'pos_embed': ((1, 17, 32), (1, 64, 32))}
    expected = resize_pos_embed(teacher['pos_embed'][:, 1:], (4, 4), (8, 8),
                                num_extra_tokens=0)
    torch.testing.assert_close(model.pos_embed.data, expected)


def test_plain_vit_outputs_strides_4_to_32():
    model = PlainViT(arch=ARCH4, img_size=32, patch_size=8, out_indices=(0, 1, 2, 3))
    model.init_weights()
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 24), (2, 32, 8, 12), (2, 32, 4, 6),
                                              (2, 32, 2, 3)]
    model16 = PlainViT(arch=ARCH4, img_size=32, patch_size=16, out_indices=(0, 1, 2, 3),
                       adapter_norm_cfg=dict(type='BN'))
    model16.init_weights()
    outs = model16(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 24), (1, 32, 8, 12), (1, 32, 4, 6),
                                              (1, 32, 2, 3)]


def test_plain_vit_features_are_unnormed_block_outputs(tmp_path):
    path, teacher, _ = _pretrain_ckpt(tmp_path, ARCH4)
    model = PlainViT(arch=ARCH4, img_size=32, patch_size=8, out_indices=(0, 1, 2, 3),
                     drop_path_rate=0., checkpoint=path)
    model.init_weights()
    ref = VisionTransformer(arch=ARCH4, img_size=32, patch_size=8, out_indices=(0, 1, 2, 3),
                            out_type='featmap', final_norm=False)
    model.eval(), ref.eval()  # (mmpretrain's backbones return None from train())
    ref.load_state_dict({k: v for k, v in teacher.items() if not k.startswith('ln1.')})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = ref(x)
        outs = model(x)
        torch.testing.assert_close(outs[1], feats[1])  # stride 8: identity
        torch.testing.assert_close(outs[2], torch.nn.functional.max_pool2d(feats[2], 2))
        torch.testing.assert_close(outs[0], model.fpn1(feats[0]))


def test_plain_vit_loads_converted_checkpoint(tmp_path):
    path, teacher, _ = _pretrain_ckpt(tmp_path, ARCH4)
    model = PlainViT(arch=ARCH4, img_size=64, patch_size=16, out_indices=(0, 1, 2, 3),
                     adapter_norm_cfg=dict(type='BN'), checkpoint=path)
    with pytest.raises(CheckpointMismatchError, match='patch_embed.projection.weight'):
        model.init_weights()  # patch 8 weights into a patch-16 ViT
    model = PlainViT(arch=ARCH4, img_size=64, patch_size=8, out_indices=(0, 1, 2, 3),
                     checkpoint=path)
    model.init_weights()
    report = model.init_report
    assert report['initialised'] == ['fpn1.bias', 'fpn1.weight']
    assert report['ignored'] == ['ln1.bias', 'ln1.weight']
    assert report['resized'] == {'pos_embed': ((1, 17, 32), (1, 65, 32))}
    torch.testing.assert_close(model.cls_token.data, teacher['cls_token'])
    torch.testing.assert_close(
        model.pos_embed.data, resize_pos_embed(teacher['pos_embed'], (4, 4), (8, 8)))
    torch.testing.assert_close(model.state_dict()['layers.3.attn.qkv.weight'],
                               teacher['layers.3.attn.qkv.weight'])


def test_mismatching_checkpoints_raise_naming_the_keys(tmp_path):
    path, teacher, _ = _pretrain_ckpt(tmp_path, ARCH2)
    base = dict(arch=ARCH2, img_size=32, patch_size=8, pretrain_img_size=32,
                global_attn_indexes=(1, ), window_size=2)

    def save(state, name):
        p = str(tmp_path / name)
        torch.save({'state_dict': state, 'meta': {}}, p)
        return p

    ckpt = torch.load(path)['state_dict']
    extra = save(dict(ckpt, **{'head.fc.weight': torch.zeros(3), 'foo.bar': torch.zeros(1)}),
                 'extra.pth')
    with pytest.raises(CheckpointMismatchError, match='foo.bar'):
        ViTDet(**base, checkpoint=extra).init_weights()
    wrong = dict(ckpt)
    wrong['layers.0.attn.qkv.weight'] = torch.zeros(96, 16)
    with pytest.raises(CheckpointMismatchError,
                       match=r"'layers.0.attn.qkv.weight' has shape \(96, 16\), expected "
                       r'\(96, 32\)'):
        ViTDet(**base, checkpoint=save(wrong, 'wrong.pth')).init_weights()
    # a deeper checkpoint: the backbone lacks its last blocks
    deeper = _pretrain_ckpt(tmp_path, ARCH4)[0]
    with pytest.raises(CheckpointMismatchError, match=r'unexpected keys.*layers\.\{2-3\}'):
        ViTDet(**base, checkpoint=deeper).init_weights()
    # a raw pretraining checkpoint is read directly (its default branch)
    raw = save({'backbone.' + k: v for k, v in teacher.items()}, 'raw.pth')
    model = ViTDet(**base, checkpoint=raw)
    model.init_weights()
    torch.testing.assert_close(model.state_dict()['layers.1.attn.qkv.weight'],
                               teacher['layers.1.attn.qkv.weight'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ViTDet(**base, checkpoint=str(tmp_path / 'missing.pth')).init_weights()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='global_attn_indexes'):
        ViTDet(arch=ARCH2, global_attn_indexes=(5, ))
    with pytest.raises(ValueError, match='multiple of patch_size'):
        ViTDet(arch=ARCH2, img_size=100, patch_size=16)
    with pytest.raises(ValueError, match='init_cfg'):
        ViTDet(arch=ARCH2, init_cfg=dict(type='Pretrained', checkpoint='x'))
    with pytest.raises(ValueError, match='patch_size 16 and 8'):
        PlainViT(arch=ARCH4, patch_size=14, out_indices=(0, 1, 2, 3))
    with pytest.raises(ValueError, match='4 increasing'):
        PlainViT(arch=ARCH4, out_indices=(0, 1, 2))
    with pytest.raises(ValueError, match='below 4'):
        PlainViT(arch=ARCH4)  # ViT-B's (3, 5, 7, 11)
    with pytest.raises(ValueError, match='final_norm'):
        PlainViT(arch=ARCH4, final_norm=True)
