"""Scores of a lesion-vs-normal classifier: AUC, accuracy, F1 and per-class recall."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counted half); NaN without both classes."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_scores(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, AUC, lesion-class F1 and per-class recall of P(lesion) thresholded at 0.5."""
    predicted, lesion = probabilities >= 0.5, labels == 1
    tp, tn = int(np.sum(predicted & lesion)), int(np.sum(~predicted & ~lesion))
    fp, fn = int(np.sum(predicted & ~lesion)), int(np.sum(~predicted & lesion))
    return {
        "accuracy": (tp + tn) / len(labels),
        "auc": roc_auc(labels, probabilities),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "recall_lesion": tp / (tp + fn) if tp + fn else float("nan"),
        "recall_normal": tn / (tn + fp) if tn + fp else float("nan"),
    }
