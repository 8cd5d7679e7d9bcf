"""The one place that reads checkpoints (DESIGN.md, "Checkpoints").

- :mod:`.io`: safe reading with clear errors, safe (atomic) writing;
- :mod:`.layouts`: layout and method detection (sdae-mm, mmpretrain, official SdAE, dBOT,
  RC-MAE and MAE, timm), branch selection, encoder checks;
- :mod:`.names`: timm <-> mmpretrain (= mmseg ``MAE``, mmdet ``PlainViT``/``ViTDet``) names;
- :mod:`.pos_embed`: the position-embedding resizer;
- :mod:`.convert`: one encoder for mmpretrain, mmseg, mmdet or timm;
- :mod:`.load`: strict loading into a model;
- :mod:`.resume`: the checkpoint a run resumes from is readable, or the error says which
  earlier one is.
"""
from .convert import TARGETS, convert_checkpoint_dict, convert_layout  # noqa: F401
from .io import (CheckpointReadError, CheckpointWriteError, check_readable,  # noqa: F401
                 read_checkpoint, save_checkpoint)
from .layouts import (ALGORITHMS, BRANCHES, DEFAULT_BRANCH, FORMATS, Layout,  # noqa: F401
                      detect_layout, extract_encoder, inspect_encoder)
from .load import (CheckpointMismatchError, check_pretrained_inits,  # noqa: F401
                   check_state_dict_fits, load_encoder, load_model_checkpoint,
                   load_state_dict_strict)
from .names import mmpretrain_to_timm_key, summarize_keys, timm_to_mmpretrain_key  # noqa
from .pos_embed import resize_pos_embed, resize_rel_pos_table  # noqa: F401
from .resume import check_resume_checkpoint  # noqa: F401

__all__ = [
    'TARGETS', 'FORMATS', 'ALGORITHMS', 'BRANCHES', 'DEFAULT_BRANCH', 'Layout',
    'CheckpointReadError', 'CheckpointWriteError', 'CheckpointMismatchError',
    'read_checkpoint', 'check_readable', 'save_checkpoint', 'detect_layout',
    'extract_encoder', 'inspect_encoder', 'convert_layout', 'convert_checkpoint_dict',
    'load_encoder', 'load_state_dict_strict', 'load_model_checkpoint',
    'check_state_dict_fits', 'check_pretrained_inits',
    'mmpretrain_to_timm_key', 'timm_to_mmpretrain_key', 'summarize_keys',
    'resize_pos_embed', 'resize_rel_pos_table', 'check_resume_checkpoint'
]
