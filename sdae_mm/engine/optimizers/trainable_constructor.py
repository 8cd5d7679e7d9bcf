"""mmengine's default optimizer constructor, without the modules that never train."""
from typing import List, Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` that skips wholly frozen submodules.

    A teacher has no trainable parameter; the default constructor still visits each of its
    parameters and logs a warning for every one. This constructor leaves such modules out
    of the optimizer (they would receive no update anyway); everything else, including
    ``paramwise_cfg``, behaves exactly as the default constructor.
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[int] = None) -> None:
        """Add the parameters of ``module`` unless none of them trains."""
        if not any(p.requires_grad for p in module.parameters()):
            return
        super().add_params(params, module, prefix, is_dcn_module)
