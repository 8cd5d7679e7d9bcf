"""Token gathering helpers shared by the encoders, decoders and algorithms."""
import torch


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Select tokens per sample: ``x`` (B, L, C), ``ids`` (B, n) -> (B, n, C).

    Uses an expanded (not repeated) index, so no copy of the index is made.
    """
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
