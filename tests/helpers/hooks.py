"""Hooks that record what a test run did."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model


@HOOKS.register_module()
class RecordLossHook(Hook):
    """Keeps ``(iter, loss)`` of every training iteration."""

    priority = 'LOWEST'

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append((runner.iter, float(outputs['loss'].detach())))


@HOOKS.register_module()
class DumpTeacherHook(Hook):
    """Saves the teacher's state dict of every rank after training."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train(self, runner):
        model = get_ori_model(runner.model)
        torch.save({k: v.cpu() for k, v in model.teacher.state_dict().items()},
                   osp.join(self.out_dir, f'teacher_rank{get_rank()}.pth'))
