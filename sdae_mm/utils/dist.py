"""Distributed runs on machines without GPUs (gloo on the CPU)."""
import os

import torch
import torch.distributed as torch_dist


def prepare_cpu_distributed(cfg) -> bool:
    """Make a distributed config run on CPU processes when no GPU is present.

    mmengine 0.10.7 always calls ``torch.cuda.set_device`` and wraps the model in DDP with
    ``device_ids=[LOCAL_RANK]``; both fail on a CPU. When ``cfg.launcher`` is not ``'none'``
    and CUDA is unavailable, this initialises the process group with gloo itself (the
    Runner then skips its own initialisation) and asks for a DDP wrapper without device ids.
    On GPU machines it changes nothing.

    Args:
        cfg (Config): The run's config, with ``launcher`` set.

    Returns:
        bool: Whether the config was switched to CPU distributed mode.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg', {}) or {})
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    if not torch_dist.is_initialized():
        if cfg.launcher == 'slurm':
            os.environ.setdefault('RANK', os.environ.get('SLURM_PROCID', '0'))
            os.environ.setdefault('WORLD_SIZE', os.environ.get('SLURM_NTASKS', '1'))
            os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        torch_dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True
