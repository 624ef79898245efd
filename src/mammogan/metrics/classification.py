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


def multiclass_scores(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro AUC / F1 / precision / recall of (N, C) class probabilities, with the
    one-vs-rest value of each per class (`auc_<class>`, ...). The prediction is the most probable class; a class never
    predicted has precision 0, a class absent from `labels` has NaN recall and AUC (left out of the macro means)."""
    predicted = probabilities.argmax(axis=1)
    scores: dict[str, float] = {"accuracy": float(np.mean(predicted == labels))}
    per_class: dict[str, list[float]] = {"auc": [], "f1": [], "precision": [], "recall": []}
    for index, name in enumerate(classes):
        truth, guess = labels == index, predicted == index
        tp, fp, fn = int(np.sum(truth & guess)), int(np.sum(~truth & guess)), int(np.sum(truth & ~guess))
        values = {"auc": roc_auc(truth.astype(int), probabilities[:, index]),
                  "precision": tp / (tp + fp) if tp + fp else 0.0,
                  "recall": tp / (tp + fn) if tp + fn else float("nan"),
                  "f1": 2 * tp / (2 * tp + fp + fn) if tp + fn else float("nan")}
        for metric, value in values.items():
            scores[f"{metric}_{name}"] = value
            per_class[metric].append(value)
    scores["balanced_accuracy"] = _nanmean(per_class["recall"])
    for metric, values in per_class.items():
        scores[metric] = _nanmean(values)
    return scores


def _nanmean(values: list[float]) -> float:
    finite = [value for value in values if not np.isnan(value)]
    return float(np.mean(finite)) if finite else float("nan")
