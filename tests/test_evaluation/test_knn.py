"""The weighted kNN rule (sdae_mm.evaluation.knn), a pure function of features."""
import math

import pytest
import torch
import torch.nn.functional as F

from sdae_mm.evaluation import knn_accuracy, weighted_knn_scores


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
