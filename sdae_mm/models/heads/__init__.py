from .distill_head import FeatureDistillHead, normalize_per_token

__all__ = ['FeatureDistillHead', 'normalize_per_token']
from .masked_distill_head import MaskedFeatureDistillHead  # noqa: E402
from .rc_mae_head import RCMAEHead  # noqa: E402

__all__ += ['MaskedFeatureDistillHead', 'RCMAEHead']
