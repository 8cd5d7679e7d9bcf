"""Random-number-generator state in checkpoints, for exact resumption."""
import random

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS
from torch.utils.data import DataLoader


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the RNG states (python, numpy, torch CPU and CUDA) with each checkpoint and
    restores them on resume.

    mmengine's checkpoints restore model, optimizer, schedulers and the data order, but not
    the random streams behind drop path or the data augmentation of a main-process loader;
    with this hook a resumed single-process run takes the same next step as an uninterrupted
    one, with or without data-loader workers (with workers, the augmentations must be seeded
    per sample: ``SeededSampler`` + ``SeedPerSample``). Checkpoints are written by rank 0
    only, so in multi-process runs the states are stored but not restored (each rank keeps
    its own freshly seeded stream).
    """

    priority = 'VERY_LOW'  # after every hook that may draw random numbers when saving

    def before_train(self, runner) -> None:
        """Give the training data loader a generator of its own.

        A data-loader iterator draws its workers' base seed from torch's global generator
        when it is created: once per epoch, or once per run with persistent workers, so a
        resumed run would draw once more than an uninterrupted one and shift the stream
        behind drop path. With a generator of its own (seeded from the run's seed) the
        loader leaves the global stream alone. The augmentations themselves are made
        independent of the workers by ``SeededSampler`` + ``SeedPerSample``.
        """
        loader = getattr(runner.train_loop, 'dataloader', None)
        if isinstance(loader, DataLoader) and loader.generator is None:
            loader.generator = torch.Generator().manual_seed(runner.seed or 0)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the current states."""
        state = dict(python=random.getstate(), numpy=np.random.get_state(),
                     torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the states of a single-process run."""
        state = checkpoint.get('meta', {}).get('rng_state')
        if state is None or get_world_size() > 1:
            return
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
        print_log('restored the RNG states of the checkpoint', logger='current')
