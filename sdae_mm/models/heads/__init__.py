from .distill_head import FeatureDistillHead, normalize_per_token
from .masked_distill_head import MaskedFeatureDistillHead
from .rc_mae_head import RCMAEHead

__all__ = ['FeatureDistillHead', 'normalize_per_token', 'MaskedFeatureDistillHead', 'RCMAEHead']
