"""Optimizers and learning-rate schedules, registered by name."""

from __future__ import annotations

import keras

from ..config.loader import Config
from ..registry import OPTIMIZERS, SCHEDULES


@SCHEDULES.register("constant")
def constant_schedule(learning_rate: float, config: Config) -> float:
    return learning_rate


@SCHEDULES.register("piecewise")
def piecewise_schedule(learning_rate: float, config: Config) -> keras.optimizers.schedules.LearningRateSchedule:
    """Multiply the rate by `lr_decay_factor` at each step in `lr_decay_steps` (as in SRGAN/ESRGAN)."""
    boundaries = sorted(config.train.lr_decay_steps)
    if not boundaries:
        raise config.error("train", "lr_decay_steps", "the 'piecewise' schedule needs at least one boundary step")
    values = [learning_rate * config.train.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


@SCHEDULES.register("cosine")
def cosine_schedule(learning_rate: float, config: Config) -> keras.optimizers.schedules.LearningRateSchedule:
    steps = max(config.train.pretrain_steps + config.train.gan_steps, 1)
    return keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01)


@keras.saving.register_keras_serializable(package="mammogan")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The rate held for the first half of `steps`, then falling linearly to 0 at the last step (CycleGAN's)."""

    def __init__(self, learning_rate: float, steps: int) -> None:
        self.learning_rate = learning_rate
        self.steps = steps

    def __call__(self, step):
        half = self.steps / 2.0
        remaining = (self.steps - keras.ops.cast(step, "float32")) / max(self.steps - half, 1.0)
        return self.learning_rate * keras.ops.clip(remaining, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "steps": self.steps}


@SCHEDULES.register("linear_decay")
def linear_decay_schedule(learning_rate: float, config: Config) -> keras.optimizers.schedules.LearningRateSchedule:
    return LinearDecay(learning_rate, max(config.train.pretrain_steps + config.train.gan_steps, 1))


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule times a factor variable: reduce-on-plateau and collapse rollbacks lower a scheduled rate through it."""

    def __init__(self, schedule: keras.optimizers.schedules.LearningRateSchedule) -> None:
        self.schedule = schedule
        self.factor = keras.Variable(1.0, trainable=False, name="lr_factor")

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self) -> dict:
        return {"schedule": keras.saving.serialize_keras_object(self.schedule)}


def reducible_rate(optimizer: keras.optimizers.Optimizer) -> keras.Variable:
    """The variable that scales `optimizer`'s learning rate: the rate itself, or its schedule's factor."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner._learning_rate  # Keras keeps the schedule object only here; `learning_rate` is its current value
    return rate.factor if isinstance(rate, ScaledSchedule) else rate


@OPTIMIZERS.register("adam")
def adam(learning_rate, config: Config) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate, beta_1=config.train.beta_1, beta_2=config.train.beta_2, epsilon=config.train.epsilon)


@OPTIMIZERS.register("adamw")
def adamw(learning_rate, config: Config) -> keras.optimizers.Optimizer:
    return keras.optimizers.AdamW(learning_rate, beta_1=config.train.beta_1, beta_2=config.train.beta_2, epsilon=config.train.epsilon)


@OPTIMIZERS.register("sgd")
def sgd(learning_rate, config: Config) -> keras.optimizers.Optimizer:
    """Plain SGD with momentum beta_1 (0 gives updates proportional to the gradient)."""
    return keras.optimizers.SGD(learning_rate, momentum=config.train.beta_1)


@OPTIMIZERS.register("rmsprop")
def rmsprop(learning_rate, config: Config) -> keras.optimizers.Optimizer:
    return keras.optimizers.RMSprop(learning_rate, epsilon=config.train.epsilon)


def build_optimizer(config: Config, learning_rate: float) -> keras.optimizers.Optimizer:
    """The configured optimizer with the configured schedule; wrapped for loss scaling in mixed precision."""
    schedule = SCHEDULES.get(config.train.lr_schedule)(learning_rate, config)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        schedule = ScaledSchedule(schedule)
    optimizer = OPTIMIZERS.get(config.train.optimizer)(schedule, config)
    if config.train.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
