"""Mode-collapse / divergence monitor used by the generic Trainer.

Each epoch it measures how different the generated validation samples are from each other
(mean pairwise RMS distance, relative to the real images'), the fraction of near-constant or
near-black samples, and the discriminator's accuracy on real images. An epoch is flagged when
diversity drops below `[train] collapse_diversity` or D's real accuracy leaves `collapse_d_accuracy`;
after `collapse_patience` flagged epochs in a row it warns and, with `collapse_rollback`, names the
last checkpoint saved at an unflagged epoch so the Trainer can restore it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..errors import UserError
from ..core.logs import get_logger

log = get_logger("train")

CONSTANT_STD = 0.01  # a sample whose pixel std (in [0, 1]) is below this is flat
BLACK_MEAN = 0.02  # ... or whose mean is below this is black


class TrainingCollapsed(UserError):
    """The collapse monitor fired more often than `[train] collapse_max_rollbacks` allows."""


def mean_pairwise_distance(images: np.ndarray) -> float:
    """Mean over pairs of the RMS per-pixel difference of two images ((N, ...) in [0, 1], N ≥ 2)."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    squares = np.sum(flat**2, axis=1)
    distances = np.maximum(squares[:, None] + squares[None, :] - 2.0 * flat @ flat.T, 0.0)
    upper = np.triu_indices(len(flat), k=1)
    return float(np.mean(np.sqrt(distances[upper] / flat.shape[1])))


def constant_fraction(images: np.ndarray) -> float:
    """Fraction of samples that are flat (std < CONSTANT_STD) or black (mean < BLACK_MEAN)."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    return float(np.mean((flat.std(axis=1) < CONSTANT_STD) | (flat.mean(axis=1) < BLACK_MEAN)))


class CollapseMonitor:
    """Per-epoch collapse statistics, the flagged-epoch streak and the steps of checkpoints saved before it."""

    def __init__(self, config: Config) -> None:
        cfg = config.train
        self.min_diversity = cfg.collapse_diversity
        if cfg.collapse_d_accuracy[0] > cfg.collapse_d_accuracy[1]:  # a pair: the schema checks its length
            raise config.error("train", "collapse_d_accuracy", "expected a [low, high] band with low <= high")
        self.low, self.high = cfg.collapse_d_accuracy
        self.patience = cfg.collapse_patience
        self.rollback = cfg.collapse_rollback
        self.max_rollbacks = cfg.collapse_max_rollbacks
        self.enabled = self.min_diversity > 0 or (self.low, self.high) != (0.0, 1.0)
        if self.enabled and self.rollback and cfg.keep_checkpoints <= self.patience:
            raise config.error("train", "keep_checkpoints", f"must exceed [train] collapse_patience = {self.patience} so "
                               "that the checkpoint before a collapse is still kept when the monitor rolls back")
        self.real_diversity: float | None = None
        self.reasons: list[str] = []
        # Checkpointed (see `variables`), so a resumed run continues the streak and the rollback count.
        self._streak = tf.Variable(0, dtype=tf.int64, trainable=False, name="collapse_streak")
        self._last_good_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="collapse_last_good_step")
        self._rollbacks = tf.Variable(0, dtype=tf.int64, trainable=False, name="collapse_rollbacks")

    @property
    def rollbacks(self) -> int:
        return int(self._rollbacks.numpy())

    def variables(self) -> dict[str, tf.Variable]:
        """The monitor's state for the run's checkpoints."""
        return {"collapse_streak": self._streak, "collapse_last_good_step": self._last_good_step,
                "collapse_rollbacks": self._rollbacks}

    def measure(self, probe: dict[str, Any] | None) -> dict[str, float]:
        """This epoch's monitor values (CSV columns); remembers why the epoch is flagged, if it is."""
        self.reasons = []
        if not self.enabled or probe is None:
            return {}
        if self.real_diversity is None:  # the real validation images never change
            self.real_diversity = mean_pairwise_distance(probe["real"])
        diversity = mean_pairwise_distance(probe["fake"])
        ratio = diversity / max(self.real_diversity, 1e-12)
        accuracy = float(probe["d_real_accuracy"])
        if ratio < self.min_diversity:
            self.reasons.append(f"sample diversity {ratio:.4g} of the real images' (below collapse_diversity = {self.min_diversity:g})")
        if not self.low <= accuracy <= self.high:
            self.reasons.append(f"D accuracy on real images {accuracy:.3g} (outside collapse_d_accuracy = [{self.low:g}, {self.high:g}])")
        return {"monitor/diversity": diversity, "monitor/diversity_ratio": ratio,
                "monitor/constant_fraction": constant_fraction(probe["fake"]), "monitor/d_real_accuracy": accuracy,
                "monitor/rollbacks": self.rollbacks}

    def decide(self, epoch: int, step: int) -> int | None:
        """Called before the epoch's checkpoint (number = step) is saved: the step to roll back to, or None to go on."""
        if not self.reasons:
            self._streak.assign(0)
            self._last_good_step.assign(step)
            return None
        self._streak.assign_add(1)
        streak = int(self._streak.numpy())
        log.warning("Collapse monitor: epoch %d (step %d) flagged (%d of %d in a row): %s.", epoch, step, streak,
                    self.patience, "; ".join(self.reasons))
        if streak < self.patience or not self.rollback:
            return None
        if self.rollbacks >= self.max_rollbacks:
            raise TrainingCollapsed(f"Training collapsed at epoch {epoch} (step {step}): {'; '.join(self.reasons)}, after "
                                    f"{self.rollbacks} rollback(s) ([train] collapse_max_rollbacks = {self.max_rollbacks}). "
                                    "Lower the learning rates, enable diffaugment/ada_target or label smoothing.")
        good_step = int(self._last_good_step.numpy())
        if good_step < 0:
            raise TrainingCollapsed(f"Training collapsed at epoch {epoch} (step {step}): {'; '.join(self.reasons)}, and no "
                                    "checkpoint of this run was saved before the collapse began.")
        self._rollbacks.assign_add(1)
        self._streak.assign(0)
        return good_step
