"""Weighted k-nearest-neighbour classification of features (a pure function).

The rule of DINO's ``eval_knn.py`` (Caron et al., 2021,
`DINO <https://arxiv.org/abs/2104.14294>`_), used by many masked-image-modeling papers as
a training-free probe of a pretrained encoder: L2-normalise the features (the similarity
of two images is the cosine of their features); for each query take the ``k`` most
similar training features (k = 20); every neighbour votes for its class with weight
``exp(similarity / T)`` (T = 0.07); the class scores are the summed votes; report top-1 /
top-5 accuracy in percent.

Extracting the features of a checkpoint is the job of ``tools/knn_eval.py``, which calls
:func:`knn_accuracy`.
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F


# --------------------------------------------------------------------------- the rule
def _check_bank(train_feats: torch.Tensor, train_labels: torch.Tensor,
                query_feats: torch.Tensor, num_classes: int, k: int,
                temperature: float) -> None:
    if train_feats.ndim != 2 or query_feats.ndim != 2:
        raise ValueError(f'features must be 2-D (N, C), got train {tuple(train_feats.shape)} '
                         f'and query {tuple(query_feats.shape)}')
    if train_feats.shape[1] != query_feats.shape[1]:
        raise ValueError(f'train and query features differ in width: '
                         f'{train_feats.shape[1]} vs {query_feats.shape[1]}')
    if train_labels.shape != (train_feats.shape[0], ):
        raise ValueError(f'train_labels must have shape ({train_feats.shape[0]},), '
                         f'got {tuple(train_labels.shape)}')
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
    if not isinstance(k, int) or not 1 <= k <= train_feats.shape[0]:
        raise ValueError(f'k must be an int in [1, {train_feats.shape[0]}] (the number of '
                         f'training features), got {k!r}')
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature!r}')
    if train_labels.numel() and (int(train_labels.min()) < 0
                                 or int(train_labels.max()) >= num_classes):
        raise ValueError(f'train_labels must lie in [0, {num_classes}), got '
                         f'[{int(train_labels.min())}, {int(train_labels.max())}]')


@torch.no_grad()
def weighted_knn_scores(train_feats: torch.Tensor,
                        train_labels: torch.Tensor,
                        query_feats: torch.Tensor,
                        num_classes: int,
                        k: int = 20,
                        temperature: float = 0.07,
                        normalize: bool = True,
                        chunk_size: int = 1024) -> torch.Tensor:
    """Class scores of the weighted k-NN vote for every query.

    Args:
        train_feats (Tensor): Memory bank, shape (N, C).
        train_labels (Tensor): Its class indices, shape (N,), in ``[0, num_classes)``.
        query_feats (Tensor): Features to classify, shape (Q, C).
        num_classes (int): Number of classes.
        k (int): Number of neighbours. Defaults to 20.
        temperature (float): ``T`` of the vote weights ``exp(sim / T)``. Defaults to 0.07.
        normalize (bool): L2-normalise both feature sets first, so that the similarity
            is the cosine. Defaults to True.
        chunk_size (int): Queries per similarity block (memory: ``chunk_size * N``).

    Returns:
        Tensor: Shape (Q, num_classes), float32: the summed weights of the neighbours
        of each class.
    """
    _check_bank(train_feats, train_labels, query_feats, num_classes, k, temperature)
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size!r}')
    train_feats = train_feats.float()
    query_feats = query_feats.float().to(train_feats.device)
    train_labels = train_labels.long().to(train_feats.device)
    if normalize:
        train_feats = F.normalize(train_feats, dim=1)
        query_feats = F.normalize(query_feats, dim=1)
    scores = []
    for start in range(0, query_feats.shape[0], chunk_size):
        sim = query_feats[start:start + chunk_size] @ train_feats.t()  # (q, N)
        top_sim, top_idx = sim.topk(k, dim=1, largest=True, sorted=True)  # (q, k)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(sim.shape[0], num_classes, device=sim.device)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        scores.append(votes)
    if not scores:
        return torch.zeros(0, num_classes)
    return torch.cat(scores)


def knn_accuracy(train_feats: torch.Tensor,
                 train_labels: torch.Tensor,
                 query_feats: torch.Tensor,
                 query_labels: torch.Tensor,
                 num_classes: int,
                 k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5),
                 normalize: bool = True,
                 chunk_size: int = 1024) -> Dict[str, float]:
    """Top-k accuracies (percent) of the weighted k-NN classifier.

    A query counts as correct at ``top-n`` when its class is among the ``n`` classes with
    the highest scores; ``n`` is capped at ``min(n, k, num_classes)`` as in DINO.

    Args:
        train_feats, train_labels, query_feats, num_classes, k, temperature, normalize,
            chunk_size: See :func:`weighted_knn_scores`.
        query_labels (Tensor): True classes of the queries, shape (Q,).
        topk (Sequence[int]): Which top-n accuracies to report. Defaults to (1, 5).

    Returns:
        dict: ``{'top1': ..., 'top5': ...}`` in percent.
    """
    if query_labels.shape != (query_feats.shape[0], ):
        raise ValueError(f'query_labels must have shape ({query_feats.shape[0]},), '
                         f'got {tuple(query_labels.shape)}')
    if query_feats.shape[0] == 0:
        raise ValueError('no query features to classify')
    scores = weighted_knn_scores(train_feats, train_labels, query_feats, num_classes, k,
                                 temperature, normalize, chunk_size)
    labels = query_labels.long().to(scores.device)
    ranked = scores.argsort(dim=1, descending=True)
    out = {}
    for n in topk:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f'topk entries must be positive ints, got {n!r}')
        m = min(n, k, num_classes)
        hit = (ranked[:, :m] == labels[:, None]).any(dim=1)
        out[f'top{n}'] = 100.0 * hit.float().mean().item()
    return out
