from .pos_embed import sincos_pos_embed
from .tokens import gather_tokens

__all__ = ['sincos_pos_embed', 'gather_tokens']
from .momentum import cosine_momentum  # noqa: E402

__all__ += ['cosine_momentum']
from .recompute import (GeluLinear, RecomputeGeluFFN, gelu_linear,  # noqa: E402
                        use_gelu_recompute)

__all__ += ['GeluLinear', 'RecomputeGeluFFN', 'gelu_linear', 'use_gelu_recompute']
