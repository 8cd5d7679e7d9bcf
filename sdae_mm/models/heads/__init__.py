from .distill_head import FeatureDistillHead, normalize_per_token

__all__ = ['FeatureDistillHead', 'normalize_per_token']
