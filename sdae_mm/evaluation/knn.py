"""Weighted k-nearest-neighbour classification on frozen ViT features.

The protocol of DINO's ``eval_knn.py`` (Caron et al., 2021,
`DINO <https://arxiv.org/abs/2104.14294>`_), used by many masked-image-modeling papers as
a training-free probe of a pretrained encoder:

1. extract one feature per image, for the training set (the "memory bank") and the
   evaluation set, with the evaluation transforms (resize, center crop) and the backbone
   in eval mode;
2. L2-normalise the features; the similarity of two images is the cosine of their
   features (a dot product);
3. for each evaluation image take the ``k`` most similar training images (k = 20);
4. every neighbour votes for its class with weight ``exp(similarity / T)`` (T = 0.07);
   the class scores are the summed votes;
5. top-1 / top-5 accuracy of the class scores, in percent.

Which feature: the class token after the encoder's final norm (``feature='cls'``). That is
the feature of DINO's kNN and of the MAE-family linear probe (``main_linprobe.py`` of MAE,
SdAE, dBOT and RC-MAE: ``global_pool=False``, ``x = self.norm(x); x[:, 0]``), so kNN and
linear probe see the same representation. ``feature='avg'`` averages the final-normed patch
tokens instead (no cls token).

:func:`knn_eval_checkpoint` runs the whole evaluation for a converted backbone checkpoint
(``tools/convert_checkpoint.py --to mmpretrain``), a raw pretraining checkpoint or a random
initialisation, on the data of an mmpretrain classification config;
``tools/knn_eval.py`` is its command-line front-end.
"""
import copy
import os.path as osp
import time
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURES = ('cls', 'avg')


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


# ----------------------------------------------------------------- features of a ViT
def build_feature_backbone(backbone_cfg: dict) -> nn.Module:
    """An mmpretrain ``VisionTransformer`` that returns all tokens after its final norm.

    Takes the backbone of a classification config and keeps its architecture (``arch``,
    ``img_size``, ``patch_size``, ``norm_cfg``, ``qkv_bias``...) but sets
    ``out_type='raw'``, ``final_norm=True``, no stochastic depth or dropout, no frozen
    stages and no ``init_cfg``: the caller loads the weights.

    Args:
        backbone_cfg (dict): ``model.backbone`` of an mmpretrain config
            (``type='VisionTransformer'``).

    Returns:
        nn.Module: The backbone in eval mode.
    """
    from mmpretrain.registry import MODELS
    cfg = copy.deepcopy(dict(backbone_cfg))
    btype = cfg.get('type')
    if btype not in ('VisionTransformer', 'mmpretrain.VisionTransformer'):
        raise ValueError(f"model.backbone.type must be 'VisionTransformer' for the kNN "
                         f'evaluation, got {btype!r}')
    cfg.update(out_type='raw', final_norm=True, frozen_stages=-1, drop_path_rate=0.,
               drop_rate=0., out_indices=-1, init_cfg=None, with_cls_token=True)
    backbone = MODELS.build(cfg)
    backbone.eval()  # (mmpretrain's train() does not return the module)
    return backbone


def load_backbone_weights(backbone: nn.Module, checkpoint: str,
                          branch: Optional[str] = None) -> dict:
    """Load encoder weights into ``backbone`` strictly.

    Accepts a converted backbone file (``tools/convert_checkpoint.py --to mmpretrain``:
    keys without prefix) or a pretraining checkpoint of this suite (``backbone.`` /
    ``teacher.`` keys), from which the encoder is taken as ``tools/convert_checkpoint.py``
    does (``branch`` defaults to the one the method's paper fine-tunes). The position
    embedding is resized by the backbone if its grid differs.

    Args:
        backbone (nn.Module): From :func:`build_feature_backbone`.
        checkpoint (str): Path of the checkpoint.
        branch (str, optional): 'student' or 'teacher', for pretraining checkpoints.

    Returns:
        dict: What was loaded (``format``, and the conversion meta for pretraining
        checkpoints).
    """
    from sdae_mm.utils.checkpoint import convert_state_dict, load_checkpoint_dict
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    state_dict, meta = load_checkpoint_dict(checkpoint)
    if any(k.startswith(('backbone.', 'teacher.')) for k in state_dict):
        state_dict, conv_meta, _ = convert_state_dict(state_dict, meta, target='mmpretrain',
                                                      branch=branch)
        info = dict(format='pretraining', algorithm=conv_meta['algorithm'],
                    branch=conv_meta['branch'])
    else:
        if branch is not None:
            raise ValueError(f'branch={branch!r} only applies to pretraining checkpoints; '
                             f'{checkpoint!r} is already a single converted encoder')
        info = dict(format='converted', algorithm=meta.get('algorithm'),
                    branch=meta.get('branch'))
    try:
        missing, unexpected = backbone.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # shape mismatches are raised even when not strict
        raise ValueError(f'{checkpoint!r} does not fit the backbone of the config (check '
                         f'arch/patch_size): {str(err).splitlines()[-1].strip()}') from err
    if missing or unexpected:
        raise KeyError(f'{checkpoint!r} does not match the backbone: missing keys '
                       f'{sorted(missing)[:8]}, unexpected keys {sorted(unexpected)[:8]}')
    return info


def _pool(tokens: torch.Tensor, feature: str, num_extra_tokens: int = 1) -> torch.Tensor:
    if feature == 'cls':
        return tokens[:, 0]
    return tokens[:, num_extra_tokens:].mean(dim=1)


@torch.no_grad()
def extract_features(backbone: nn.Module,
                     data_preprocessor: nn.Module,
                     dataloader: Iterable,
                     feature: str = 'cls',
                     device: Union[str, torch.device, None] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a whole dataset, in dataset order.

    Works in distributed runs: each rank embeds its share (mmengine ``DefaultSampler``),
    the shares are all-gathered and put back in order by each sample's ``sample_idx``.

    Args:
        backbone (nn.Module): From :func:`build_feature_backbone` (tokens after the final
            norm).
        data_preprocessor (nn.Module): mmpretrain ``ClsDataPreprocessor`` (normalisation).
        dataloader (Iterable): Yields mmpretrain batches (``inputs``, ``data_samples``
            with ``gt_label`` and ``sample_idx``).
        feature (str): 'cls' (class token) or 'avg' (mean of the patch tokens).
        device (str, optional): Where to run; defaults to the backbone's device.

    Returns:
        tuple[Tensor, Tensor]: Features (N, C) float32 and labels (N,) int64, on the CPU.
    """
    from mmengine.dist import all_gather, get_world_size
    if feature not in FEATURES:
        raise ValueError(f'feature must be one of {FEATURES}, got {feature!r}')
    device = torch.device(device) if device is not None else next(backbone.parameters()).device
    backbone.eval()
    backbone.to(device)
    data_preprocessor.to(device)
    num_extra = getattr(backbone, 'num_extra_tokens', 1)
    feats, labels, indices = [], [], []
    for batch in dataloader:
        data = data_preprocessor(batch, training=False)
        tokens = backbone(data['inputs'])[-1]
        feats.append(_pool(tokens, feature, num_extra).float())
        samples = data['data_samples']
        labels.append(torch.cat([s.gt_label.view(-1)[:1] for s in samples]).to(device))
        indices.append(torch.tensor([int(s.metainfo['sample_idx']) for s in samples],
                                    device=device))
    if not feats:
        raise ValueError('the dataloader yielded no data')
    feats, labels, indices = torch.cat(feats), torch.cat(labels).long(), torch.cat(indices)
    if get_world_size() > 1:
        feats = torch.cat(all_gather(feats))
        labels = torch.cat(all_gather(labels))
        indices = torch.cat(all_gather(indices))
    # order by sample index; padding duplicates of the distributed sampler collapse
    num = int(indices.max()) + 1
    out_feats = feats.new_zeros(num, feats.shape[1])
    out_labels = labels.new_full((num, ), -1)
    out_feats[indices] = feats
    out_labels[indices] = labels
    seen = torch.zeros(num, dtype=torch.bool, device=indices.device)
    seen[indices] = True
    if not bool(seen.all()):
        raise RuntimeError(f'{int((~seen).sum())} samples were not embedded')
    return out_feats.cpu(), out_labels.cpu()


# --------------------------------------------------------------- end-to-end evaluation
def _quiet_init_weights(module: nn.Module) -> None:
    """``init_weights`` without mmengine's per-parameter report on the console."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)


def _dataset_cfg(loader_cfg, pipeline, data_root, max_samples):
    ds = copy.deepcopy(dict(loader_cfg['dataset']))
    if pipeline is not None:
        ds['pipeline'] = copy.deepcopy(pipeline)
    if data_root is not None:
        ds['data_root'] = data_root
    if max_samples is not None:
        ds['indices'] = int(max_samples)
    return ds


def _loader(dataset_cfg, batch_size, num_workers):
    from mmengine.runner import Runner
    return Runner.build_dataloader(
        dict(batch_size=batch_size, num_workers=num_workers,
             persistent_workers=False, pin_memory=False,
             sampler=dict(type='DefaultSampler', shuffle=False),
             collate_fn=dict(type='default_collate'), dataset=dataset_cfg))


def knn_eval_checkpoint(checkpoint: Optional[str],
                        arch_config: Union[str, 'Config'],  # noqa: F821
                        data_root: Optional[str] = None,
                        k: int = 20,
                        temperature: float = 0.07,
                        feature: str = 'cls',
                        max_train: Optional[int] = None,
                        max_val: Optional[int] = None,
                        batch_size: int = 128,
                        num_workers: int = 0,
                        branch: Optional[str] = None,
                        device: Optional[str] = None,
                        seed: int = 0,
                        cfg_options: Optional[dict] = None,
                        chunk_size: int = 1024) -> Dict:
    """kNN accuracy of a backbone checkpoint (or a random initialisation).

    The architecture, the normalisation and the data come from an mmpretrain
    classification config (the linear-probe configs are meant for it): ``model.backbone``
    (an mmpretrain ``VisionTransformer``), ``data_preprocessor`` (mean/std), the training
    set of ``train_dataloader`` as memory bank and the set of ``test_dataloader`` (else
    ``val_dataloader``) as queries, both with the test pipeline.

    Args:
        checkpoint (str, optional): Converted backbone (``--to mmpretrain``) or pretraining
            checkpoint. None: a randomly initialised backbone (mmpretrain's
            initialisation, seeded by ``seed``), the baseline of the protocol.
        arch_config (str | Config): The classification config.
        data_root (str, optional): Replaces ``data_root`` of both datasets.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        feature (str): 'cls' (class token after the final norm, default) or 'avg'.
        max_train (int, optional): Use only the first ``max_train`` training images.
        max_val (int, optional): Use only the first ``max_val`` query images.
        batch_size (int): Images per forward pass (per process).
        num_workers (int): Dataloader workers.
        branch (str, optional): Encoder of a pretraining checkpoint ('student' or
            'teacher'); default as in ``tools/convert_checkpoint.py``.
        device (str, optional): Defaults to the accelerator if present, else the CPU.
        seed (int): Seed of the random initialisation.
        cfg_options (dict, optional): Overrides merged into the config.
        chunk_size (int): Queries per similarity block.

    Returns:
        dict: ``top1``, ``top5`` (percent), the settings and counts, and where the
        weights came from.
    """
    from mmengine.config import Config
    from mmengine.device import get_device
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from mmpretrain.registry import MODELS

    t0 = time.time()
    cfg = Config.fromfile(arch_config) if isinstance(arch_config, str) else \
        copy.deepcopy(arch_config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain') or 'mmpretrain')
    if feature not in FEATURES:
        raise ValueError(f'feature must be one of {FEATURES}, got {feature!r}')
    for key in ('model', 'train_dataloader'):
        if cfg.get(key) is None:
            raise KeyError(f'{arch_config} has no {key}')
    query_loader_cfg = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if query_loader_cfg is None:
        raise KeyError(f'{arch_config} has neither test_dataloader nor val_dataloader')
    test_pipeline = query_loader_cfg['dataset'].get('pipeline')

    set_random_seed(seed)
    backbone = build_feature_backbone(cfg.model.backbone)
    if checkpoint is None:
        _quiet_init_weights(backbone)
        source = dict(format='random-init', seed=seed)
    else:
        source = load_backbone_weights(backbone, checkpoint, branch)
    prep_cfg = dict(cfg.get('data_preprocessor') or cfg.model.get('data_preprocessor') or {})
    prep = MODELS.build(dict(type='ClsDataPreprocessor',
                             mean=prep_cfg.get('mean'), std=prep_cfg.get('std'),
                             to_rgb=prep_cfg.get('to_rgb', False)))
    device = device or get_device()

    train_ds = _dataset_cfg(cfg.train_dataloader, test_pipeline, data_root, max_train)
    query_ds = _dataset_cfg(query_loader_cfg, None, data_root, max_val)
    train_loader = _loader(train_ds, batch_size, num_workers)
    query_loader = _loader(query_ds, batch_size, num_workers)
    classes = train_loader.dataset.metainfo.get('classes')
    if not classes:
        raise KeyError('the training dataset has no metainfo classes')
    num_classes = len(classes)

    train_feats, train_labels = extract_features(backbone, prep, train_loader, feature, device)
    query_feats, query_labels = extract_features(backbone, prep, query_loader, feature, device)
    acc = knn_accuracy(train_feats.to(device), train_labels.to(device),
                       query_feats.to(device), query_labels.to(device),
                       num_classes, k=k, temperature=temperature, chunk_size=chunk_size)
    return dict(
        top1=acc['top1'], top5=acc['top5'], k=k, temperature=temperature, feature=feature,
        num_train=int(train_feats.shape[0]), num_val=int(query_feats.shape[0]),
        num_classes=num_classes, feature_dim=int(train_feats.shape[1]),
        checkpoint=None if checkpoint is None else osp.abspath(checkpoint),
        random_init=checkpoint is None, source=source,
        config=arch_config if isinstance(arch_config, str) else None,
        seconds=round(time.time() - t0, 1))
