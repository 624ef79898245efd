"""What every registered component is called, which module registers it and which config keys it reads.

The registries, the config loader and `mammogan config keys` answer from this table, so that checking a
config needs no TensorFlow: a name resolves to its module without importing it, and the loader refuses a
key the chosen components do not read. tests/test_catalog.py checks the table against the registrations
and the builders' signatures; each entry was read off the code that uses the keys.

Standard library only (nothing of mammogan's is imported here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

Keys = Mapping[str, tuple[str, ...]]  # section → keys
Ref = tuple[str, str]  # (kind, name); kind "part" for the commands and the trainer loop


@dataclass(frozen=True)
class When:
    """A condition on one config value, e.g. `[train] gan_steps > 0`."""

    section: str
    key: str
    text: str
    holds: Callable[[Any], bool]

    def __str__(self) -> str:
        return f"[{self.section}] {self.key} {self.text}"


Conditional = tuple[tuple[When, ...], Keys]  # keys read when all the conditions hold


@dataclass(frozen=True)
class Component:
    """One registered name (or part): its module, the keys it always reads, and keys it reads only `when` ...

    `uses` are parts chosen with it (e.g. a trainer family runs the trainer loop). A network `takes` one of the
    inputs below; a family `feeds` its networks, by kind, the inputs it can give, so the loader refuses a generator or
    discriminator the family cannot call. A builder's `given` arguments come from its caller, not from a config key
    (a classifier's `outputs`: the study's class count).
    """

    module: str
    reads: Keys = field(default_factory=dict)
    when: tuple[Conditional, ...] = ()
    uses: tuple[Ref, ...] = ()
    takes: str = ""
    feeds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    given: tuple[str, ...] = ()

    def active(self, values: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
        """(section, key) pairs this component reads under the config's `values`."""
        groups = [self.reads] + [keys for conditions, keys in self.when
                                 if all(c.holds(values[c.section][c.key]) for c in conditions)]
        return [(section, key) for keys in groups for section, names in keys.items() for key in names]


def above_zero(section: str, key: str) -> When:
    return When(section, key, "> 0", lambda value: value > 0)


def equals(section: str, key: str, expected: Any) -> When:
    return When(section, key, f"= {json.dumps(expected)}", lambda value: value == expected)


def not_empty(section: str, key: str) -> When:
    return When(section, key, "is not empty", bool)


def one_of(section: str, key: str, choices: tuple[str, ...]) -> When:
    quoted = [json.dumps(choice) for choice in choices]
    text = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    return When(section, key, f"is {text}", lambda value: value in choices)


_PATCH_FAMILIES = ("dcgan", "conditional", "mask_to_image")

# What a generator or discriminator is called with.
LR_IMAGE = "an LR image"
LATENT = "a latent vector"
LATENT_CLASS = "[latent, class]"
MASK_LATENT = "[mask, latent]"
ANY_IMAGE = "an image of any size"
SIZED_IMAGE = "an image_size × image_size image"
IMAGE_CLASS = "[image_size × image_size image, class]"
MASK_IMAGE = "the (mask, image) pair as two channels"

PREPARE_COMMAND = "the prepare command"
AUGMENT_COMMAND = "the augment command"
RUN_COMMANDS = "the train, evaluate and infer commands"
TRAINER_LOOP = "the trainer loop"

# The sections each command is configured by: a file writing one of them is checked against that command's readers.
COMMAND_SECTIONS: dict[str, tuple[str, ...]] = {
    PREPARE_COMMAND: ("prepare",),
    AUGMENT_COMMAND: ("generator",),
    RUN_COMMANDS: ("dataset", "model", "train", "eval", "infer", "utility", "singan", "cyclegan"),
}

_AUGMENTATION_KEYS = {
    "hflip": ("hflip",), "vflip": ("vflip",), "rotation": ("rotation_angles",), "shear": ("shear_factors",),
    "shrink": ("shrink_ratios",), "elastic": ("elastic",), "grid": ("grid_distortion",), "gamma": ("gamma",),
    "contrast": ("contrast",), "brightness": ("brightness",), "noise": ("noise",),
}


def _augmentation(keys: tuple[str, ...]) -> Component:
    return Component("mammogan.augment.transforms", {"generator": keys})


def _radial(name: str) -> Component:
    """barrel / pincushion: centres and radius matter only for the amounts listed."""
    return Component("mammogan.augment.transforms", {"generator": (f"{name}_amounts",)},
                     when=(((not_empty("generator", f"{name}_amounts"),), {"generator": (f"{name}_centres", f"{name}_radius")}),))


def _family(module: str, reads: Keys, when: tuple[Conditional, ...], generator: str,
            discriminator: tuple[str, ...]) -> Component:
    """A trainer family: its own reads, the inputs it feeds its networks; it runs the trainer loop."""
    return Component(module, reads, when, uses=(("part", TRAINER_LOOP),),
                     feeds={"generator": (generator,), "discriminator": discriminator})


def _merge(*parts: Keys) -> dict[str, tuple[str, ...]]:
    """The keys of several groups, section by section."""
    merged: dict[str, tuple[str, ...]] = {}
    for part in parts:
        for section, keys in part.items():
            merged[section] = merged.get(section, ()) + keys
    return merged


# The adversarial side of a GAN family: the discriminator, its optimizer and loss, and the D stabilisers.
_ADVERSARIAL: Keys = {
    "model": ("discriminator",),
    "train": ("d_learning_rate", "adversarial_loss", "label_smoothing", "instance_noise", "diffaugment", "ada_target"),
}
_ADA = ((above_zero("train", "ada_target"),), {"train": ("ada_interval", "ada_speed_images")})

# PatchGANTask (dcgan, and through it conditional and mask_to_image): training, `evaluate` and `infer`.
_PATCH_GAN = _merge(_ADVERSARIAL, {
    "dataset": ("train_dir", "valid_dir", "test_dir", "augment_flips"),
    "model": ("latent_dim", "image_size", "d_normalization"),
    "train": ("gan_steps", "collapse_diversity", "collapse_d_accuracy", "collapse_patience", "collapse_rollback",
              "collapse_max_rollbacks"),
    "eval": ("output_dir", "num_samples", "feature_extractor", "kid_subsets", "kid_subset_size", "classifier_score_splits",
             "frd", "near_copy_ssim", "near_copy_cosine", "comparison_crops"),
    "infer": ("output_dir", "num_samples", "seed", "reject_near_copies"),
})


def _patch_gan(module: str, generator: str, discriminator: tuple[str, ...], *when: Conditional,
               **extra: tuple[str, ...]) -> Component:
    return _family(module, _merge(_PATCH_GAN, extra), (_ADA, *when), generator, discriminator)


_UTILITY_CLASSIFIER = ("classifier", "filters", "epochs", "learning_rate")

CATALOG: dict[str, dict[str, Component]] = {
    "part": {
        PREPARE_COMMAND: Component("mammogan.prepare.pipeline", {"prepare": (
            "kind", "output_dir", "bit_depth", "orientation", "crop_breast", "clear_background", "crop_threshold",
            "crop_margin", "max_size", "split_ratios", "seed", "sr_scales", "patch_size", "patch_zooms",
            "normal_patches_per_image", "min_breast_fraction", "workers", "overwrite", "on_error")},
            when=(((not_empty("prepare", "sr_scales"),), {"prepare": ("sr_patch_size", "degradation")}),)),
        AUGMENT_COMMAND: Component("mammogan.augment.generator", {"generator": (
            "input_dir", "output_dir", "splits", "seed", "workers", "border_mode", "border_value", "chains")},
            uses=tuple(("augmentation", name) for name in (*_AUGMENTATION_KEYS, "barrel", "pincushion"))),
        RUN_COMMANDS: Component("mammogan.cli", {"model": ("task",)}),
        TRAINER_LOOP: Component("mammogan.train.trainer", {
            "model": ("generator",),
            "train": ("output_dir", "seed", "batch_size", "steps_per_epoch", "g_learning_rate", "optimizer", "lr_schedule",
                      "ema_decay", "mixed_precision", "jit_compile", "strategy", "keep_checkpoints",
                      "early_stopping_patience", "plateau_patience", "tile_images", "keep_best", "snapshot_every")},
            when=(((above_zero("train", "plateau_patience"),), {"train": ("lr_decay_factor",)}),
                  ((equals("train", "collapse_rollback", True),), {"train": ("lr_decay_factor",)}))),
    },
    "family": {
        "srgan": _family("mammogan.families.srgan", {
            "dataset": ("train_dir", "valid_dir", "test_dir", "lr_subdir", "data_range", "patch_size", "lesion_crop_fraction",
                        "min_crop_mean", "augment_flips", "storage"),
            "model": ("scale",),
            "train": ("pretrain_steps", "gan_steps", "pixel_loss", "lesion_weight", "lesion_weight_classes", "pretrained_generator"),
            "eval": ("output_dir", "border_crop", "metrics", "roi_margin", "comparison_crops"),
            "infer": ("input_dir", "output_dir", "tile_size", "tile_overlap", "tile_batch"),
        }, when=(
            ((equals("dataset", "storage", "tfrecord"),), {"dataset": ("tfrecord_dir", "crops_per_image", "shuffle_buffer")}),
            ((above_zero("train", "gan_steps"),), _merge(_ADVERSARIAL, {"train": ("loss_weights",)})),
            ((When("train", "loss_weights", "has perceptual > 0", lambda weights: weights.get("perceptual", 0.0) > 0),),
             {"train": ("perceptual_weights",)}),
            _ADA,
        ), generator=LR_IMAGE, discriminator=(ANY_IMAGE,)),
        "dcgan": _patch_gan("mammogan.families.patch_gan", LATENT, (ANY_IMAGE, SIZED_IMAGE),
                            dataset=("synthetic_dirs", "synthetic_ratio"), train=("spectral_weight", "r1_gamma")),
        "conditional": _patch_gan("mammogan.families.conditional", LATENT_CLASS, (IMAGE_CLASS,), dataset=("class_column",),
                                  model=("classes",), train=("class_loss_weight", "class_weights")),
        "mask_to_image": _patch_gan(
            "mammogan.families.mask_to_image", MASK_LATENT, (MASK_IMAGE,),
            ((equals("infer", "mask_source", "real"),), {"infer": ("mask_dir",)}),
            ((equals("infer", "mask_source", "prior"),), {"infer": ("prior_real_fraction",)}),
            train=("pixel_loss", "lesion_weight", "loss_weights"), infer=("mask_source",)),
        "utility": Component("mammogan.families.utility", {
            "dataset": ("train_dir", "valid_dir", "test_dir"),
            "model": ("image_size",),
            "train": ("output_dir", "batch_size"),
            "utility": ("augmented_dir", "synthetic_dir", "synthetic_ratio", "synthetic_class", *_UTILITY_CLASSIFIER, "seeds"),
        }),
        "utility_cv": Component("mammogan.families.utility_cv", {
            "model": ("image_size",),
            "train": ("output_dir", "batch_size"),
            "utility": ("patches_dir", "pool_splits", "target_column", "classes", "zoom", "max_normal_per_image", "folds",
                        "split_seed", "valid_fraction", "augment_config", "repeat_control", "synthetic_configs", "gan_steps", "synthetic_ratios",
                        "synthetic_classes", "bootstrap_samples", "external_test_dir", *_UTILITY_CLASSIFIER, "seeds"),
        }),
        "singan": Component("mammogan.families.singan", {
            "dataset": ("train_dir", "test_dir"),
            "model": ("image_size",),
            "train": ("output_dir", "seed", "steps_per_epoch", "tile_images", "jit_compile"),
            "eval": ("output_dir", "num_samples", "feature_extractor", "kid_subsets", "kid_subset_size", "classifier_score_splits",
                     "frd", "near_copy_ssim", "near_copy_cosine", "comparison_crops"),
            "infer": ("output_dir", "num_samples", "seed"),
            "singan": ("filter_column", "filter_value", "zoom", "max_patches", "scale_factor", "min_size", "max_size", "num_scales",
                       "filters", "max_filters", "layers", "steps_per_scale", "d_steps", "g_steps", "learning_rate", "lr_decay_step",
                       "lr_decay_factor", "gp_weight", "reconstruction_weight", "noise_amp", "workers", "injection_scale",
                       "sample_size"),
        }, when=(((above_zero("singan", "injection_scale"),), {"singan": ("inject_image",)}),)),
        "cyclegan": _family("mammogan.families.cyclegan", _merge(_ADVERSARIAL, {
            "dataset": ("train_dir", "valid_dir", "test_dir", "data_range", "min_crop_mean", "augment_flips"),
            "model": ("image_size", "d_normalization"),
            "train": ("gan_steps", "label_smoothing"),
            "eval": ("output_dir", "num_samples", "feature_extractor", "kid_subsets", "kid_subset_size", "classifier_score_splits",
                     "frd", "metrics", "comparison_crops"),
            "infer": ("input_dir", "output_dir", "tile_size", "tile_overlap", "tile_batch", "seed"),
            "cyclegan": ("domain_column", "domain_a", "domain_b", "zoom", "cycle_weight", "identity_weight", "pool_size",
                         "direction", "dense_threshold"),
        }), (_ADA,), generator=ANY_IMAGE, discriminator=(ANY_IMAGE,)),
        "domain_extractor": Component("mammogan.families.domain_extractor", {
            "dataset": ("train_dir", "valid_dir", "test_dir"),
            "model": ("image_size",),
            "train": ("output_dir", "batch_size", "seed"),
            "utility": _UTILITY_CLASSIFIER,
        }),
    },
    # Builders: their keyword parameters are exactly these keys (Config.arguments_for passes them).
    "generator": {
        "srresnet": Component("mammogan.models.srresnet", {"model": ("scale", "filters", "blocks", "batch_norm", "global_skip")},
                              takes=LR_IMAGE),
        "edsr": Component("mammogan.models.edsr", {"model": ("scale", "filters", "blocks", "global_skip")}, takes=LR_IMAGE),
        "rrdb": Component("mammogan.models.rrdb", {"model": ("scale", "filters", "blocks", "global_skip")}, takes=LR_IMAGE),
        "dcgan": Component("mammogan.models.gan_generators", {"model": ("image_size", "latent_dim", "filters", "upsampling")},
                           takes=LATENT),
        "conditional_dcgan": Component("mammogan.models.conditional", {"model": (
            "image_size", "latent_dim", "filters", "classes", "upsampling")}, takes=LATENT_CLASS),
        "stylegan2": Component("mammogan.models.stylegan2", {"model": ("image_size", "latent_dim", "filters", "mapping_layers")},
                               takes=LATENT),
        "conditional_stylegan2": Component("mammogan.models.stylegan2", {"model": (
            "image_size", "latent_dim", "filters", "mapping_layers", "classes")}, takes=LATENT_CLASS),
        "pix2pix_unet": Component("mammogan.models.pix2pix", {"model": ("image_size", "latent_dim", "filters", "spade")},
                                  takes=MASK_LATENT),
        "resnet_translator": Component("mammogan.models.cyclegan", {"model": (
            "filters", "blocks", "g_normalization", "translator_skip")}, takes=ANY_IMAGE),
        "unet_translator": Component("mammogan.models.cyclegan", {"model": (
            "filters", "blocks", "g_normalization", "translator_skip")}, takes=ANY_IMAGE),
    },
    "discriminator": {
        "vgg": Component("mammogan.models.discriminators", {"model": ("d_filters", "d_blocks", "spectral_norm")}, takes=ANY_IMAGE),
        "unet": Component("mammogan.models.discriminators", {"model": ("d_filters", "d_blocks", "spectral_norm")}, takes=ANY_IMAGE),
        "dcgan": Component("mammogan.models.discriminators", {"model": (
            "image_size", "d_filters", "spectral_norm", "d_normalization", "d_laplacian", "d_minibatch_std")},
                           takes=SIZED_IMAGE),
        "conditional_dcgan": Component("mammogan.models.conditional", {"model": (
            "image_size", "d_filters", "spectral_norm", "d_normalization", "classes", "projection", "d_laplacian",
            "d_minibatch_std")}, takes=IMAGE_CLASS),
        "patchgan": Component("mammogan.models.pix2pix", {"model": ("image_size", "d_filters", "d_blocks", "spectral_norm", "d_normalization")},
                              takes=MASK_IMAGE),
        "patchgan70": Component("mammogan.models.cyclegan", {"model": ("d_filters", "d_blocks", "spectral_norm", "d_normalization")},
                                takes=ANY_IMAGE),
    },
    "classifier": {
        "small_resnet": Component("mammogan.models.classifier", {"model": ("image_size",), "utility": ("filters",)},
                                  given=("outputs",)),
        **{name: Component("mammogan.models.classifier", {"model": ("image_size",), "utility": ("backbone_weights",)},
                           given=("outputs",)) for name in ("efficientnet_b0", "resnet50")},
    },
    "loss": {name: Component("mammogan.losses.pixel") for name in ("l1", "mse", "charbonnier")},
    "adversarial_loss": {
        **{name: Component("mammogan.losses.adversarial") for name in ("nonsaturating", "minimax", "lsgan", "hinge")},
        # The patch GANs' critic steps and gradient penalty (SRGAN has neither).
        "wasserstein": Component("mammogan.losses.adversarial", when=(
            ((one_of("model", "task", _PATCH_FAMILIES),), {"train": ("n_critic", "gp_weight")}),)),
        "relativistic": Component("mammogan.losses.adversarial"),
    },
    "optimizer": {
        "adam": Component("mammogan.train.optimizers", {"train": ("beta_1", "beta_2", "epsilon")}),
        "adamw": Component("mammogan.train.optimizers", {"train": ("beta_1", "beta_2", "epsilon")}),
        "sgd": Component("mammogan.train.optimizers", {"train": ("beta_1",)}),
        "rmsprop": Component("mammogan.train.optimizers", {"train": ("epsilon",)}),
    },
    "schedule": {
        "constant": Component("mammogan.train.optimizers"),
        "piecewise": Component("mammogan.train.optimizers", {"train": ("lr_decay_steps", "lr_decay_factor")}),
        "cosine": Component("mammogan.train.optimizers", {"train": ("pretrain_steps", "gan_steps")}),
        "linear_decay": Component("mammogan.train.optimizers", {"train": ("pretrain_steps", "gan_steps")}),
    },
    "metric": {name: Component("mammogan.metrics.full_reference")
               for name in ("psnr", "ssim", "ms_ssim", "gmsd", "ms_gmsd", "mdsi", "haarpsi")},
    "feature_extractor": {
        "inception": Component("mammogan.metrics.features", {"eval": ("extractor_weights",)}),
        "random_cnn": Component("mammogan.metrics.features", {"train": ("seed",)}),
        "domain": Component("mammogan.metrics.features", {"eval": ("extractor_weights",)}),
        "texture": Component("mammogan.metrics.texture"),
    },
    "diffaugment": {name: Component("mammogan.train.stabilisers") for name in ("color", "translation", "translation_reflect", "cutout")},
    "augmentation": {
        **{name: _augmentation(keys) for name, keys in _AUGMENTATION_KEYS.items()},
        "barrel": _radial("barrel"),
        "pincushion": _radial("pincushion"),
    },
    "degradation": {
        "bicubic": Component("mammogan.data.degradation", {"prepare": ("noise_std",)}),
        "gaussian": Component("mammogan.data.degradation", {"prepare": ("blur_sigma", "noise_std")}),
    },
    "prepare_kind": {
        # DICOM sources read voi_lut and the pseudonym key; annotated ones draw point ROIs with point_radius.
        "mias": Component("mammogan.prepare.sources", {"prepare": (
            "input_dir", "info_file", "mias_reference_size", "point_radius", "point_radius_unit")}),
        "images": Component("mammogan.prepare.sources", {"prepare": ("input_dir",)}),
        "dicom": Component("mammogan.prepare.sources", {"prepare": ("input_dir", "voi_lut", "pseudonym_key_file")}),
        "folders": Component("mammogan.prepare.sources", {"prepare": (
            "input_dirs", "patient_pattern", "voi_lut", "pseudonym_key_file")}),
        "inbreast": Component("mammogan.prepare.sources", {"prepare": (
            "input_dir", "annotations_dir", "metadata_file", "voi_lut", "pseudonym_key_file", "point_radius", "point_radius_unit")}),
        "cbis": Component("mammogan.prepare.sources", {"prepare": (
            "input_dir", "metadata_file", "voi_lut", "pseudonym_key_file", "point_radius", "point_radius_unit")}),
    },
}


def names(kind: str) -> list[str]:
    """The catalogued names of a registry kind."""
    return list(CATALOG.get(kind, {}))


def component(kind: str, name: str) -> Component | None:
    return CATALOG.get(kind, {}).get(name)


def fitting(family: str, kind: str) -> list[str]:
    """The catalogued `kind` networks (generator, discriminator) that `family` can call: those taking what it feeds."""
    entry = component("family", family)
    inputs = entry.feeds.get(kind, ()) if entry is not None else ()
    return [name for name, network in CATALOG[kind].items() if network.takes in inputs]


def describe(ref: Ref) -> str:
    kind, name = ref
    return name if kind == "part" else f"{kind} {name!r}"


def users(ref: Ref) -> list[Ref]:
    """The components that use a part (the trainer families for the trainer loop)."""
    return [(kind, name) for kind, table in CATALOG.items() for name, entry in table.items() if ref in entry.uses]


def readers(section: str, key: str) -> list[tuple[Ref, tuple[When, ...]]]:
    """Every component that reads `[section] key`, with the conditions it reads it under (() for always)."""
    found = []
    for kind, table in CATALOG.items():
        for name, entry in table.items():
            if key in entry.reads.get(section, ()):
                found.append(((kind, name), ()))
            found += [((kind, name), conditions) for conditions, keys in entry.when if key in keys.get(section, ())]
    return found
