"""Weighted kNN (sdae_mm.evaluation.knn) and tools/knn_eval.py."""
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from sdae_mm.evaluation.knn import (build_feature_backbone, knn_accuracy,
                                    knn_eval_checkpoint, load_backbone_weights,
                                    weighted_knn_scores)

LINEAR_DEMO = 'configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py'
DEMO_ARCH = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)


def _reference_scores(train, train_labels, query, num_classes, k, temperature):
    """DINO's eval_knn rule, one query at a time (cosine, top-k, exp(sim / T) votes)."""
    train = F.normalize(train.double(), dim=1)
    query = F.normalize(query.double(), dim=1)
    out = torch.zeros(query.shape[0], num_classes, dtype=torch.float64)
    for i, q in enumerate(query):
        sim = train @ q
        order = sorted(range(len(sim)), key=lambda j: -float(sim[j]))[:k]
        for j in order:
            out[i, int(train_labels[j])] += math.exp(float(sim[j]) / temperature)
    return out


def test_well_separated_clusters_are_classified_perfectly():
    g = torch.Generator().manual_seed(0)
    centers = torch.eye(8)[:4] * 10  # four orthogonal class directions
    train_labels = torch.arange(4).repeat_interleave(30)
    train = centers[train_labels] + 0.3 * torch.randn(120, 8, generator=g)
    query_labels = torch.arange(4).repeat_interleave(10)
    query = centers[query_labels] + 0.3 * torch.randn(40, 8, generator=g)
    acc = knn_accuracy(train, train_labels, query, query_labels, num_classes=4, k=20,
                       temperature=0.07)
    assert acc == {'top1': 100.0, 'top5': 100.0}
    # labels shuffled against the features: no better than the vote of a wrong class
    wrong = knn_accuracy(train, (train_labels + 1) % 4, query, query_labels, 4, k=20)
    assert wrong['top1'] == 0.0


def test_hand_computed_weights_decide_the_vote():
    # cosine similarities to the query (1, 0): 1.0 (class 0), 0.8 and 0.6 (class 1), 0.0
    train = torch.tensor([[1., 0.], [.8, .6], [.6, .8], [0., 1.]])
    labels = torch.tensor([0, 1, 1, 0])
    query = torch.tensor([[2., 0.]])  # not unit length: normalised first
    sharp = weighted_knn_scores(train, labels, query, num_classes=2, k=3, temperature=0.1)
    expected = torch.tensor([[math.exp(10.), math.exp(8.) + math.exp(6.)]])
    torch.testing.assert_close(sharp, expected.float(), rtol=1e-5, atol=0)
    assert int(sharp.argmax()) == 0  # one very close neighbour outweighs two further ones
    flat = weighted_knn_scores(train, labels, query, num_classes=2, k=3, temperature=10.)
    expected = torch.tensor([[math.exp(.1), math.exp(.08) + math.exp(.06)]])
    torch.testing.assert_close(flat, expected.float(), rtol=1e-6, atol=0)
    assert int(flat.argmax()) == 1  # with a flat weighting the majority wins
    # only the k nearest vote: the fourth sample (class 0, similarity 0) is left out
    assert flat.sum().item() == pytest.approx(math.exp(.1) + math.exp(.08) + math.exp(.06))


def test_scores_match_reference_and_do_not_depend_on_chunks_or_scale():
    g = torch.Generator().manual_seed(1)
    train, labels = torch.randn(50, 6, generator=g), torch.randint(0, 5, (50, ), generator=g)
    query = torch.randn(13, 6, generator=g)
    ref = _reference_scores(train, labels, query, 5, k=7, temperature=0.5)
    for chunk in (1, 4, 100):
        got = weighted_knn_scores(train, labels, query, 5, k=7, temperature=0.5,
                                  chunk_size=chunk)
        torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-6)
    scaled = weighted_knn_scores(3. * train, labels, 0.2 * query, 5, k=7, temperature=0.5)
    torch.testing.assert_close(scaled.double(), ref, rtol=1e-5, atol=1e-6)


def test_top5_is_capped_by_k_and_counts_second_choices():
    train = torch.tensor([[1., 0.], [.9, .1], [0., 1.]])
    labels = torch.tensor([0, 1, 2])
    query = torch.tensor([[.95, .05]])
    # k=2: votes for classes 0 and 1 only; the true class 2 is never among them
    acc = knn_accuracy(train, labels, query, torch.tensor([2]), num_classes=3, k=2)
    assert acc == {'top1': 0.0, 'top5': 0.0}
    acc = knn_accuracy(train, labels, query, torch.tensor([1]), num_classes=3, k=2)
    assert acc == {'top1': 0.0, 'top5': 100.0}


@pytest.mark.parametrize('kwargs, match', [
    (dict(k=0), 'k must be'),
    (dict(k=5), r'k must be an int in \[1, 4\]'),
    (dict(temperature=0.), 'temperature'),
    (dict(num_classes=1), 'train_labels must lie in'),
])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(train_feats=torch.randn(4, 3), train_labels=torch.tensor([0, 1, 1, 0]),
                query_feats=torch.randn(2, 3), num_classes=2, k=2, temperature=0.07)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        weighted_knn_scores(**args)


# ------------------------------------------------------------ checkpoints and the tool
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
    from sdae_mm.utils.checkpoint import convert_state_dict, load_checkpoint_dict
    src = str(tmp_path / 'pre.pth')
    student, teacher = _fake_pretraining_checkpoint(src)
    cfg = dict(type='VisionTransformer', arch=DEMO_ARCH, img_size=64, patch_size=8,
               out_type='avg_featmap', final_norm=False, drop_path_rate=0.1)
    backbone = build_feature_backbone(cfg)
    assert backbone.out_type == 'raw' and backbone.final_norm and not backbone.training
    info = load_backbone_weights(backbone, src, branch='teacher')
    assert info['format'] == 'pretraining' and info['branch'] == 'teacher'
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, teacher[k])
    # a converted file (no prefix) loads the same tensors
    conv, meta, _ = convert_state_dict(*load_checkpoint_dict(src), target='mmpretrain',
                                       algo='sdae')
    dst = str(tmp_path / 'conv.pth')
    torch.save({'state_dict': conv, 'meta': meta}, dst)
    other = build_feature_backbone(cfg)
    assert load_backbone_weights(other, dst)['format'] == 'converted'
    for k, v in other.state_dict().items():
        torch.testing.assert_close(v, student[k])
    # missing keys are an error, not a silent partial load
    torch.save({'state_dict': {k: v for k, v in conv.items() if not k.startswith('ln1')}},
               str(tmp_path / 'partial.pth'))
    with pytest.raises(KeyError, match='missing keys'):
        load_backbone_weights(build_feature_backbone(cfg), str(tmp_path / 'partial.pth'))
    wide = dict(cfg, arch=dict(DEMO_ARCH, embed_dims=48, feedforward_channels=96))
    with pytest.raises(ValueError, match='does not fit'):
        load_backbone_weights(build_feature_backbone(wide), dst)


def _load_tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'knn_eval_tool', osp.join(repo_root, 'tools', 'knn_eval.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_knn_tool_on_demo_data(repo_root, demo_data, tmp_path):
    """The command line on a slice of the demo digits: converted == raw checkpoint."""
    src = str(tmp_path / 'pre.pth')
    _fake_pretraining_checkpoint(src)
    tool = _load_tool(repo_root)
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
