"""mmengine's default optimizer constructor, without the modules that never train."""
from typing import List, Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


def merge_param_groups(groups: List[dict]) -> List[dict]:
    """Merge parameter groups whose options (every key but ``params``) are equal.

    mmengine's default constructor makes one group per parameter when ``paramwise_cfg``
    is set. The optimizer's update of a parameter depends only on its own group's
    options, so merging equal groups gives the same updates, while the optimizer runs
    one (multi-tensor or fused) update per group instead of one per parameter. Groups
    keep the order in which their first parameter appeared, and parameters their order.
    """
    merged = {}
    for group in groups:
        options = {k: v for k, v in group.items() if k != 'params'}
        key = repr(sorted(options.items()))
        if key not in merged:
            merged[key] = dict(options, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` that skips wholly frozen submodules and
    merges equal parameter groups.

    A teacher has no trainable parameter; the default constructor still visits each of its
    parameters and logs a warning for every one. This constructor leaves such modules out
    of the optimizer (they would receive no update anyway). With ``paramwise_cfg`` the
    default constructor gives every parameter its own group; groups with equal options
    are merged here (:func:`merge_param_groups`), which gives the same updates with far
    fewer optimizer launches (a few groups instead of hundreds). Everything else,
    including ``paramwise_cfg``, behaves exactly as the default constructor.
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[int] = None) -> None:
        """Add the parameters of ``module`` unless none of them trains; at the top level
        (``prefix=''``), merge the groups with equal options."""
        if not any(p.requires_grad for p in module.parameters()):
            return
        if prefix:
            super().add_params(params, module, prefix, is_dcn_module)
            return
        groups: List[dict] = []
        super().add_params(groups, module, prefix, is_dcn_module)
        params.extend(merge_param_groups(groups))
