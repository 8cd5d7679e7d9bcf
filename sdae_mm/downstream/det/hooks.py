"""Fp16 gradient compression for DDP, as ViTDet's recipe uses (detectron2
``train.ddp.fp16_compression=True``); mmdet's own version is in ``projects/ViTDet``, which
its wheel does not ship."""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

__all__ = ['Fp16CompressionHook']


@HOOKS.register_module()
class Fp16CompressionHook(Hook):
    """Register PyTorch's ``fp16_compress_hook`` on the DDP model before training.

    Gradients are cast to float16 for the all-reduce and back, halving communication.
    Without DDP (one process, CPU) there is nothing to compress and the hook only logs.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        model = runner.model
        if isinstance(model, DistributedDataParallel):
            model.register_comm_hook(state=None, hook=default_hooks.fp16_compress_hook)
            print_log('Fp16CompressionHook: DDP gradients are all-reduced in float16',
                      logger='current')
        else:
            print_log('Fp16CompressionHook: the model is not wrapped in '
                      'DistributedDataParallel; nothing to compress', logger='current')
