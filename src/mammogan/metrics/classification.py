"""Scores of patch classifiers: lesion-vs-normal (AUC, accuracy, F1, per-class recall) and multi-class (macro and per class)."""

from __future__ import annotations

from typing import Sequence

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


def multiclass_scores(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[str],
                      expected: Sequence[int] | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro AUC / F1 / precision / recall of (N, C) class probabilities, with the
    one-vs-rest value of each per class (`auc_<class>`, ...). The prediction is the most probable class; a present
    class never predicted has precision 0, a class absent from `labels` has NaN per-class scores.

    Macro means are over the `expected` class ids (default: all); when one of them is absent from `labels` (a
    bootstrap resample without its patients) they are NaN, so intervals never mix averages over different classes."""
    expected = list(range(len(classes))) if expected is None else list(expected)
    predicted = probabilities.argmax(axis=1)
    scores: dict[str, float] = {"accuracy": float(np.mean(predicted == labels))}
    per_class: dict[str, list[float]] = {"auc": [], "f1": [], "precision": [], "recall": []}
    for index, name in enumerate(classes):
        truth, guess = labels == index, predicted == index
        tp, fp, fn = int(np.sum(truth & guess)), int(np.sum(~truth & guess)), int(np.sum(truth & ~guess))
        values = {"auc": roc_auc(truth.astype(int), probabilities[:, index]),
                  "precision": (tp / (tp + fp) if tp + fp else 0.0) if tp + fn else float("nan"),
                  "recall": tp / (tp + fn) if tp + fn else float("nan"),
                  "f1": 2 * tp / (2 * tp + fp + fn) if tp + fn else float("nan")}
        for metric, value in values.items():
            scores[f"{metric}_{name}"] = value
            if index in expected:
                per_class[metric].append(value)
    complete = all(np.any(labels == index) for index in expected)
    scores["balanced_accuracy"] = float(np.mean(per_class["recall"])) if complete else float("nan")
    for metric, values in per_class.items():
        scores[metric] = float(np.mean(values)) if complete else float("nan")
    return scores
