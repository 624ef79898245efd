"""The generic Trainer: one training loop that every GAN family (SRGAN, DCGAN, WGAN-GP, ...) plugs into.

The Trainer owns everything that is the same for all GANs: the distribution strategy, mixed
precision and XLA switches, checkpoints and resume, the NaN guard, per-epoch validation, CSV and
TensorBoard logs, best-model export, early stopping, reduce-on-plateau, the stop file and the
epoch-change tiles. A family owns its models, data and train steps (see `families.base.GANFamily`; the Trainer finds it in the
FAMILIES registry by `[model] task`).
"""

from __future__ import annotations

import contextlib
import csv
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import keras
import tensorflow as tf

from ..config.loader import Config, start_output_folder
from ..errors import UserError
from ..core.devices import quiet_compilation
from ..core.io import atomic_write_text, check_writable_folder, keep_aside
from ..core.logs import get_logger
from ..models.io import snapshot_folder
from ..registry import FAMILIES
from ..visual.plots import plot_history, write_contact_sheet
from ..visual.report import write_command_report
from .collapse import CollapseMonitor

log = get_logger("train")
STOP_FILE = "STOP"


class TrainingDiverged(UserError):
    """A loss became NaN/Inf; the last good checkpoint is kept."""


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes files; other multi-worker processes save checkpoints to a scratch folder."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


RUN_OUTPUTS = ("models", "train_metrics.csv", "epoch_tiles", "checkpoints")


def holds_run(folder: Path) -> bool:
    """Whether a run folder already holds a training run's outputs."""
    return any((folder / name).exists() for name in RUN_OUTPUTS)


def checkpoint_paths(folder: Path) -> list[str]:
    """The checkpoint prefixes (`folder/ckpt-<step>`) found from the files themselves, oldest first.

    Read from the `.index` files rather than the `checkpoint` state file, so a missing, empty or garbled
    state file cannot hide checkpoints that are intact.
    """
    steps = []
    for index in folder.glob("ckpt-*.index"):
        number = index.name[len("ckpt-"):-len(".index")]
        if number.isdigit():
            steps.append(int(number))
    return [str(folder / f"ckpt-{step}") for step in sorted(steps)]


def repair_checkpoint_state(folder: Path) -> None:
    """Rewrite the CheckpointManager's `checkpoint` state file when it does not list the checkpoint files on disk.

    The manager reads the list of its checkpoints (and which to delete past keep_checkpoints) from that file;
    when it is missing, empty or garbled, the manager would forget intact checkpoints or fail to start.
    """
    paths = checkpoint_paths(folder)
    if not paths:
        return
    state_file = folder / "checkpoint"
    try:
        state = tf.train.get_checkpoint_state(str(folder))
        listed = [str(folder / Path(p).name) for p in state.all_model_checkpoint_paths] if state is not None else []
    except ValueError:  # an empty state file: "Invalid checkpoint state"
        listed = []
    if listed and set(listed) <= set(paths) and listed[-1] == paths[-1]:
        return
    stamps = [Path(p + ".index").stat().st_mtime for p in paths]
    lines = [f'model_checkpoint_path: "{Path(paths[-1]).name}"']
    lines += [f'all_model_checkpoint_paths: "{Path(p).name}"' for p in paths]
    lines += [f"all_model_checkpoint_timestamps: {stamp!r}" for stamp in stamps]
    lines.append(f"last_preserved_timestamp: {min(stamps) - 1.0!r}")
    atomic_write_text(state_file, "\n".join(lines) + "\n")
    log.warning("Checkpoint state file %s was missing or unreadable; rebuilt it from %d checkpoint files.", state_file, len(paths))


def configure_devices() -> None:
    """Let TensorFlow grow GPU memory as needed instead of grabbing it all (no-op on CPU)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised: growth can only be set before first use


class Trainer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.output_dir: Path = config.train.output_dir
        configure_devices()
        keras.mixed_precision.set_global_policy("mixed_float16" if config.train.mixed_precision else "float32")
        self.strategy = make_strategy(config.train.strategy)
        if config.train.jit_compile and self.strategy.num_replicas_in_sync > 1:
            # One XLA cluster cannot reach the other replicas' variables; Keras turns XLA off under tf.distribute too.
            raise config.error("train", "jit_compile", f"XLA works on one replica; strategy = \"{config.train.strategy}\" "
                               f"has {self.strategy.num_replicas_in_sync}. Set jit_compile = false, or train on one device")
        family = FAMILIES.get(config.model.task, f"{config.path}: [model] task")
        if not family.trained_by_loop:
            raise config.error("model", "task", "a study runs its own training (`mammogan train`), not the Trainer loop")
        family.check(config, "train")
        self.task = family(config, self.strategy)
        self.is_chief = is_chief(self.strategy)
        resolver = getattr(self.strategy, "cluster_resolver", None)
        worker = resolver.task_id if resolver is not None and resolver.task_type else 0
        self.checkpoint_dir = self.output_dir / "checkpoints" if self.is_chief else self.output_dir / ".worker_checkpoints" / str(worker)
        self.monitor = CollapseMonitor(config)

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint(self) -> tuple[tf.train.Checkpoint, tf.train.CheckpointManager]:
        checkpoint = tf.train.Checkpoint(step=self.step, epoch=self.epoch, best=self.best, stale=self.stale,
                                         **self.monitor.variables(), **self.task.checkpoint_objects())
        repair_checkpoint_state(self.checkpoint_dir)
        manager = tf.train.CheckpointManager(checkpoint, self.checkpoint_dir, max_to_keep=self.config.train.keep_checkpoints)
        return checkpoint, manager

    def _restore(self, checkpoint: tf.train.Checkpoint) -> None:
        """Restore the newest readable checkpoint file; a corrupt one falls back to the previous with a warning."""
        paths = checkpoint_paths(self.checkpoint_dir)
        for path in reversed(paths):
            try:
                checkpoint.restore(path).assert_existing_objects_matched()
                log.info("Resumed from %s (step %d, epoch %d).", path, int(self.step.numpy()), int(self.epoch.numpy()))
                return
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as error:
                log.warning("Checkpoint %s is unreadable (%s); trying the previous one.", path, str(error).splitlines()[0])
        if paths:
            raise UserError(f"{self.checkpoint_dir}: no readable checkpoint; use --restart to start over "
                            "(the run is then kept under a timestamped name).")

    def _roll_back(self, checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager, good_step: int) -> None:
        """Restore the checkpoint saved at `good_step` and go on with the learning rates × lr_decay_factor."""
        path = next((p for p in manager.checkpoints if p.endswith(f"ckpt-{good_step}")), None)
        if path is None:
            raise UserError(f"{self.checkpoint_dir}: the checkpoint of step {good_step} (before the collapse) was already "
                            "deleted; raise [train] keep_checkpoints.")
        # Earlier learning-rate reductions and the rollback count survive the restore.
        kept = [(variable, variable.numpy()) for variable in self.task.learning_rate_variables()]
        kept.append((self.monitor.variables()["collapse_rollbacks"], self.monitor.rollbacks))
        checkpoint.restore(path).assert_existing_objects_matched()
        for variable, value in kept:
            variable.assign(value)
        self.task.reduce_learning_rate(self.config.train.lr_decay_factor)
        log.warning("Collapse monitor: rolled back to %s (step %d, epoch %d); rollback %d of %d.", path,
                    int(self.step.numpy()), int(self.epoch.numpy()), self.monitor.rollbacks, self.monitor.max_rollbacks)

    # ---------------------------------------------------------------- loop
    def _protect_previous_run(self, resume: bool) -> None:
        """Never overwrite a run: resume it, or with --restart move it aside first; refuse a run that cannot resume."""
        if not self.is_chief or not holds_run(self.output_dir):
            return
        if not resume:
            keep_aside(self.output_dir)
        elif not checkpoint_paths(self.checkpoint_dir):
            raise UserError(f"{self.output_dir} ([train] output_dir) holds a run with no checkpoint to resume from; training "
                            "would overwrite its models and metrics. Use --restart to keep it under a timestamped name "
                            "and start over, or set another output_dir.")

    def fit(self, resume: bool = True) -> dict[str, float]:
        cfg = self.config.train
        self._protect_previous_run(resume)
        if self.is_chief:
            start_output_folder(self.config, "train", "train.log")
        else:  # other workers only write scratch checkpoints there
            check_writable_folder(self.output_dir, f"{self.config.path}: [train] output_dir")
        keras.utils.set_random_seed(cfg.seed)
        with self.strategy.scope():
            self.task.build()
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.best = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best")
            self.stale = tf.Variable(0, dtype=tf.int64, trainable=False, name="stale_epochs")
        checkpoint, manager = self._checkpoint()
        if resume:
            self._restore(checkpoint)
        if int(self.step.numpy()) == 0:
            if self.is_chief:
                self.task.export(self.output_dir / "models" / "initial")  # the step-0 baseline for evaluation
            self._validate_and_record(epoch=0, losses={}, elapsed=0.0, images_per_s=0.0)
        while self._train_phases(checkpoint, manager):
            pass  # the collapse monitor restored an earlier checkpoint: run the phases again from its step
        return self._finish()

    def _train_phases(self, checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager) -> bool:
        """Train from the current step to the end; True when the collapse monitor rolled back (train again)."""
        cfg = self.config.train
        total = sum(steps for _, steps in self.task.phases)
        step = int(self.step.numpy())
        stop_file = self.output_dir / STOP_FILE
        for phase, phase_start, phase_end in self._phase_ranges():
            if step >= phase_end:
                continue
            log.info("Phase %s: steps %d-%d of %d.", phase, max(step, phase_start) + 1, phase_end, total)
            first = step == phase_start
            if first and phase_start > 0:  # best model and early stopping are judged within a phase
                self.best.assign(math.inf)
                self.stale.assign(0)
            self.task.start_phase(phase, first=first)
            batches = iter(self.strategy.experimental_distribute_dataset(self.task.train_dataset(step)))
            train_step = self._compiled_step(phase)
            sums: dict[str, float] = {}
            count, started = 0, time.perf_counter()
            while step < phase_end:
                with quiet_compilation() if count == 0 else contextlib.nullcontext():  # an epoch's first step (the very first compiles)
                    losses = train_step(next(batches), tf.constant(step, tf.int64))
                step += 1
                self.step.assign(step)
                values = {k: float(v) for k, v in losses.items()}
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(
                        f"Training diverged at step {step}: loss {bad[0]} = {values[bad[0]]}. The last good checkpoint "
                        f"in {self.output_dir / 'checkpoints'} is kept; lower the learning rate or enable label smoothing.")
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if step % cfg.steps_per_epoch == 0 or step == phase_end:
                    elapsed = time.perf_counter() - started
                    rate = count * self.task.images_per_step / max(elapsed, 1e-9)
                    self.epoch.assign_add(1)
                    epoch = int(self.epoch.numpy())
                    means = {f"{phase}/{k}": v / count for k, v in sums.items()}
                    eta = (total - step) / max(count / max(elapsed, 1e-9), 1e-9)
                    log.info("epoch %d  step %d/%d  %s  %.1f img/s  ETA %s", epoch, step, total,
                             "  ".join(f"{k.split('/')[1]}={v:.4g}" for k, v in means.items()), rate, _duration(eta))
                    improved, stop = self._validate_and_record(epoch, means, elapsed, rate)
                    good_step = self.monitor.decide(epoch, step)  # first: its new state goes into this checkpoint
                    manager.save(checkpoint_number=step)
                    if good_step is not None:
                        self._roll_back(checkpoint, manager, good_step)
                        return True
                    sums, count, started = {}, 0, time.perf_counter()
                    if stop_file.exists():
                        log.info("Found %s: stopping cleanly after step %d.", stop_file, step)
                        return False
                    if stop and phase_end == total:
                        return False
                    if stop:
                        log.info("Early stopping ends phase %s at step %d; the next phase starts at step %d.", phase, step, phase_end)
                        step = phase_end
                        self.step.assign(step)
                        manager.save(checkpoint_number=step)
        return False

    def _phase_ranges(self) -> list[tuple[str, int, int]]:
        ranges, start = [], 0
        for name, steps in self.task.phases:
            ranges.append((name, start, start + steps))
            start += steps
        return ranges

    def _compiled_step(self, phase: str):
        return self.compile_step(self.task.train_step(phase), phase)

    def compile_step(self, step_fn: Callable, phase: str | None) -> Callable:
        """`step_fn(batch, step)` on every replica, losses summed, then the task's `after_step(phase)` (skipped
        for None), as one tf.function under the [train] jit_compile switch (benchmarks/bench_gan.py reuses it)."""
        strategy, task = self.strategy, self.task

        def seeded(batch, step):  # each replica's step draws its random numbers from (seed, step, replica)
            task.begin_step(step)
            return step_fn(batch, step)

        def distributed(batch, step):
            per_replica = strategy.run(seeded, args=(batch, step))
            losses = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
            if phase is not None:
                task.after_step(phase)
            return losses

        return tf.function(distributed, jit_compile=self.config.train.jit_compile or None, reduce_retracing=True)

    # ---------------------------------------------------------------- epochs
    def _validate_and_record(self, epoch: int, losses: dict[str, float], elapsed: float, images_per_s: float) -> tuple[bool, bool]:
        """Validation, logs, tiles, best model, plateau and early stopping; returns (improved, stop)."""
        cfg = self.config.train
        metrics = self.task.validate()
        row = {"epoch": epoch, "step": int(self.step.numpy()), "seconds": round(elapsed, 3),
               "images_per_s": round(images_per_s, 2), **losses, **metrics, **self.task.epoch_stats(),
               **self.monitor.measure(self.task.collapse_probe() if self.monitor.enabled else None)}
        if self.is_chief:  # every worker validates (same weights, same decisions); one writes
            self._append_csv(row)
            self._tensorboard(row)
            self.task.write_tile(self.output_dir / "epoch_tiles" / f"epoch_{epoch:04d}.png", epoch, metrics)
            write_command_report(self.config, self.output_dir, "training")
            if cfg.snapshot_every and epoch > 0 and epoch % cfg.snapshot_every == 0:
                self.task.export(snapshot_folder(self.output_dir, int(self.step.numpy())))
        monitored = metrics[self.task.monitor]
        value = monitored if self.task.monitor_mode == "min" else -monitored
        improved = value < float(self.best.numpy())
        if improved:
            self.best.assign(value)
            self.stale.assign(0)
            if self.is_chief and cfg.keep_best:
                self.task.export(self.output_dir / "models" / "best")
            log.info("  validation %s = %.4f (best so far%s)", self.task.monitor, monitored,
                     "; saved models/best" if cfg.keep_best else "")
        elif epoch > 0:
            self.stale.assign_add(1)
            best = float(self.best.numpy())
            log.info("  validation %s = %.4f (best %.4f)", self.task.monitor, monitored, best if self.task.monitor_mode == "min" else -best)
        stale = int(self.stale.numpy())
        if cfg.plateau_patience and stale and stale % cfg.plateau_patience == 0:
            log.info("  plateau: no improvement of %s for %d epochs.", self.task.monitor, stale)
            self.task.reduce_learning_rate(cfg.lr_decay_factor)
        stop = bool(cfg.early_stopping_patience and stale >= cfg.early_stopping_patience)
        if stop:
            log.info("Early stopping: no improvement of %s for %d epochs.", self.task.monitor, stale)
        return improved, stop

    def _append_csv(self, row: dict[str, Any]) -> None:
        path = self.output_dir / "train_metrics.csv"
        rows = []
        if path.exists():
            with path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) < row["epoch"]]
        rows.append({k: v for k, v in row.items()})
        columns: list[str] = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
        lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
        atomic_write_text(path, "\n".join(lines) + "\n")
        plot_history(path, self.output_dir / "train_metrics.png")

    def _tensorboard(self, row: dict[str, Any]) -> None:
        if not hasattr(self, "_writer"):
            self._writer = tf.summary.create_file_writer(str(self.output_dir / "tensorboard"))
        with self._writer.as_default(step=row["step"]):
            for key, value in row.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)):
                    tf.summary.scalar(key, value)
        self._writer.flush()

    def _finish(self) -> dict[str, float]:
        if not self.is_chief:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            return {"step": float(self.step.numpy())}
        self.task.export(self.output_dir / "models" / "final")
        sheet = write_contact_sheet(sorted((self.output_dir / "epoch_tiles").glob("epoch_*.png")), self.output_dir / "epoch_tiles.gif")
        report = write_command_report(self.config, self.output_dir, "training")
        log.info("Training finished at step %d. Run folder: %s", int(self.step.numpy()), self.output_dir)
        log.info("  report: %s", report)
        log.info("  metrics: %s  tiles: %s  models: %s", self.output_dir / "train_metrics.csv", sheet or self.output_dir / "epoch_tiles",
                 self.output_dir / "models")
        return {"step": float(self.step.numpy())}


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

