"""RNGStateHook: the training loader draws its workers' base seed from its own generator."""
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

from sdae_mm.engine.hooks.rng_state_hook import RNGStateHook


def _runner(loader, seed=3):
    return SimpleNamespace(train_loop=SimpleNamespace(dataloader=loader), seed=seed)


def test_loader_iterators_leave_the_global_torch_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(DataLoader(list(range(8)), batch_size=4))  # without the hook: one draw
    assert not torch.equal(torch.rand(3), expected)

    loader = DataLoader(list(range(8)), batch_size=4)
    RNGStateHook().before_train(_runner(loader))
    assert isinstance(loader.generator, torch.Generator)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for _ in range(3):  # each iterator draws a base seed
        list(loader)
    assert torch.equal(torch.rand(3), expected)
    # the loader's own generator is seeded from the run's seed: the same in every run
    other = DataLoader(list(range(8)), batch_size=4)
    RNGStateHook().before_train(_runner(other))
    assert torch.equal(other.generator.get_state(),
                       torch.Generator().manual_seed(3).get_state())


def test_a_generator_given_in_the_config_is_kept():
    gen = torch.Generator().manual_seed(7)
    loader = DataLoader(list(range(8)), batch_size=4, generator=gen)
    RNGStateHook().before_train(_runner(loader))
    assert loader.generator is gen
