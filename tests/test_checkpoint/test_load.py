"""Strict loading into models, and the check of the checkpoint a run resumes from."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.models import VisionTransformer

from sdae_mm.checkpoint import (CheckpointMismatchError, CheckpointReadError,
                                check_resume_checkpoint, load_model_checkpoint,
                                load_state_dict_strict)

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def vit(**kwargs):
    return VisionTransformer(arch=ARCH, img_size=32, patch_size=8, **kwargs)


def test_strict_load_names_missing_unexpected_and_misshaped_keys():
    src = vit().state_dict()
    bad = dict(src)
    bad.pop('layers.1.attn.proj.bias')
    bad['layers.0.ffn.layers.1.weight'] = torch.zeros(32, 65)
    bad['foo.bar'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(vit(), bad, 'x.pth')
    message = str(err.value)
    assert "checkpoint 'x.pth' does not fit VisionTransformer" in message
    assert 'layers.1.attn.proj.bias' in message and 'foo.bar' in message
    assert 'layers.0.ffn.layers.1.weight: checkpoint (32, 65) vs model (32, 64)' in message


def test_strict_load_allows_only_keys_created_by_design_and_resizes_pos_embed():
    src = vit().state_dict()
    src.pop('ln1.weight'), src.pop('ln1.bias')
    model = VisionTransformer(arch=ARCH, img_size=64, patch_size=8)
    with pytest.raises(CheckpointMismatchError, match=r'ln1\.bias'):
        load_state_dict_strict(model, src, 'x.pth', pos_grid=(8, 8))
    report = load_state_dict_strict(model, src, 'x.pth', new_keys=(r'ln1\..*', ),
                                    pos_grid=(8, 8))
    assert report['initialised'] == ['ln1.bias', 'ln1.weight']
    assert report['resized'] == {'pos_embed': ((1, 17, 32), (1, 65, 32))}


def _classifier():
    from mmpretrain.models import ImageClassifier
    return ImageClassifier(
        backbone=dict(type='VisionTransformer', arch=ARCH, img_size=32, patch_size=8),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32))


def test_load_model_checkpoint(tmp_path):
    model = _classifier()
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, path)
    report = load_model_checkpoint(_classifier(), str(path))
    assert report['initialised'] == [] and report['meta'] == {'epoch': 1}
    # a pretraining/backbone checkpoint for a classifier: the head is missing
    torch.save({'state_dict': {'backbone.' + k: v for k, v in vit().state_dict().items()}},
               path)
    with pytest.raises(CheckpointMismatchError, match=r'missing keys .*head\.fc\.bias'):
        load_model_checkpoint(_classifier(), str(path))
    torch.save({'model': {'a': torch.ones(1)}, 'epoch': 3}, path)
    with pytest.raises(CheckpointMismatchError, match="no 'state_dict'.*convert_checkpoint"):
        load_model_checkpoint(_classifier(), str(path))


def test_resume_names_the_corrupt_file_and_the_previous_good_one(tmp_path):
    for i in (1, 2, 3):
        torch.save({'state_dict': {'w': torch.ones(1) * i}}, tmp_path / f'epoch_{i}.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    cfg = Config(dict(resume=True, load_from=None, work_dir=str(tmp_path)))
    assert check_resume_checkpoint(cfg) == str(tmp_path / 'epoch_3.pth')
    data = (tmp_path / 'epoch_3.pth').read_bytes()
    (tmp_path / 'epoch_3.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'epoch_2.pth').write_bytes(b'')
    with pytest.raises(CheckpointReadError) as err:
        check_resume_checkpoint(cfg)
    message = str(err.value)
    assert 'epoch_3.pth' in message and 'truncated' in message
    assert f"previous readable checkpoint is '{tmp_path / 'epoch_1.pth'}'" in message
    assert '--resume' in message
    # an explicit --resume file, nothing readable before it
    cfg = Config(dict(resume=True, load_from=str(tmp_path / 'epoch_2.pth'),
                      work_dir=str(tmp_path)))
    with pytest.raises(CheckpointReadError, match=r'epoch_2\.pth.*is empty.*epoch_1\.pth'):
        check_resume_checkpoint(cfg)
    (tmp_path / 'epoch_1.pth').write_bytes(b'junk')
    with pytest.raises(CheckpointReadError, match='no earlier readable checkpoint'):
        check_resume_checkpoint(cfg)
    assert check_resume_checkpoint(Config(dict(resume=False))) is None


def test_pretrained_init_is_checked_before_training(tmp_path):
    """mmengine's Pretrained only warns on a misfit; check_pretrained_inits raises."""
    from mmpretrain.models import ImageClassifier
    from sdae_mm.checkpoint import check_pretrained_inits

    def classifier(path, **backbone):
        return ImageClassifier(
            backbone=dict(type='VisionTransformer', arch=ARCH, img_size=64, patch_size=8,
                          init_cfg=dict(type='Pretrained', checkpoint=str(path)), **backbone),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=32))

    good = tmp_path / 'backbone.pth'
    torch.save({'state_dict': vit().state_dict(), 'meta': {}}, good)
    # a fine-tuning backbone: pooled-feature norm ln2 new, final norm ln1 unused, other grid
    assert check_pretrained_inits(classifier(good, final_norm=False,
                                             out_type='avg_featmap')) == [str(good)]
    assert check_pretrained_inits(classifier(good)) == [str(good)]
    wide = tmp_path / 'wide.pth'
    torch.save({'state_dict': VisionTransformer(arch=dict(ARCH, embed_dims=64), img_size=32,
                                                patch_size=8).state_dict()}, wide)
    with pytest.raises(CheckpointMismatchError, match=r'wide\.pth.*\n.*shape mismatches'):
        check_pretrained_inits(classifier(wide))
    # an unconverted pretraining checkpoint: nothing would load without the prefix
    raw = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in vit().state_dict().items()}},
               raw)
    with pytest.raises(CheckpointMismatchError, match='unexpected keys'):
        check_pretrained_inits(classifier(raw))
    with pytest.raises(CheckpointMismatchError, match="no key starting with prefix 'x.'"):
        check_pretrained_inits(ImageClassifier(backbone=dict(
            type='VisionTransformer', arch=ARCH, img_size=32, patch_size=8,
            init_cfg=dict(type='Pretrained', checkpoint=str(raw), prefix='x'))))
