"""tools/knn_eval.py: features of a checkpoint (any layout), strict loading, the command."""
import json
import os.path as osp

import pytest
import torch

from sdae_mm.checkpoint import CheckpointMismatchError, convert_checkpoint_dict
from tests.helpers.tools import load_tool

LINEAR_DEMO = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'
DEMO_ARCH = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    return load_tool('tools/knn_eval.py')


tool = _load_tool()
build_feature_backbone = tool.build_feature_backbone
load_backbone_weights = tool.load_backbone_weights
knn_eval_checkpoint = tool.knn_eval_checkpoint


def _fake_pretraining_checkpoint(path):
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(3)
    nets = []
    for _ in range(2):
        vit = VisionTransformer(arch=DEMO_ARCH, img_size=64, patch_size=8)
        vit.init_weights()
        with torch.no_grad():  # make the two encoders clearly different
            for p in vit.parameters():
                p.add_(0.05 * torch.randn_like(p))
        nets.append(vit.state_dict())
    sd = {'backbone.' + k: v for k, v in nets[0].items()}
    sd.update({'teacher.' + k: v for k, v in nets[1].items()})
    torch.save({'state_dict': sd, 'meta': {}}, path)
    return nets


def test_backbone_loading_is_strict_and_reads_both_formats(tmp_path):
    src = str(tmp_path / 'pre.pth')
    student, teacher = _fake_pretraining_checkpoint(src)
    cfg = dict(type='VisionTransformer', arch=DEMO_ARCH, img_size=64, patch_size=8,
               out_type='avg_featmap', final_norm=False, drop_path_rate=0.1)
    backbone = build_feature_backbone(cfg)
    assert backbone.out_type == 'raw' and backbone.final_norm and not backbone.training
    info = load_backbone_weights(backbone, src, branch='teacher')
    assert info['format'] == 'sdae-mm' and info['branch'] == 'teacher'
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, teacher[k])
    # a converted file (no prefix) loads the same tensors
    conv, meta, _ = convert_checkpoint_dict(torch.load(src), 'mmpretrain', algo='sdae')
    dst = str(tmp_path / 'conv.pth')
    torch.save({'state_dict': conv, 'meta': meta}, dst)
    other = build_feature_backbone(cfg)
    assert load_backbone_weights(other, dst)['branch'] == 'student'
    for k, v in other.state_dict().items():
        torch.testing.assert_close(v, student[k])
    # missing keys are an error, not a silent partial load
    torch.save({'state_dict': {k: v for k, v in conv.items() if not k.startswith('ln1')}},
               str(tmp_path / 'partial.pth'))
    with pytest.raises(CheckpointMismatchError, match=r'missing keys.*ln1'):
        load_backbone_weights(build_feature_backbone(cfg), str(tmp_path / 'partial.pth'))
    wide = dict(cfg, arch=dict(DEMO_ARCH, embed_dims=48, feedforward_channels=96))
    with pytest.raises(ValueError, match='does not fit|has shape'):
        load_backbone_weights(build_feature_backbone(wide), dst)


def test_knn_tool_on_demo_data(repo_root, demo_data, tmp_path):
    """The command line on a slice of the demo digits: converted == raw checkpoint."""
    src = str(tmp_path / 'pre.pth')
    _fake_pretraining_checkpoint(src)
    cfg = osp.join(repo_root, LINEAR_DEMO)
    common = ['--data-root', f'{demo_data}/cls', '--max-train', '48', '--max-val', '24',
              '--k', '5', '--batch-size', '24', '--num-workers', '0', '--device', 'cpu']
    out = tmp_path / 'knn.json'
    res = tool.main([cfg, '--checkpoint', src, '--out', str(out)] + common)
    saved = json.loads(out.read_text())
    assert saved['top1'] == pytest.approx(res['top1'])
    assert saved['num_train'] == 48 and saved['num_val'] == 24
    assert saved['num_classes'] == 10 and saved['feature_dim'] == 96
    assert saved['k'] == 5 and saved['temperature'] == 0.07 and not saved['random_init']
    assert 0. <= saved['top1'] <= saved['top5'] <= 100.
    # the raw pretraining checkpoint and the function API give the same numbers
    again = knn_eval_checkpoint(src, cfg, data_root=f'{demo_data}/cls', k=5, max_train=48,
                                max_val=24, batch_size=24, device='cpu')
    assert (again['top1'], again['top5']) == (res['top1'], res['top5'])
    # a random initialisation is the baseline; it is seeded
    rnd = tool.main([cfg, '--random-init', '--seed', '1'] + common)
    rnd2 = tool.main([cfg, '--random-init', '--seed', '1'] + common)
    assert rnd['random_init'] and rnd['checkpoint'] is None
    assert (rnd['top1'], rnd['top5']) == (rnd2['top1'], rnd2['top5'])
