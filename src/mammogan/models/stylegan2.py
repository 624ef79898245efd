"""A StyleGAN2-like generator (Karras et al., CVPR 2020) for synthetic patches, unconditional or class-conditional.

A mapping network turns the latent (joined with a class embedding when conditional) into a style w; a
learned 4×4 constant is then refined resolution by resolution by modulated / demodulated 3×3 convolutions,
each followed by per-pixel noise with a learned strength, and every resolution adds its modulated 1×1
output to the bilinearly upsampled image of the one below ("skip" architecture). Upsampling is bilinear:
no checkerboard. The noise is a stateless function of the latent (see `NoiseInjection`), so a latent always
gives the same image (the fixed-latent tiles and `infer`'s seeds stay reproducible).
The output is squashed by tanh to the [-1, 1] range every family samples in.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..registry import GENERATORS
from .conditional import _class_count, _embedding


@keras.saving.register_keras_serializable(package="mammogan")
class ModulatedConv2D(keras.layers.Layer):
    """conv(x · s) · d + b with the style s = A(w) per input channel and, when `demodulate`, d = 1/‖W·s‖ per output
    channel and example (the unfused form of StyleGAN2's weight demodulation: exact, and a plain convolution)."""

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.demodulate = demodulate

    def build(self, input_shape) -> None:
        image_shape, style_shape = input_shape
        channels = int(image_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, self.kernel_size, channels, self.filters),
                                      initializer=keras.initializers.HeNormal())
        self.style = keras.layers.Dense(channels, bias_initializer="ones", name="style")
        self.style.build(style_shape)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        image, w = inputs
        style = keras.ops.cast(self.style(w), image.dtype)
        kernel = keras.ops.cast(self.kernel, image.dtype)
        out = keras.ops.conv(image * style[:, None, None, :], kernel, padding="same")
        if self.demodulate:
            energy = keras.ops.matmul(keras.ops.square(style), keras.ops.sum(keras.ops.square(kernel), axis=(0, 1)))
            out = out * keras.ops.rsqrt(energy + 1e-8)[:, None, None, :]
        return out + keras.ops.cast(self.bias, image.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "demodulate": self.demodulate}


@keras.saving.register_keras_serializable(package="mammogan")
class NoiseInjection(keras.layers.Layer):
    """x + strength · noise, one learned strength per channel (0 at init) and one noise map per example.

    The map is stateless: seeded by the bits of the example's first two latent values and the layer's `seed`, so
    training draws new noise with every new latent, a resumed run replays it, and a latent gives the same
    image in any batch (no random state to checkpoint or to synchronise between replicas).
    """

    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape) -> None:
        self.strength = self.add_weight(name="strength", shape=(int(input_shape[0][-1]),), initializer="zeros")

    def call(self, inputs):
        x, latent = inputs
        bits = tf.bitcast(tf.cast(latent[:, :2], tf.float32), tf.int32)
        seeds = tf.stack([tf.bitwise.bitwise_xor(bits[:, 0], self.seed), bits[:, 1]], axis=1)
        shape = tf.shape(x)
        noise = tf.map_fn(lambda seed: tf.random.stateless_normal((shape[1], shape[2], 1), seed, dtype=tf.float32),
                          seeds, fn_output_signature=tf.float32)
        return x + tf.cast(noise, x.dtype) * tf.cast(self.strength, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="mammogan")
class LearnedConstant(keras.layers.Layer):
    """The synthesis network's 4×4 starting map, repeated over the batch of styles."""

    def __init__(self, channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels = channels

    def build(self, input_shape) -> None:
        self.constant = self.add_weight(name="constant", shape=(1, 4, 4, self.channels), initializer="random_normal")

    def call(self, w):
        return keras.ops.tile(keras.ops.cast(self.constant, w.dtype), (keras.ops.shape(w)[0], 1, 1, 1))

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}


def _mapping(code, latent_dim: int, layers: int):
    """Pixel-normalised code → `layers` dense layers (leaky ReLU) → w."""
    x = keras.layers.UnitNormalization(name="pixel_norm")(code)
    x = keras.layers.Rescaling(float(np.sqrt(code.shape[-1])), name="pixel_norm_scale")(x)
    for index in range(layers):
        x = keras.layers.LeakyReLU(0.2, name=f"mapping{index}_act")(keras.layers.Dense(latent_dim, name=f"mapping{index}")(x))
    return x


def _synthesis(w, latent, image_size: int, filters: int):
    steps = (image_size // 4).bit_length() - 1
    if image_size < 8 or 4 << steps != image_size:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")

    def width(resolution_index: int) -> int:  # widest at 4×4, halving towards the image, at least 16
        return max(16, filters * min(2 ** (steps - resolution_index), 8))

    x = LearnedConstant(width(0), name="constant")(w)
    image = None
    for level in range(steps + 1):
        side = 4 << level
        if level:
            x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"r{side}_up")(x)
        for conv in range(2):
            x = ModulatedConv2D(width(level), name=f"r{side}_conv{conv}")([x, w])
            x = NoiseInjection(seed=level * 2 + conv, name=f"r{side}_noise{conv}")([x, latent])
            x = keras.layers.LeakyReLU(0.2, name=f"r{side}_act{conv}")(x)
        rgb = ModulatedConv2D(1, 1, demodulate=False, name=f"r{side}_to_image", dtype="float32")([x, w])
        image = rgb if image is None else keras.layers.Add(name=f"r{side}_skip", dtype="float32")(
            [keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"r{side}_image_up", dtype="float32")(image), rgb])
    return keras.layers.Activation("tanh", name="tanh", dtype="float32")(image)


@GENERATORS.register("stylegan2")
def build_stylegan2_generator(image_size: int = 64, latent_dim: int = 128, filters: int = 32, mapping_layers: int = 4) -> keras.Model:
    """Unconditional StyleGAN2-like generator: latent → w → image in [-1, 1]."""
    latent = keras.Input((latent_dim,), name="latent")
    w = _mapping(latent, latent_dim, mapping_layers)
    return keras.Model(latent, _synthesis(w, latent, image_size, filters), name="stylegan2_generator")


@GENERATORS.register("conditional_stylegan2")
def build_conditional_stylegan2_generator(image_size: int = 64, latent_dim: int = 128, filters: int = 32,
                                          mapping_layers: int = 4, classes: list[str] | None = None) -> keras.Model:
    """Class-conditional StyleGAN2-like generator: [latent, class id] → w (mapping of the latent joined with a learned
    class embedding, as StyleGAN2-ADA conditions) → image in [-1, 1]."""
    count = _class_count(classes)
    latent = keras.Input((latent_dim,), name="latent")
    labels = keras.Input((1,), dtype="int32", name="class_id")
    code = keras.layers.Concatenate(name="latent_and_class")([latent, _embedding(count, latent_dim, "class_embedding", labels)])
    w = _mapping(code, latent_dim, mapping_layers)
    return keras.Model([latent, labels], _synthesis(w, latent, image_size, filters), name="conditional_stylegan2_generator")
