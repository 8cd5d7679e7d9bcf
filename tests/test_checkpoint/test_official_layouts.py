"""Official checkpoints -> every target, loaded strictly, features equal to timm's.

Each official layout is built here from models written to that layout: the encoder is a
timm ``VisionTransformer`` (the class the official code subclasses, so the key names are
the official ones) and the decoder keys and the top-level entries are those of the
official ``save_model`` functions (facebookresearch/mae, AbrahamYabo/SdAE,
liuxingbin/dbot, youngwanLEE/rc-mae). The reference is a timm ViT loaded directly from
the official keys of the branch the method's own fine-tuning loads.
"""
import argparse

import pytest
import timm
import torch
from mmpretrain.models import VisionTransformer

from sdae_mm.checkpoint import detect_layout, read_checkpoint, save_checkpoint
from sdae_mm.checkpoint.convert import convert_checkpoint_dict

DIM, DEPTH, HEADS, DEC = 32, 4, 2, 16


def timm_vit(patch=16, img=32, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=img, patch_size=patch, embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
        mlp_ratio=4, qkv_bias=True, **dict(dict(num_classes=0), **kwargs))
    with torch.no_grad():  # distinctive values everywhere
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def mae_model_state(patch=16, img=32, seed=0, predictor='decoder_pred', pred_out=None):
    """``MaskedAutoencoderViT.state_dict()`` of the official code (encoder + decoder)."""
    state = dict(timm_vit(patch, img, seed).state_dict())
    num = (img // patch)**2 + 1
    dec = timm.models.vision_transformer.VisionTransformer(
        img_size=img, patch_size=patch, embed_dim=DEC, depth=1, num_heads=1,
        num_classes=0).state_dict()
    state['decoder_embed.weight'] = torch.randn(DEC, DIM)
    state['decoder_embed.bias'] = torch.randn(DEC)
    state['mask_token'] = torch.randn(1, 1, DEC)
    state['decoder_pos_embed'] = torch.randn(1, num, DEC)
    state.update({'decoder_' + k: v for k, v in dec.items() if k.startswith('blocks.')})
    state['decoder_norm.weight'] = torch.ones(DEC)
    state['decoder_norm.bias'] = torch.zeros(DEC)
    out = pred_out or patch * patch * 3
    state[f'{predictor}.weight'] = torch.randn(out, DEC)
    state[f'{predictor}.bias'] = torch.randn(out)
    return state


def encoder_keys(state):
    return {k: v for k, v in state.items()
            if not k.startswith('decoder_') and k != 'mask_token'}


def training_extras(**args):
    return dict(optimizer={'state': {}, 'param_groups': [{'lr': 1e-3, 'params': [0]}]},
                epoch=99, scaler={'scale': 65536.0, 'growth_factor': 2.0},
                args=argparse.Namespace(model='mae_vit_base_patch16', lr=1e-3, **args))


def official_checkpoint(layout, patch=16, img=32):
    """(checkpoint dict, official state dict of the default branch, algo)."""
    if layout == 'mae':  # main_pretrain.py of facebookresearch/mae
        model = mae_model_state(patch, img, seed=1)
        return dict(model=model, **training_extras()), model, 'mae'
    if layout == 'mae-released':  # mae_pretrain_vit_*.pth: the encoder only
        model = encoder_keys(mae_model_state(patch, img, seed=1))
        return dict(model=model), model, None
    if layout == 'sdae':  # util/misc.py save_model: MAE student + ViT teacher
        student = mae_model_state(patch, img, seed=1, pred_out=DIM)
        teacher = timm_vit(patch, img, seed=2).state_dict()
        ckpt = dict(model=student, model_teacher=teacher, **training_extras(
            model_teacher='vit_base_patch16', shrink_num=147, ncrop_loss=3))
        return ckpt, student, 'sdae'
    if layout == 'dbot':  # util/misc.py save_model; decoder predicts features
        student = mae_model_state(patch, img, seed=1, predictor='decoder_predp',
                                  pred_out=DIM)
        ckpt = dict(model=student, **training_extras(init_teacher_encoder_depth=0))
        return ckpt, student, 'dbot'
    if layout == 'rc_mae':  # util/misc.py save_model_distill; the student is DDP-wrapped
        student = mae_model_state(patch, img, seed=1)
        teacher = mae_model_state(patch, img, seed=2)
        ckpt = dict(student={'module.' + k: v for k, v in student.items()},
                    teacher=teacher, student_without_ddp=student,
                    teacher_without_ddp=teacher, **training_extras())
        return ckpt, teacher, 'rc_mae'
    if layout == 'finetuned':  # main_finetune.py, global_pool: fc_norm + head, no norm
        model = timm_vit(patch, img, seed=3, global_pool='avg', num_classes=7).state_dict()
        return dict(model=model, **training_extras()), model, None
    raise ValueError(layout)


LAYOUTS = ('mae', 'mae-released', 'sdae', 'dbot', 'rc_mae', 'finetuned')
FORMAT = {'mae': 'official-mae', 'mae-released': 'official-mae', 'sdae': 'official-sdae',
          'dbot': 'official-dbot', 'rc_mae': 'official-rc-mae', 'finetuned': 'official-mae'}


def reference(official, patch, img, finetuned):
    kwargs = dict(global_pool='avg', num_classes=7) if finetuned else {}
    ref = timm_vit(patch, img, seed=9, **kwargs)
    ref.load_state_dict(encoder_keys(official), strict=True)  # directly, official keys
    return ref


def block_output(model, x, index):
    out = {}
    handle = model.blocks[index].register_forward_hook(lambda m, i, o: out.setdefault('x', o))
    with torch.no_grad():
        model.forward_features(x)
    handle.remove()
    return out['x']


def write(tmp_path, layout, patch=16, img=32):
    ckpt, official, algo = official_checkpoint(layout, patch, img)
    path = str(tmp_path / f'official_{layout}.pth')
    torch.save(ckpt, path)  # what the official code writes: torch.save of the dict
    return path, official, algo


def convert(path, target, **kwargs):
    return convert_checkpoint_dict(read_checkpoint(path), target, path=path, **kwargs)


@pytest.mark.parametrize('layout', LAYOUTS)
def test_layout_detection_and_default_branch(tmp_path, layout):
    path, official, algo = write(tmp_path, layout)
    found = detect_layout(read_checkpoint(path), path=path)
    assert found['format'] == FORMAT[layout] and found['algo'] == algo
    state, meta, _ = convert(path, 'mmpretrain', keep_head=False)
    branch = 'teacher' if layout == 'rc_mae' else 'student'
    assert meta['branch'] == branch
    assert torch.equal(state['layers.3.ffn.layers.1.weight'], official['blocks.3.mlp.fc2.weight'])
    decoder = sorted(k for k in official if k.startswith('decoder_') or k == 'mask_token')
    assert sorted(set(meta['dropped']) - {'head.weight', 'head.bias'}) == decoder


@pytest.mark.parametrize('patch, img', [(16, 32), (14, 28)])
@pytest.mark.parametrize('layout', LAYOUTS)
def test_mmpretrain_and_timm_targets_give_the_reference_features(tmp_path, layout, patch,
                                                                 img):
    path, official, _ = write(tmp_path, layout, patch, img)
    finetuned = layout == 'finetuned'
    ref = reference(official, patch, img, finetuned)
    x = torch.randn(2, 3, img, img, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ref.forward_features(x)
    # timm: strict load into a fresh model of the same architecture
    dst = save_checkpoint(dict(zip(('state_dict', 'meta'), convert(path, 'timm')[:2])),
                          str(tmp_path / 'timm.pth'))
    target = timm_vit(patch, img, seed=5, **(dict(global_pool='avg', num_classes=7)
                                             if finetuned else {}))
    target.load_state_dict(read_checkpoint(dst)['state_dict'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(target.forward_features(x), want, rtol=1e-5, atol=1e-5)
        if finetuned:
            torch.testing.assert_close(target(x), ref(x), rtol=1e-5, atol=1e-5)
    # mmpretrain: a strict load of the backbone (or the whole classifier)
    state, meta, _ = convert(path, 'mmpretrain')
    arch = dict(embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS,
                feedforward_channels=4 * DIM)
    if finetuned:
        from mmpretrain.models import ImageClassifier
        clf = ImageClassifier(
            backbone=dict(type='VisionTransformer', arch=arch, img_size=img,
                          patch_size=patch, out_type='avg_featmap', final_norm=False),
            head=dict(type='LinearClsHead', num_classes=7, in_channels=DIM))
        clf.load_state_dict(state, strict=True)
        clf.eval()
        with torch.no_grad():
            torch.testing.assert_close(clf(x, mode='tensor'), ref(x), rtol=1e-5, atol=1e-5)
        return
    vit = VisionTransformer(arch=arch, img_size=img, patch_size=patch, out_type='raw',
                            final_norm=True)
    vit.load_state_dict(state, strict=True)
    vit.eval()
    with torch.no_grad():
        torch.testing.assert_close(vit(x)[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('layout', ['mae', 'sdae', 'dbot', 'rc_mae', 'finetuned'])
def test_mmseg_target_gives_the_reference_block_outputs(tmp_path, layout):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import sdae_mm.downstream.seg  # noqa: F401
    path, official, _ = write(tmp_path, layout)
    state, meta, _ = convert(path, 'mmseg')
    dst = save_checkpoint({'state_dict': state, 'meta': meta}, str(tmp_path / 'seg.pth'))
    ref = reference(official, 16, 32, layout == 'finetuned')
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    want = block_output(ref, x, DEPTH - 1)[:, 1:].transpose(1, 2).reshape(2, DIM, 2, 2)
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = MODELS.build(dict(
            type='SdMIMSegViT', img_size=32, patch_size=16, embed_dims=DIM,
            num_layers=DEPTH, num_heads=HEADS, mlp_ratio=4, out_indices=(DEPTH - 1, ),
            init_values=1.0, norm_cfg=dict(type='LN', eps=1e-6),
            init_cfg=dict(type='Pretrained', checkpoint=dst)))
    seg.init_weights()
    assert all('gamma' in k or 'relative_position' in k
               for k in seg.init_report['initialised'])
    seg.eval()
    with torch.no_grad():
        torch.testing.assert_close(seg(x)[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('layout', ['mae', 'sdae', 'rc_mae', 'finetuned'])
def test_mmdet_target_gives_the_reference_block_outputs(tmp_path, layout):
    from sdae_mm.downstream.det import PlainViT
    path, official, _ = write(tmp_path, layout)
    state, meta, _ = convert(path, 'mmdet')
    dst = save_checkpoint({'state_dict': state, 'meta': meta}, str(tmp_path / 'det.pth'))
    ref = reference(official, 16, 32, layout == 'finetuned')
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    det = PlainViT(arch=dict(embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS,
                             feedforward_channels=4 * DIM),
                   img_size=32, patch_size=16, out_indices=(0, 1, 2, 3), drop_path_rate=0.,
                   adapter_norm_cfg=dict(type='BN'), checkpoint=dst)
    det.init_weights()
    assert det.init_report['initialised'] == sorted(
        k for k in det.state_dict() if k.startswith('fpn'))
    det.eval()
    want = block_output(ref, x, 2)[:, 1:].transpose(1, 2).reshape(2, DIM, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(det(x)[2], want, rtol=1e-5, atol=1e-5)  # fpn3: identity
    # the backbone also reads the official file itself (same encoder, same features)
    direct = PlainViT(arch=dict(embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS,
                                feedforward_channels=4 * DIM),
                      img_size=32, patch_size=16, out_indices=(0, 1, 2, 3),
                      drop_path_rate=0., adapter_norm_cfg=dict(type='BN'), checkpoint=path)
    direct.init_weights()
    for key in ('layers.3.attn.qkv.weight', 'pos_embed', 'cls_token'):
        assert torch.equal(direct.state_dict()[key], det.state_dict()[key])


def test_non_default_branches(tmp_path):
    path, _, _ = write(tmp_path, 'sdae')
    ckpt = read_checkpoint(path)
    state, meta, _ = convert(path, 'timm', branch='teacher')
    assert meta['branch'] == 'teacher' and meta['dropped'] == []
    assert torch.equal(state['blocks.0.attn.qkv.weight'],
                       ckpt['model_teacher']['blocks.0.attn.qkv.weight'])
    path, _, _ = write(tmp_path, 'rc_mae')
    state, meta, _ = convert(path, 'mmpretrain', branch='student')
    assert torch.equal(state['cls_token'], read_checkpoint(path)['student_without_ddp'][
        'cls_token'])
    path, _, _ = write(tmp_path, 'dbot')
    with pytest.raises(KeyError, match='checkpoint-teacher'):
        convert(path, 'mmpretrain', branch='teacher')
    # --algo sets the default branch; --format insists on a layout
    _, meta, _ = convert(path, 'mmpretrain', fmt='official-mae')
    assert meta['format'] == 'official-mae'
    with pytest.raises(KeyError, match='has the official-dbot layout'):
        convert(path, 'mmpretrain', fmt='official-sdae')


def test_unknown_official_keys_are_errors_naming_them(tmp_path):
    ckpt, _, _ = official_checkpoint('mae')
    ckpt['model']['blocks.0.ls1.gamma'] = torch.ones(DIM)
    path = str(tmp_path / 'odd.pth')
    torch.save(ckpt, path)
    with pytest.raises(KeyError, match=r'blocks\.0\.ls1\.gamma'):
        convert(path, 'timm')
    ckpt, _, _ = official_checkpoint('mae')
    ckpt['model']['blocks.1.mlp.fc1.weight'] = torch.zeros(4 * DIM, DIM + 1)
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"'layers\.1\.ffn\.layers\.0\.0\.weight' has shape"):
        convert(path, 'mmseg')


@pytest.mark.parametrize('name, dim, depth, patch', [
    ('vit_small_patch16_224', 384, 12, 16), ('vit_base_patch16_224', 768, 12, 16),
    ('vit_large_patch16_224', 1024, 24, 16), ('vit_huge_patch14_224', 1280, 32, 14)])
def test_real_sizes_on_the_meta_device(name, dim, depth, patch):
    """ViT-S/B/L/H key names and shapes (no memory): official -> mmpretrain -> timm."""
    with torch.device('meta'):
        official = timm.create_model(name, num_classes=0)
        mmp = VisionTransformer(arch=dict(embed_dims=dim, num_layers=depth,
                                          num_heads=16, feedforward_channels=4 * dim),
                                img_size=224, patch_size=patch)
    ckpt = {'model': dict(official.state_dict())}
    state, meta, notes = convert_checkpoint_dict(ckpt, 'mmpretrain')
    assert (meta['embed_dims'], meta['num_layers'], meta['patch_size']) == (dim, depth, patch)
    assert mmp.load_state_dict(state, strict=True, assign=True) is not None
    timm_state, _, notes = convert_checkpoint_dict(ckpt, 'timm')
    assert f"timm.create_model('{name}', num_classes=0)" in notes[0]
    assert set(timm_state) == set(official.state_dict())
