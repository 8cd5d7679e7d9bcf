"""Evaluation protocols that are not a training run: weighted kNN on frozen features.

Nothing here is registered; import :mod:`sdae_mm.evaluation.knn` (``tools/knn_eval.py``
does).
"""
from .knn import (build_feature_backbone, extract_features, knn_accuracy,  # noqa: F401
                  knn_eval_checkpoint, load_backbone_weights, weighted_knn_scores)

__all__ = [
    'weighted_knn_scores', 'knn_accuracy', 'build_feature_backbone',
    'load_backbone_weights', 'extract_features', 'knn_eval_checkpoint'
]
