from .stagewise_lr import StagewiseCosineLR, StagewiseCosineParamScheduler

__all__ = ['StagewiseCosineLR', 'StagewiseCosineParamScheduler']
