"""Convert any checkpoint this suite reads into one library's backbone (or classifier)."""
from collections import OrderedDict
from typing import List, Optional, Tuple

from .layouts import Layout, detect_layout, extract_encoder
from .names import rename
from .pos_embed import resize_pos_embed

__all__ = ['TARGETS', 'TIMM_MODELS', 'convert_layout', 'convert_checkpoint_dict',
           'target_notes', 'timm_model_hint']

TARGETS = ('mmpretrain', 'mmseg', 'mmdet', 'timm')

# (embed_dims, num_layers, patch_size) -> timm model name
TIMM_MODELS = {
    (384, 12, 16): 'vit_small_patch16_224',
    (768, 12, 16): 'vit_base_patch16_224',
    (1024, 24, 16): 'vit_large_patch16_224',
    (1024, 24, 14): 'vit_large_patch14_224',
    (1280, 32, 14): 'vit_huge_patch14_224',
}


def timm_model_hint(spec: dict, img_size: int) -> str:
    """How a timm user builds the model these weights fit."""
    args = []
    if spec['num_classes']:
        args.append(f'num_classes={spec["num_classes"]}')
    else:
        args.append('num_classes=0')
    if spec['fc_norm'] and not spec['final_norm']:
        args.append("global_pool='avg'")
    key = (spec['embed_dims'], spec['num_layers'], spec['patch_size'])
    if key in TIMM_MODELS:
        if img_size != 224:
            args.append(f'img_size={img_size}')
        return f"timm.create_model('{TIMM_MODELS[key]}', {', '.join(args)})"
    return ('timm.models.vision_transformer.VisionTransformer('
            f'img_size={img_size}, patch_size={spec["patch_size"]}, '
            f'embed_dim={spec["embed_dims"]}, depth={spec["num_layers"]}, '
            'num_heads=<as in your config>, '
            f'mlp_ratio={spec["mlp_hidden"] / spec["embed_dims"]:g}, {", ".join(args)})')


def target_notes(target: str, spec: dict, with_head: bool) -> List[str]:
    """What the target model initialises itself, or leaves unused, after loading."""
    last = spec['num_layers'] - 1
    if target == 'mmpretrain':
        if with_head:
            return ['a whole ImageClassifier (backbone.* and head.fc.* of LinearClsHead): '
                    "build the backbone with out_type='avg_featmap', final_norm=False"]
        return [
            'the classification head is initialised by the classifier',
            "with out_type='avg_featmap' the pooled-feature norm ln2.* is new; with "
            'final_norm=False (the MAE fine-tuning recipe) ln1.* is left unused']
    if target == 'mmdet':
        return ['everything outside the backbone (neck, RPN and RoI heads) is initialised '
                'by the detector; PlainViT adds fpn1..fpn4, ViTDet relative position tables',
                'ln1.* (final norm) is not used by PlainViT or ViTDet']
    if target == 'mmseg':
        return [f'layers.{{0..{last}}}.attn.relative_position_bias_table: new, zeros in '
                "mmseg's MAE (no effect on the output)",
                f'layers.{{0..{last}}}.gamma_1/gamma_2 (layer scale): new, set to '
                'init_values; init_values=1.0 reproduces the pretrained encoder exactly',
                "build the backbone with norm_cfg=dict(type='LN', eps=1e-6), the "
                "pretraining encoder's LayerNorm eps",
                "ln1.* (final norm) is used only with final_norm=True",
                'neck, decode head and auxiliary head are initialised by the segmentor']
    if target == 'timm':
        if with_head:
            return ['the whole classifier: loads with strict=True']
        return ['strict loading works for num_classes=0; num_classes>0 adds a new '
                'head.weight/head.bias']
    raise ValueError(f'target must be one of {TARGETS}, got {target!r}')


def convert_layout(layout: Layout,
                   target: str,
                   branch: Optional[str] = None,
                   algo: Optional[str] = None,
                   img_size: Optional[int] = None,
                   keep_head: bool = True,
                   path: str = '<checkpoint>') -> Tuple[OrderedDict, dict, List[str]]:
    """One encoder of a detected layout, in the names of ``target``.

    Args:
        layout (Layout): From :func:`~sdae_mm.checkpoint.detect_layout`.
        target (str): One of :data:`TARGETS`.
        branch (str, optional): 'student' or 'teacher' (default: what the method's own
            fine-tuning loads).
        algo (str, optional): Overrides the detected method.
        img_size (int, optional): Resize the position embedding for this input size
            (None keeps the pretraining size).
        keep_head (bool): Keep the classification head of a fine-tuned checkpoint for the
            classifier targets (mmpretrain: a whole ``ImageClassifier``; timm). mmseg and
            mmdet never take it.
        path (str): The file, for messages.

    Returns:
        tuple: The state dict, its metadata and notes on what the target adds.
    """
    if target not in TARGETS:
        raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
    encoder, spec, info = extract_encoder(layout, branch, algo, path)
    dst_grid = spec['grid']
    if img_size is not None:
        if not isinstance(img_size, int) or img_size <= 0 or img_size % spec['patch_size']:
            raise ValueError(f'img_size={img_size!r} must be a positive multiple of the '
                             f'patch size {spec["patch_size"]}')
        dst_grid = (img_size // spec['patch_size'], ) * 2
    encoder['pos_embed'] = resize_pos_embed(encoder['pos_embed'], spec['grid'], dst_grid)
    encoder = OrderedDict((k, v.detach().clone().contiguous()) for k, v in encoder.items())

    has_head = spec['num_classes'] > 0
    with_head = has_head and keep_head and target in ('mmpretrain', 'timm')
    dropped = list(info['dropped'])
    if has_head and not with_head:
        dropped += ['head.weight', 'head.bias']
        encoder.pop('head.weight')
        encoder.pop('head.bias')
    if target in ('mmseg', 'mmdet') and spec['fc_norm']:
        dropped += ['ln2.weight', 'ln2.bias']  # timm fc_norm: a classifier's pooled norm
        encoder.pop('ln2.weight')
        encoder.pop('ln2.bias')
    if target == 'timm':
        out, _ = rename(encoder, 'mmpretrain', 'timm')
    elif with_head:
        out = OrderedDict(('head.fc.' + k[5:] if k.startswith('head.') else 'backbone.' + k, v)
                          for k, v in encoder.items())
    else:
        out = encoder
    out_img = dst_grid[0] * spec['patch_size']
    notes = target_notes(target, spec, with_head)
    if target == 'timm':
        notes.insert(0, 'build it with ' + timm_model_hint(
            dict(spec, num_classes=spec['num_classes'] if with_head else 0), out_img))
    meta = dict(info, target=target, with_head=with_head, dropped=dropped,
                embed_dims=spec['embed_dims'], num_layers=spec['num_layers'],
                patch_size=spec['patch_size'], mlp_hidden=spec['mlp_hidden'],
                num_classes=spec['num_classes'] if with_head else 0,
                final_norm=spec['final_norm'], img_size=out_img,
                pretrain_img_size=spec['grid'][0] * spec['patch_size'], grid=list(dst_grid),
                notes=list(notes))
    return out, meta, notes


def convert_checkpoint_dict(ckpt, target: str, fmt: str = 'auto',
                            path: str = '<checkpoint>', **kwargs):
    """:func:`detect_layout` then :func:`convert_layout` on a loaded checkpoint."""
    return convert_layout(detect_layout(ckpt, fmt, path), target, path=path, **kwargs)
