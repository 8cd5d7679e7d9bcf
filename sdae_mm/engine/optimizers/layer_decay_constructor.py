"""Layer-wise learning-rate decay for plain ViTs, shared by every downstream task.

mmpretrain, mmseg and mmdet each ship a layer-decay constructor of their own
(``LearningRateDecayOptimWrapperConstructor``, ``LearningRateDecayOptimizerConstructor``,
``LayerDecayOptimizerConstructor``), with different names, rules and config keys. This
module gives the suite one layer rule, registered once in mmengine's root registry, so a
config of any of the three scopes finds it under the same name. Which parameters are
exempt from weight decay differs between the official transfer protocols; the config
names the protocol's rule (``paramwise_cfg.no_decay_rule``).
"""
import logging
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

# Relative to the ViT (after the backbone prefix). Tokens and the patch embedding are
# layer 0; ``norm_pre``/``pre_norm``/``pre_ln`` (a norm on the embeddings, absent from
# the MAE-family ViTs) is layer 0 too, as in timm's ``group_matcher``.
_EMBED_RE = re.compile(r'^(cls_token|pos_embed|mask_token|dist_token|reg_token|'
                       r'patch_embed|norm_pre|pre_norm|pre_ln)(\.|$)')
# Block index of mmpretrain/mmseg (``layers.i``) and timm/ViTDet (``blocks.i``) ViTs.
_BLOCK_RE = re.compile(r'^(layers|blocks)\.(\d+)\.')
# Parameter names (last component) that never get weight decay under the 'mae' rule.
_NO_DECAY_TOKENS = ('cls_token', 'mask_token', 'dist_token', 'reg_token')
_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, _BatchNorm, _InstanceNorm)
# The norm layers of detectron2's ``get_default_optimizer_params`` (torch classes and
# their subclasses).
_TORCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                     nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
                     nn.LayerNorm, nn.LocalResponseNorm)
# The no-decay rules a config can choose (paramwise_cfg.no_decay_rule).
NO_DECAY_RULES = ('mae', 'beit', 'vitdet')
# paramwise_cfg keys of mmengine/mmpretrain that are redundant with the 'mae' no-decay
# rule when they are 0 and contradict it otherwise.
_ZERO_ONLY_KEYS = ('bias_decay_mult', 'norm_decay_mult', 'flat_decay_mult')
_KNOWN_KEYS = ('layer_decay_rate', 'num_layers', 'custom_keys', 'backbone_prefix',
               'no_decay_rule') + _ZERO_ONLY_KEYS


def vit_layer_id(name: str, prefix: str, num_layers: int) -> int:
    """Layer of parameter ``name`` (full name) in a ViT of ``num_layers`` blocks: the one
    rule of every model (constructor, ViTDet's ``get_layer_depth``).

    Args:
        name (str): The parameter's full name in the model.
        prefix (str): Name prefix of the ViT (``'backbone.'`` or ``''``).
        num_layers (int): Number of blocks ``N``.

    Returns:
        int: 0 for embeddings, ``i + 1`` for block ``i``, ``N + 1`` otherwise.
    """
    if not name.startswith(prefix):
        return num_layers + 1
    rel = name[len(prefix):]
    if _EMBED_RE.match(rel):
        return 0
    block = _BLOCK_RE.match(rel)
    if block:
        return int(block.group(2)) + 1
    return num_layers + 1


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORM_TYPES) or 'Norm' in type(module).__name__


def _no_decay_mae(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """MAE/timm fine-tuning: 1-D parameters, tokens and position tables."""
    leaf = name.rsplit('.', 1)[-1]
    return (param.ndim <= 1 or leaf == 'bias' or _is_norm(module)
            or leaf in _NO_DECAY_TOKENS or 'pos_embed' in leaf
            or leaf.startswith('rel_pos') or 'relative_position' in leaf)


def _no_decay_beit(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """BEiT's mmcv constructor: 1-D parameters and ``*.bias`` only.

    Its exemption of ``pos_embed``/``cls_token`` compares the *full* name, so it only
    holds for a bare ViT; inside a segmentor or detector both are decayed, and so are
    the relative position tables (2-D).
    """
    return param.ndim == 1 or name.endswith('.bias') or name in ('pos_embed', 'cls_token')


def _no_decay_vitdet(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """detectron2's ViTDet: parameters of torch norm layers and ``pos_embed`` only.

    detectron2's channel LayerNorm (feature pyramid, RoI heads) is a plain ``nn.Module``
    outside its norm types, so it is decayed; a ``LayerNorm2d`` (our ``LN2d``,
    mmpretrain's) stands for it here although it subclasses ``nn.LayerNorm``.
    """
    is_norm = (isinstance(module, _TORCH_NORM_TYPES)
               and type(module).__name__ != 'LayerNorm2d')
    return is_norm or name.rsplit('.', 1)[-1] == 'pos_embed'


_NO_DECAY_FNS = dict(mae=_no_decay_mae, beit=_no_decay_beit, vitdet=_no_decay_vitdet)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay and weight-decay exclusion for ViT models.

    One layer rule for classifiers, segmentors and detectors (as in MAE's
    ``param_groups_lrd`` and BEiT's optimizer factory,
    `MAE <https://arxiv.org/abs/2111.06377>`_):

    - layer 0: the embeddings of the ViT, i.e. ``cls_token``, ``pos_embed``,
      ``patch_embed.*``, ``mask_token`` (and ``dist_token``/``reg_token``/pre-norm of
      other ViT variants);
    - layer ``i + 1``: block ``i`` of the ViT, read from ``layers.i.`` (mmpretrain,
      mmseg) or ``blocks.i.`` (timm, ViTDet);
    - layer ``N + 1``: everything else: the ViT's final norm, necks, heads, decoders
      (timm's ``param_groups_layer_decay`` puts the final norm with the last block; MAE's
      and BEiT's code, which this follows, put it here);
    - lr of a parameter in layer ``l``: ``lr * rate ** (N + 1 - l)``.

    Which parameters get no weight decay is the rule of the protocol the config
    reproduces, ``paramwise_cfg.no_decay_rule``:

    - ``'mae'`` (default), MAE/timm fine-tuning (MAE's ``param_groups_lrd``, timm's
      ``param_groups_layer_decay``): biases, parameters of norm layers, 1-D parameters
      (e.g. layer-scale gammas), position embeddings, cls/mask/dist/register tokens and
      relative position tables (``relative_position_bias_table``, ``rel_pos_*``); on the
      MAE-family ViTs, whose only such tensors are ``pos_embed`` and ``cls_token``, this
      is exactly ``param_groups_lrd``'s set.
    - ``'beit'``, BEiT's mmcv ``LayerDecayOptimizerConstructor``, used unchanged by
      mmseg (its ``LayerDecayOptimizerConstructor``), mae_segmentation, iBOT, CAE and
      dBOT for UperNet and Mask/Cascade R-CNN: only 1-D parameters and names ending in
      ``.bias``; ``pos_embed``, ``cls_token`` and relative position tables are decayed
      (the exemption of ``pos_embed``/``cls_token`` compares full names, so it only
      applies to a bare ViT).
    - ``'vitdet'``, detectron2's ViTDet (``get_default_optimizer_params`` with
      ``weight_decay_norm=0`` and a ``pos_embed`` override): only parameters of torch
      norm layers (``nn.LayerNorm``, batch/group/instance norms) and ``pos_embed``;
      biases, ``rel_pos_h``/``rel_pos_w`` and the channel LayerNorms of the feature
      pyramid and RoI heads (``LayerNorm2d``, detectron2's non-torch ``LayerNorm``)
      are decayed.

    Which parameters belong to the ViT: when the model has a child module named
    ``backbone`` (mmpretrain ``ImageClassifier``, mmseg ``EncoderDecoder``, mmdet
    detectors) only names under ``backbone.`` are read, and block indices are only
    matched right after that prefix (``backbone.layers.3.``), so a neck or head that
    happens to have ``layers.0``/``blocks.0`` children (``neck.layers.0``) stays in
    layer ``N + 1``, and so does any other ViT of the model (e.g. a trainable teacher
    outside ``backbone.``). A model without ``backbone`` child is taken to be the ViT itself
    (a timm ``VisionTransformer``, a bare backbone). ``paramwise_cfg.backbone_prefix``
    overrides this (e.g. ``'backbone.vit.'`` for a wrapper backbone).

    Parameters with ``requires_grad=False`` (a frozen teacher, fixed sin-cos position
    embeddings) are not given to the optimizer. ``N`` is counted from all parameter
    names of the ViT, frozen ones included.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float, required): the decay rate, in (0, 1].
    - ``num_layers`` (int, optional): ``N``, the number of blocks. Derived from the
      model when omitted; a value that disagrees with the model is an error.
    - ``custom_keys`` (dict, optional): mmengine semantics. The first key (longest
      first, then alphabetical) that is a substring of a parameter's full name applies:
      ``lr_mult`` multiplies the layer-decayed lr, ``decay_mult`` sets the weight decay
      to ``weight_decay * decay_mult`` (overriding the no-decay rule), any other field
      is copied into the parameter's group.
    - ``backbone_prefix`` (str, optional): see above.
    - ``no_decay_rule`` (str, optional): ``'mae'`` (default), ``'beit'`` or
      ``'vitdet'``, see above.
    - ``bias_decay_mult``, ``norm_decay_mult``, ``flat_decay_mult``: accepted only as
      0 with the ``'mae'`` rule (what it does anyway), so mmpretrain configs port
      unchanged.

    Parameters that end up with equal lr, weight decay and custom fields share one
    param group; each group also carries ``lr_scale`` (its lr divided by the base lr,
    informative only: mmengine's schedulers scale each group's own ``lr``). A compact
    table of the groups is logged at INFO level.

    Example:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05,
        ...                    betas=(0.9, 0.999)),
        ...     constructor='ViTLayerDecayOptimWrapperConstructor',
        ...     paramwise_cfg=dict(layer_decay_rate=0.65, no_decay_rule='mae'))

    Args:
        optim_wrapper_cfg (dict): The optim wrapper config (with ``optimizer``).
        paramwise_cfg (dict): See above; ``layer_decay_rate`` is required.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        cfg = self.paramwise_cfg
        unknown = sorted(set(cfg) - set(_KNOWN_KEYS))
        if unknown:
            raise ValueError(
                f'paramwise_cfg has unsupported keys {unknown} for '
                f'ViTLayerDecayOptimWrapperConstructor; supported: {list(_KNOWN_KEYS)}')
        rule = cfg.get('no_decay_rule', 'mae')
        if rule not in NO_DECAY_RULES:
            raise ValueError(f'paramwise_cfg.no_decay_rule must be one of '
                             f'{list(NO_DECAY_RULES)}, got {rule!r}')
        self.no_decay_rule = rule
        for key in _ZERO_ONLY_KEYS:
            if key not in cfg:
                continue
            if rule != 'mae':
                raise ValueError(
                    f'paramwise_cfg.{key} is not supported with '
                    f'no_decay_rule={rule!r}: the rule decides which parameters are '
                    'decayed; use custom_keys with decay_mult for a specific parameter')
            if cfg[key] != 0:
                raise ValueError(
                    f'paramwise_cfg.{key}={cfg[key]!r}: the \'mae\' no-decay rule never '
                    'decays biases, norms and 1-D parameters; use custom_keys with '
                    'decay_mult to decay a specific parameter')
        if 'layer_decay_rate' not in cfg:
            raise ValueError('paramwise_cfg.layer_decay_rate is required by '
                             'ViTLayerDecayOptimWrapperConstructor')
        rate = cfg['layer_decay_rate']
        if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f'paramwise_cfg.layer_decay_rate must be in (0, 1], '
                             f'got {rate!r}')
        num_layers = cfg.get('num_layers')
        if num_layers is not None and (not isinstance(num_layers, int)
                                       or num_layers < 1):
            raise ValueError(f'paramwise_cfg.num_layers must be a positive int or '
                             f'None, got {num_layers!r}')
        prefix = cfg.get('backbone_prefix')
        if prefix is not None and not isinstance(prefix, str):
            raise ValueError(f'paramwise_cfg.backbone_prefix must be a str, '
                             f'got {prefix!r}')
        if self.base_lr is None:
            raise ValueError('optimizer.lr is required by '
                             'ViTLayerDecayOptimWrapperConstructor')

    # ------------------------------------------------------------------ rule
    @staticmethod
    def find_backbone_prefix(model: nn.Module) -> str:
        """The name prefix of the ViT inside ``model`` ('' if it is the ViT)."""
        children = dict(model.named_children())
        return 'backbone.' if isinstance(children.get('backbone'), nn.Module) else ''

    def get_layer_id(self, name: str, prefix: str, num_layers: int) -> int:
        """Layer of parameter ``name``: :func:`vit_layer_id`."""
        return vit_layer_id(name, prefix, num_layers)

    def no_weight_decay(self, name: str, param: nn.Parameter, module: nn.Module) -> bool:
        """Whether the configured no-decay rule exempts a parameter from weight decay.

        Args:
            name (str): The parameter's full name in the model.
            param (nn.Parameter): The parameter.
            module (nn.Module): The module that owns it directly.
        """
        return _NO_DECAY_FNS[self.no_decay_rule](name, param, module)

    def _count_blocks(self, model: nn.Module, prefix: str) -> int:
        indices = set()
        kinds = set()
        for name, _ in model.named_parameters():
            if not name.startswith(prefix):
                continue
            block = _BLOCK_RE.match(name[len(prefix):])
            if block:
                kinds.add(block.group(1))
                indices.add(int(block.group(2)))
        where = f"under '{prefix}'" if prefix else 'at the top level of the model'
        if not indices:
            examples = [n for n, _ in model.named_parameters()][:5]
            raise ValueError(
                f'ViTLayerDecayOptimWrapperConstructor cannot identify the ViT blocks '
                f'of {type(model).__name__}: no parameter {where} is named '
                f"'layers.<i>.*' or 'blocks.<i>.*' (first parameters: {examples}). "
                "Set paramwise_cfg.backbone_prefix to the ViT's name prefix, or use "
                'another constructor for non-ViT models.')
        if len(kinds) > 1:
            raise ValueError(
                f'ViTLayerDecayOptimWrapperConstructor found both layers.<i> and '
                f'blocks.<i> parameters {where} in {type(model).__name__}; the block '
                'index is ambiguous, set paramwise_cfg.backbone_prefix')
        found = max(indices) + 1
        given = self.paramwise_cfg.get('num_layers')
        if given is not None and given != found:
            kind = kinds.pop()
            raise ValueError(
                f'paramwise_cfg.num_layers={given} but the ViT {where} has {found} '
                f'blocks ({kind}.0 .. {kind}.{found - 1})')
        return found

    # ------------------------------------------------------------ building
    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   **kwargs) -> None:
        """Fill ``params`` with the layer-decay param groups of the whole model.

        Args:
            params (list[dict]): Receives the param groups (modified in place).
            module (nn.Module): The model (already unwrapped from DDP).
            prefix (str): Must be ''; groups are built for the whole model at once.
        """
        if prefix:
            raise ValueError('ViTLayerDecayOptimWrapperConstructor builds the groups '
                             f'of the whole model at once; got prefix={prefix!r}')
        model = module
        vit_prefix = self.paramwise_cfg.get('backbone_prefix')
        if vit_prefix is None:
            vit_prefix = self.find_backbone_prefix(model)
        num_layers = self._count_blocks(model, vit_prefix)
        rate = float(self.paramwise_cfg['layer_decay_rate'])
        custom_keys = self.paramwise_cfg.get('custom_keys', {})
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)

        owners: Dict[str, nn.Module] = {}
        for mod_name, mod in model.named_modules():
            for p_name, _ in mod.named_parameters(recurse=False):
                owners[f'{mod_name}.{p_name}' if mod_name else p_name] = mod

        groups: 'OrderedDict[Tuple, dict]' = OrderedDict()
        stats: Dict[Tuple, dict] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            layer_id = self.get_layer_id(name, vit_prefix, num_layers)
            scale = rate**(num_layers + 1 - layer_id)
            if self.base_wd is None:
                decay = None
            elif self.no_weight_decay(name, param, owners[name]):
                decay = 0.
            else:
                decay = float(self.base_wd)
            extra = {}
            key = next((k for k in sorted_keys if k in name), None)
            if key is not None:
                extra = dict(custom_keys[key])
                scale = scale * extra.pop('lr_mult', 1.)
                if 'decay_mult' in extra:
                    decay = float(self.base_wd) * extra.pop('decay_mult')
            group_key = (scale, decay,
                         tuple(sorted((k, repr(v)) for k, v in extra.items())))
            if group_key not in groups:
                group = dict(params=[], lr=self.base_lr * scale, lr_scale=scale)
                if decay is not None:
                    group['weight_decay'] = decay
                group.update(extra)
                groups[group_key] = group
                stats[group_key] = dict(layers=set(), count=0, numel=0, custom=key)
            groups[group_key]['params'].append(param)
            stats[group_key]['layers'].add(layer_id)
            stats[group_key]['count'] += 1
            stats[group_key]['numel'] += param.numel()

        order = sorted(groups, key=lambda k: (min(stats[k]['layers']), k[0],
                                              -1 if k[1] is None else k[1]))
        params.extend(groups[k] for k in order)
        self._log_summary(model, vit_prefix, num_layers, rate,
                          [(groups[k], stats[k]) for k in order])

    def _log_summary(self, model, vit_prefix, num_layers, rate, rows) -> None:
        given = self.paramwise_cfg.get('num_layers')
        lines = [
            f'ViTLayerDecayOptimWrapperConstructor: {type(model).__name__}, ViT '
            f"prefix '{vit_prefix}', N={num_layers} blocks "
            f"({'from config' if given is not None else 'derived'}), "
            f'rate={rate}, lr={self.base_lr}, weight_decay={self.base_wd}, '
            f"no_decay_rule='{self.no_decay_rule}'; "
            f'{len(rows)} groups:',
            f"{'layers':>10} {'lr_scale':>10} {'lr':>10} {'wd':>8} "
            f"{'#params':>8} {'#elements':>11}  custom_key"
        ]
        for group, st in rows:
            layers = sorted(st['layers'])
            span = str(layers[0]) if len(layers) == 1 else f'{layers[0]}-{layers[-1]}'
            wd = group.get('weight_decay')
            lines.append(
                f'{span:>10} {group["lr_scale"]:>10.4g} {group["lr"]:>10.3g} '
                f"{'default' if wd is None else format(wd, '.3g'):>8} "
                f"{st['count']:>8} {st['numel']:>11}  {st['custom'] or ''}")
        print_log('\n'.join(lines), logger='current', level=logging.INFO)
