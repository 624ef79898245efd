"""The classifier two-sample test (C2ST; Lopez-Paz & Oquab, ICLR 2017): can a simple classifier tell two sets apart?

An L2-regularised logistic regression on standardised features is trained on k − 1 folds of a balanced
real-vs-other set and scored on the held-out fold. Its held-out accuracy is ≈ 0.5 when the sets come from
one distribution and → 1 as they differ; unlike KID it says how separable the sets are in terms anyone can
read. Implemented in numpy (Newton steps), so no scikit-learn is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class TwoSampleResult:
    accuracy: float  # mean held-out accuracy over the folds
    ci_low: float  # 95 % t-interval of the fold accuracies
    ci_high: float
    folds: tuple[float, ...]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """Weights (with the bias last) of a logistic regression minimising log-loss + l2/2·|w|² (bias not penalised)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ weights, -30, 30)))
        gradient = design.T @ (p - y) + penalty * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return weights


def _predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (np.hstack([x, np.ones((len(x), 1))]) @ weights) > 0


def classifier_two_sample_test(real: np.ndarray, other: np.ndarray, folds: int = 5, seed: int = 0,
                               l2: float = 1.0) -> TwoSampleResult:
    """C2ST accuracy of telling `other` (N, D) from `real` (M, D): balanced by subsampling the larger set, stratified
    folds, features standardised with each training fold's statistics."""
    real, other = np.asarray(real, np.float64), np.asarray(other, np.float64)
    count = min(len(real), len(other))
    if count < folds:
        raise ValueError(f"C2ST needs at least {folds} images per set (one per fold), got {len(real)} and {len(other)}")
    rng = np.random.default_rng(seed)
    sets = [real[rng.permutation(len(real))[:count]], other[rng.permutation(len(other))[:count]]]
    fold_of = [rng.permutation(np.arange(count) % folds) for _ in sets]
    accuracies = []
    for fold in range(folds):
        train_x = np.concatenate([s[f != fold] for s, f in zip(sets, fold_of)])
        train_y = np.concatenate([np.full(int((f != fold).sum()), label) for label, f in enumerate(fold_of)])
        test_x = np.concatenate([s[f == fold] for s, f in zip(sets, fold_of)])
        test_y = np.concatenate([np.full(int((f == fold).sum()), label) for label, f in enumerate(fold_of)])
        mean, scale = train_x.mean(axis=0), train_x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        weights = fit_logistic((train_x - mean) / scale, train_y, l2)
        accuracies.append(float(np.mean(_predict(weights, (test_x - mean) / scale) == test_y)))
    mean_accuracy = float(np.mean(accuracies))
    half = float(stats.t.ppf(0.975, folds - 1) * np.std(accuracies, ddof=1) / np.sqrt(folds)) if folds > 1 else 0.0
    # an accuracy lies in [0, 1]; the t-interval does not know that
    return TwoSampleResult(mean_accuracy, max(0.0, mean_accuracy - half), min(1.0, mean_accuracy + half), tuple(accuracies))
