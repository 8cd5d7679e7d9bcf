"""Evaluation rules as pure functions of features and labels: weighted kNN.

Nothing here is registered or reads checkpoints; ``tools/knn_eval.py`` extracts the
features of a checkpoint and calls :func:`knn_accuracy`.
"""
from .knn import knn_accuracy, weighted_knn_scores  # noqa: F401

__all__ = ['weighted_knn_scores', 'knn_accuracy']
