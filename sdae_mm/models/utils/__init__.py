from .pos_embed import sincos_pos_embed
from .tokens import gather_tokens

__all__ = ['sincos_pos_embed', 'gather_tokens']
from .momentum import cosine_momentum  # noqa: E402

__all__ += ['cosine_momentum']
