from .momentum import cosine_momentum
from .pos_embed import sincos_pos_embed
from .recompute import GeluLinear, RecomputeGeluFFN, gelu_linear, use_gelu_recompute
from .tokens import gather_tokens

__all__ = [
    'sincos_pos_embed', 'gather_tokens', 'cosine_momentum', 'GeluLinear', 'RecomputeGeluFFN',
    'gelu_linear', 'use_gelu_recompute'
]
