"""Weighted kNN accuracy of a pretrained ViT on frozen features (DINO's protocol).

The classification config gives the backbone architecture, the normalisation and the data
(training set = memory bank, test set = queries, both with the test pipeline); the
linear-probe configs are the natural choice. The feature is the class token after the
final norm (the representation the MAE-family linear probe reads); ``--feature avg``
averages the patch tokens instead.

Examples::

    # a converted backbone (tools/convert_checkpoint.py --to mmpretrain)
    .venv/bin/python tools/knn_eval.py configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py \\
        --checkpoint work_dirs/demo/sdae/backbone_mmpretrain.pth --json work_dirs/demo/knn.json
    # any checkpoint sdae_mm.checkpoint reads, e.g. an official release, directly
    .venv/bin/python tools/knn_eval.py \\
        configs/benchmarks/classification/vit-base-p16_linear-8xb512-coslr-90e_in1k.py \\
        --checkpoint mae_pretrain_vit_base.pth
    # the same protocol on a randomly initialised backbone
    .venv/bin/python tools/knn_eval.py configs/demo/linear_vit-demo-p8_1xb64-10e_digits.py \\
        --random-init
    # ImageNet, 8 GPUs (features are gathered across processes)
    .venv/bin/python -m torch.distributed.run --nproc_per_node 8 tools/knn_eval.py \\
        configs/benchmarks/classification/vit-base-p16_linear-8xb512-coslr-90e_in1k.py \\
        --checkpoint work_dirs/sdae_vit-b_300e/epoch_300.pth --launcher pytorch
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, Iterable, Optional, Tuple, Union

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import sdae_mm  # noqa: E402,F401  (compat + registration)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from sdae_mm.evaluation import knn_accuracy  # noqa: E402

FEATURES = ('cls', 'avg')


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
    """Load an encoder into ``backbone`` strictly (any layout ``sdae_mm.checkpoint`` reads).

    A converted backbone (``tools/convert_checkpoint.py --to mmpretrain``), a pretraining
    checkpoint of this suite or an official SdAE, dBOT, RC-MAE or MAE file: the encoder is
    taken as the converter takes it (``branch`` defaults to the one the method's paper
    fine-tunes), and its position embedding is resized to the backbone's grid.

    Args:
        backbone (nn.Module): From :func:`build_feature_backbone`.
        checkpoint (str): Path of the checkpoint.
        branch (str, optional): 'student' or 'teacher'.

    Returns:
        dict: Where the weights came from (``format``, ``algorithm``, ``branch``).
    """
    from sdae_mm.checkpoint import load_encoder, load_state_dict_strict
    state_dict, meta = load_encoder(checkpoint, target='mmpretrain', branch=branch)
    load_state_dict_strict(backbone, state_dict, checkpoint,
                           pos_grid=backbone.patch_resolution,
                           num_extra_tokens=backbone.num_extra_tokens)
    return dict(format=meta['format'], algorithm=meta['algorithm'], branch=meta['branch'])


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
                        arch_config: Union[str, Config],
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Weighted kNN (k=20, T=0.07) on frozen ViT features',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Without --checkpoint or --random-init, the checkpoint of the config '
        '(model.backbone.init_cfg.checkpoint) is evaluated.')
    parser.add_argument('config', help='mmpretrain classification config (architecture, '
                        'normalisation, data)')
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--checkpoint', help='converted backbone (--to mmpretrain) or '
                     'pretraining checkpoint (backbone./teacher. keys)')
    src.add_argument('--random-init', action='store_true',
                     help='evaluate a randomly initialised backbone (the baseline)')
    parser.add_argument('--branch', choices=('student', 'teacher'), default=None,
                        help='encoder of a pretraining checkpoint (default: the one the '
                        "method's paper fine-tunes)")
    parser.add_argument('--data-root', help='replaces data_root of the datasets')
    parser.add_argument('--k', type=int, default=20, help='number of neighbours')
    parser.add_argument('--temperature', type=float, default=0.07,
                        help='vote weight exp(similarity / T)')
    parser.add_argument('--feature', choices=('cls', 'avg'), default='cls',
                        help='class token after the final norm, or mean of patch tokens')
    parser.add_argument('--batch-size', type=int, default=128, help='images per forward')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--max-train', type=int, help='use the first N training images')
    parser.add_argument('--max-val', type=int, help='use the first N query images')
    parser.add_argument('--seed', type=int, default=0, help='seed of --random-init')
    parser.add_argument('--device', help='cpu, cuda, ... (default: accelerator if any)')
    parser.add_argument('--json', '--out', dest='out', metavar='JSON',
                        help='write the result to this JSON file (--out: former name)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def resolve_checkpoint(cfg: Config, args) -> str:
    """The checkpoint to evaluate (None for a random initialisation)."""
    if args.random_init:
        return None
    if args.checkpoint:
        return args.checkpoint
    init_cfg = cfg.model.backbone.get('init_cfg') or {}
    if isinstance(init_cfg, dict) and init_cfg.get('checkpoint'):
        return init_cfg['checkpoint']
    raise ValueError('give --checkpoint or --random-init: the config has no '
                     'model.backbone.init_cfg.checkpoint')


def main(argv=None):
    args = parse_args(argv)
    from mmengine.dist import get_rank, init_dist

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.launcher != 'none':
        if torch.cuda.is_available() or args.launcher != 'pytorch':
            init_dist(args.launcher)
        else:  # CPU processes (mmengine's init_dist would select a CUDA device)
            torch.distributed.init_process_group(backend='gloo')
    checkpoint = resolve_checkpoint(cfg, args)
    result = knn_eval_checkpoint(
        checkpoint, cfg, data_root=args.data_root, k=args.k, temperature=args.temperature,
        feature=args.feature, max_train=args.max_train, max_val=args.max_val,
        batch_size=args.batch_size, num_workers=args.num_workers, branch=args.branch,
        device=args.device, seed=args.seed)
    result['config'] = args.config
    if get_rank() == 0:
        what = 'random init' if checkpoint is None else checkpoint
        print(f"kNN (k={result['k']}, T={result['temperature']}, {result['feature']} "
              f"feature) of {what}: top-1 {result['top1']:.2f} %, top-5 "
              f"{result['top5']:.2f} % ({result['num_val']} queries, "
              f"{result['num_train']} training images, {result['seconds']:.0f} s)",
              flush=True)
        if args.out:
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w') as f:
                json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
