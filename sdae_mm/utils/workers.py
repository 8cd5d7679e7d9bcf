"""Stopping a finished runner's data-loader worker processes."""
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

LOOPS = ('_train_loop', '_val_loop', '_test_loop')


def shutdown_dataloader_workers(runner) -> int:
    """Stop the worker processes of ``runner``'s data loaders now.

    A runner whose loaders have persistent workers (or an iteration-based loop, which
    keeps its iterator) leaves those processes waiting for work after ``train()`` or
    ``test()`` returns. They are stopped only when the runner is garbage-collected, and
    torch's shutdown run from the collector, at whatever moment it runs, was seen to
    wait out its 5 s join timeout per worker before terminating them (42 s at the
    start of the demo's segmentation stage). Stopping them explicitly takes
    milliseconds. Call it once the runner is done with its loaders, e.g. between runs
    in one process; the loaders start new workers if they are iterated again.

    Args:
        runner (mmengine.runner.Runner): A runner after ``train()``, ``val()`` or
            ``test()``.

    Returns:
        int: The number of worker processes stopped.
    """
    stopped = 0
    for name in LOOPS:
        loop = getattr(runner, name, None)
        loader = getattr(loop, 'dataloader', None)
        endless = getattr(loop, 'dataloader_iterator', None)
        for holder in (loader, endless):
            iterator = getattr(holder, '_iterator', None)
            if not isinstance(iterator, _MultiProcessingDataLoaderIter):
                continue
            if not iterator._shutdown:
                stopped += sum(w.is_alive() for w in iterator._workers)
                iterator._shutdown_workers()
            # a data loader makes a new iterator when it has none; mmengine's endless
            # iterator makes one when its current one is exhausted
            holder._iterator = None if holder is loader else iter(())
    return stopped


__all__ = ['shutdown_dataloader_workers']
