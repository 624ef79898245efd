"""Confidence intervals of the utility study: a patient-level bootstrap and paired differences between arms.

Patches of one patient are not independent (a lesion gives patches at two zooms, a film gives several normal
patches, and a patient has two films), so a resample draws patients with replacement and takes all their
patches. Every arm is scored on the same resamples, which makes the differences to the baseline paired: the
spread of a difference excludes the variation between test patients that both arms share.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

Scorer = Callable[[np.ndarray, np.ndarray], dict[str, float]]  # (labels (N,), probabilities (N, C)) -> scores


def patient_resamples(patients: Sequence[str], count: int, seed: int) -> list[np.ndarray]:
    """`count` bootstrap resamples of row indices: each draws as many patients as there are, with replacement,
    and takes every row of each drawn patient."""
    rows: dict[str, list[int]] = {}
    for index, patient in enumerate(patients):
        rows.setdefault(patient, []).append(index)
    members = [np.asarray(indices) for indices in rows.values()]
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[pick] for pick in rng.integers(0, len(members), len(members))]) for _ in range(count)]


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap values (NaN resamples, e.g. without a class, left out)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no difference": twice the smaller share of resampled differences at or
    beyond 0 on either side, each counted with the +1 of a finite resample count ((k + 1) / (R + 1)), at most 1."""
    finite = np.asarray(differences, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    if not len(finite):
        return float("nan")
    below, above = int(np.sum(finite <= 0)), int(np.sum(finite >= 0))
    return float(min(1.0, 2 * (min(below, above) + 1) / (len(finite) + 1)))


def seed_mean_scores(labels: np.ndarray, seed_probabilities: Sequence[np.ndarray], scorer: Scorer,
                     rows: np.ndarray | None = None) -> dict[str, float]:
    """The scores of each seed's predictions (on `rows`, default all), averaged over the seeds."""
    chosen = slice(None) if rows is None else rows
    per_seed = [scorer(labels[chosen], probabilities[chosen]) for probabilities in seed_probabilities]
    return {metric: float(np.nanmean([scores[metric] for scores in per_seed])) if any(
        not np.isnan(scores[metric]) for scores in per_seed) else float("nan") for metric in per_seed[0]}


def compare_arms(labels: np.ndarray, arms: Mapping[str, Sequence[np.ndarray]], baseline: str, scorer: Scorer,
                 resamples: Sequence[np.ndarray], level: float = 0.95) -> dict[str, dict[str, float]]:
    """Per arm and metric: the seed-mean score, its percentile interval over `resamples`, and the paired difference
    to `baseline` with its interval and bootstrap p-value (keys `<m>`, `<m>_low`, `<m>_high`, `<m>_diff`,
    `<m>_diff_low`, `<m>_diff_high`, `<m>_p`; NaN differences for the baseline itself)."""
    point = {arm: seed_mean_scores(labels, runs, scorer) for arm, runs in arms.items()}
    metrics = list(point[baseline])
    boot = {arm: np.array([[scores[m] for m in metrics] for scores in
                           (seed_mean_scores(labels, runs, scorer, rows) for rows in resamples)]).reshape(len(resamples), len(metrics))
            for arm, runs in arms.items()}
    table: dict[str, dict[str, float]] = {}
    for arm in arms:
        row: dict[str, float] = {}
        for column, metric in enumerate(metrics):
            row[metric] = point[arm][metric]
            row[f"{metric}_low"], row[f"{metric}_high"] = percentile_interval(boot[arm][:, column], level)
            differences = boot[arm][:, column] - boot[baseline][:, column]
            same = arm == baseline
            row[f"{metric}_diff"] = float("nan") if same else point[arm][metric] - point[baseline][metric]
            row[f"{metric}_diff_low"], row[f"{metric}_diff_high"] = (float("nan"),) * 2 if same else percentile_interval(differences, level)
            row[f"{metric}_p"] = float("nan") if same else bootstrap_p_value(differences)
        table[arm] = row
    return table
