"""Recomputing the feed-forward networks' GELU in the backward pass to save memory.

In a transformer block's MLP, ``fc2(gelu(fc1(x)))``, autograd keeps both the hidden
pre-activation (for GELU's gradient) and the activation (for ``fc2``'s weight gradient):
two tensors of ``4 * C`` channels per token. Keeping only the first and recomputing
GELU from it in the backward pass saves the second, about a quarter of a ViT block's
activations, for one element-wise GELU more per block. The forward results and the
gradients are the same operations on the same values as without it.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN


class GeluLinear(torch.autograd.Function):
    """``F.linear(F.gelu(hidden), weight, bias)`` that saves ``hidden``, not the GELU
    output, and recomputes GELU in the backward pass (under the autocast state of the
    forward pass)."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor]) -> torch.Tensor:
        device = hidden.device.type
        ctx.autocast = (device, torch.is_autocast_enabled(device),
                        torch.get_autocast_dtype(device))
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.save_for_backward(hidden, weight)
        return F.linear(F.gelu(hidden), weight, bias)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        hidden, weight = ctx.saved_tensors
        device, enabled, dtype = ctx.autocast
        need_hidden, need_weight, need_bias = ctx.needs_input_grad
        grad_hidden = grad_weight = grad_bias = None
        with torch.autocast(device, dtype=dtype, enabled=enabled):
            if need_weight:
                act = F.gelu(hidden)
                grad_weight = grad_out.reshape(-1, grad_out.shape[-1]).t().matmul(
                    act.reshape(-1, act.shape[-1])).to(weight.dtype)
            if need_hidden:
                grad_act = grad_out.matmul(weight).to(hidden.dtype)
        if need_hidden:
            grad_hidden = torch.ops.aten.gelu_backward(grad_act, hidden)
        if need_bias and ctx.bias_dtype is not None:
            grad_bias = grad_out.reshape(-1, grad_out.shape[-1]).sum(0).to(ctx.bias_dtype)
        return grad_hidden, grad_weight, grad_bias


def gelu_linear(hidden: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``linear(gelu(hidden))`` with GELU recomputed in the backward pass."""
    return GeluLinear.apply(hidden, linear.weight, linear.bias)


class RecomputeGeluFFN(FFN):
    """mmcv's :class:`FFN` (two linears, exact GELU, no dropout inside) whose backward
    pass recomputes the GELU output instead of keeping it (see :class:`GeluLinear`).

    Same parameters and state-dict keys as the :class:`FFN` it replaces; without
    gradients (evaluation, a teacher) it runs the plain forward.
    """

    def forward(self, x: torch.Tensor, identity: Optional[torch.Tensor] = None):
        if not torch.is_grad_enabled():
            return super().forward(x, identity)
        fc1, fc2 = self.layers[0][0], self.layers[1]
        out = self.gamma2(gelu_linear(fc1(x), fc2))
        if not self.add_identity:
            return self.dropout_layer(out)
        return (x if identity is None else identity) + self.dropout_layer(out)


def _recomputable(ffn: nn.Module) -> bool:
    """An mmcv FFN of ``Linear, GELU (exact), Dropout(0), Linear, Dropout(0)``."""
    if type(ffn) is not FFN or ffn.num_fcs != 2:
        return False
    (fc1, act, drop_in), fc2, drop_out = ffn.layers
    return (isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear)
            and type(act) is nn.GELU and act.approximate == 'none'
            and drop_in.p == 0 and drop_out.p == 0)


def use_gelu_recompute(module: nn.Module) -> int:
    """Turn every recomputable FFN in ``module`` into a :class:`RecomputeGeluFFN` in
    place (parameters, buffers and hooks are kept). Returns how many were turned."""
    count = 0
    for sub in module.modules():
        if _recomputable(sub):
            sub.__class__ = RecomputeGeluFFN
            count += 1
    return count


__all__ = ['GeluLinear', 'gelu_linear', 'RecomputeGeluFFN', 'use_gelu_recompute']
