"""Class-conditional GAN networks: a DCGAN generator fed (latent, class id) and an ACGAN/projection discriminator.

Both take the class as an integer id of shape (N, 1), indexing `[model] classes`.
"""

from __future__ import annotations

import keras

from ..registry import DISCRIMINATORS, GENERATORS
from .discriminators import build_dcgan_discriminator
from .gan_generators import dcgan_synthesis
from .layers import dense


def _class_count(classes: list[str] | None) -> int:
    if not classes or len(classes) < 2:
        raise ValueError(f"a conditional GAN needs at least two [model] classes, got {classes!r}")
    return len(classes)


def _embedding(count: int, dim: int, name: str, labels: keras.KerasTensor) -> keras.KerasTensor:
    """(N, 1) class ids → (N, dim) learned vectors."""
    return keras.layers.Flatten(name=f"{name}_flat")(keras.layers.Embedding(count, dim, name=name)(labels))


@GENERATORS.register("conditional_dcgan")
def build_conditional_generator(image_size: int = 64, latent_dim: int = 128, filters: int = 64,
                                classes: list[str] | None = None, upsampling: str = "nearest") -> keras.Model:
    """DCGAN generator on [latent, learned class embedding] (the embedding has the latent's size)."""
    count = _class_count(classes)
    latent = keras.Input((latent_dim,), name="latent")
    labels = keras.Input((1,), dtype="int32", name="class_id")
    code = keras.layers.Concatenate(name="latent_and_class")([latent, _embedding(count, latent_dim, "class_embedding", labels)])
    return keras.Model([latent, labels], dcgan_synthesis(code, image_size, filters, upsampling), name="conditional_dcgan_generator")


@DISCRIMINATORS.register("conditional_dcgan")
def build_conditional_discriminator(image_size: int = 64, d_filters: int = 64, spectral_norm: bool = False,
                                    d_normalization: str = "batch", classes: list[str] | None = None,
                                    projection: bool = True, d_laplacian: bool = False,
                                    d_minibatch_std: bool = False) -> keras.Model:
    """The DCGAN discriminator with class conditioning; outputs `[logits, class_logits, *features]`.

    logits = psi(phi(x)) (+ <embed(y), phi(x)> with `projection`, Miyato & Koyama 2018); class_logits is
    the ACGAN auxiliary head (Odena et al. 2017) over phi(x), trained by `auxiliary_class_loss`.
    """
    count = _class_count(classes)
    base = build_dcgan_discriminator(image_size, d_filters, spectral_norm, d_normalization, d_laplacian, d_minibatch_std)
    image, features = base.inputs[0], base.outputs[1:]
    labels = keras.Input((1,), dtype="int32", name="class_id")
    phi = base.get_layer("flatten").output
    logits = base.outputs[0]
    if projection:
        embedded = _embedding(count, phi.shape[-1], "projection_embedding", labels)
        inner = keras.layers.Dot(axes=1, name="projection", dtype="float32")([embedded, phi])
        logits = keras.layers.Add(name="projected_logits", dtype="float32")([logits, inner])
    class_logits = dense(count, spectral_norm, name="class_logits", dtype="float32")(phi)
    return keras.Model([image, labels], [logits, class_logits, *features], name="conditional_dcgan_discriminator")
