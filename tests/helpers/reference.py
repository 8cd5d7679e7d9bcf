"""Reference ViT pieces in plain tensor ops over a state dict (mmpretrain names).

The tests re-implement the official training loops' equations with these, so that the
references share no code with the implementation under test.
"""
import torch.nn.functional as F


def layer_norm(x, sd, name, eps=1e-6):
    """LayerNorm with the weights ``{name}.weight`` / ``{name}.bias`` of ``sd``."""
    return F.layer_norm(x, x.shape[-1:], sd[f'{name}.weight'], sd[f'{name}.bias'], eps=eps)


def vit_block(x, sd, p, heads):
    """One pre-norm ViT block (``{p}ln1``, ``{p}attn``, ``{p}ln2``, ``{p}ffn``) on ``x``."""
    B, N, C = x.shape
    h = layer_norm(x, sd, f'{p}ln1')
    qkv = h @ sd[f'{p}attn.qkv.weight'].T + sd[f'{p}attn.qkv.bias']
    q, k, v = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (C // heads)**-0.5).softmax(dim=-1)
    x = x + (attn @ v).transpose(1, 2).reshape(B, N, C) @ sd[f'{p}attn.proj.weight'].T \
        + sd[f'{p}attn.proj.bias']
    h = F.gelu(layer_norm(x, sd, f'{p}ln2') @ sd[f'{p}ffn.layers.0.0.weight'].T
               + sd[f'{p}ffn.layers.0.0.bias'])
    return x + h @ sd[f'{p}ffn.layers.1.weight'].T + sd[f'{p}ffn.layers.1.bias']


def patch_embed(imgs, sd, p):
    """Patch tokens ``(B, L, C)`` of ``{p}patch_embed.projection`` (no position)."""
    w = sd[f'{p}patch_embed.projection.weight']
    x = F.conv2d(imgs, w, sd[f'{p}patch_embed.projection.bias'], stride=w.shape[-1])
    return x.flatten(2).transpose(1, 2)
