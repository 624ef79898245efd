"""Synthetic-image evaluation: a GAN family's samples against held-out real patches.

Every arm is compared with the same real set through the same named feature extractor: the trained
generator, the untrained step-0 generator, a Gaussian-noise baseline matched to the real mean/std,
and real training patches (the floor a perfect generator could reach with this many samples).
The generator's samples then go through the memorisation check against the training patches, with
the real evaluation patches as the not-a-copy reference.

Per arm: KID, precision/recall/density/coverage, the Inception-Score-style classifier score (when the
extractor has a classifier head; else the cells stay empty and the log says why), the moment
distance, the mean pairwise MS-SSIM (with as many of MS-SSIM's five scales as the image side allows:
3 at 64 px, 2 at 32 px, all 5 from 161 px; empty below 11 px) and, with `[eval] frd`, the Fréchet
Radiomics Distance of the optional frd-score package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..visual.plots import plot_power_spectra
from ..visual.tiles import gan_tile
from ..config.loader import Config
from ..data.patch_dataset import load_patches
from ..models.io import generator_path, load_model, snapshot_folders
from ..models.sampling import Conditions, sample_images, sample_name
from ..metrics.distribution import (
    FRD_INSTALL,
    classifier_score,
    fid,
    frd_package,
    frechet_radiomics_distance,
    kid,
    mean_pairwise_ms_ssim,
    prdc,
)
from ..metrics.full_reference import MS_SSIM_WEIGHTS, ms_ssim_min_size, ms_ssim_scales_that_fit
from ..metrics.texture import TextureExtractor, log_power_moments, radial_power_spectrum, spectrum_gap
from ..metrics.two_sample import classifier_two_sample_test
from ..core.io import atomic_write_csv
from ..core.logs import get_logger
from ..metrics.numpy_metrics import moment_distance
from ..metrics.memorisation import check_against_training, configured_extractor, patch_names

log = get_logger("evaluate")

C2ST_FOLDS = 5


def _show(value: object) -> str:
    """A table value for the log: 3 decimals, or "-" for an empty cell."""
    return "-" if value == "" else f"{value:.3f}"


class SyntheticFamily(Protocol):
    """What the evaluation asks of a synthetic-image family (its class methods)."""

    def evaluation_conditions(self, config: Config, real_dir: Path) -> Conditions: ...

    def class_labels(self, config: Config, split_dir: Path) -> np.ndarray | None: ...


def check_synthetic_evaluation(config: Config) -> None:
    """What can be refused before the evaluation folder is written: an [eval] frd request without its package."""
    if config.eval.frd and frd_package() is None:
        raise config.error("eval", "frd", "needs the optional frd-score package (and the pyradiomics it calls), which is "
                           f"not installed: {FRD_INSTALL}, or set frd = false")


@dataclass(frozen=True)
class SyntheticArms:
    """The sets one synthetic-image evaluation compares.

    `generated` holds the model's arms ("generator" first, e.g. "step0_generator"), `names` the file names of the
    "generator" samples (as `infer` names them: the memorisation check's rows), `real` the held-out reference
    patches and `real_train` training patches (an arm of their own). Families with classes give the class ids
    of the real set and of each arm in `real_labels` and `labels`. `skip_memorisation`: why the memorisation check does
    not apply (CycleGAN translates given images, which then look like them by design); None: it runs.
    """

    generated: dict[str, np.ndarray]
    names: list[str]
    real: np.ndarray
    real_names: list[str]
    real_train: np.ndarray | None = None
    real_labels: np.ndarray | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    skip_memorisation: str | None = None


def evaluate_synthetic(config: Config, output_dir: Path, family: SyntheticFamily) -> list[dict[str, object]]:
    """A latent-vector family's `evaluate`: its samples against held-out real patches, beside the baselines."""
    cfg = config
    real_dir = cfg.dataset.test_dir or cfg.need("dataset", "valid_dir", "evaluating a synthetic-image GAN (or set test_dir)")
    real = load_patches(real_dir, cfg.model.image_size)
    conditions = family.evaluation_conditions(cfg, real_dir)
    count, latent_dim, seed = conditions.count, cfg.model.latent_dim, cfg.infer.seed

    def samples(path: Path) -> np.ndarray:  # every generator arm gets the same latents and conditions
        return sample_images(load_model(path), count, latent_dim, seed, labels=conditions.labels, masks=conditions.masks)

    generated = {"generator": samples(generator_path(cfg))}
    initial = cfg.train.output_dir / "models" / "initial" / "generator.keras"
    if initial.is_file():
        generated["step0_generator"] = samples(initial)
    for step, folder in snapshot_folders(cfg).items():
        generated[f"step_{step}"] = samples(folder / "generator.keras")
    train_dir = cfg.dataset.train_dir
    real_train = load_patches(train_dir, cfg.model.image_size)[:count] if train_dir is not None else None
    real_labels = family.class_labels(cfg, real_dir)
    labels: dict[str, np.ndarray] = {}
    if real_labels is not None:
        labels = {arm: conditions.labels for arm in generated}
        if real_train is not None:
            labels["real_train"] = family.class_labels(cfg, train_dir)[:count]
    arms = SyntheticArms(generated, [sample_name(seed, index) for index in range(count)], real, patch_names(real_dir),
                         real_train, real_labels, labels)
    return score_synthetic(cfg, output_dir, arms)


def score_synthetic(config: Config, output_dir: Path, arms: SyntheticArms) -> list[dict[str, object]]:
    """evaluation.csv for the arms, a Gaussian-noise baseline (matched to the real mean/std) and the real training
    patches; then the memorisation check of the generator's samples against [dataset] train_dir."""
    cfg = config
    real = arms.real
    extractor = configured_extractor(cfg)
    if not extractor.has_classifier:
        log.info("classifier_score left empty: %s.", extractor.no_classifier_reason)
    scales = ms_ssim_scales_that_fit(min(real.shape[1:]))
    if not scales:
        log.info("diversity_ms_ssim left empty: %d px images are smaller than one SSIM window (%d px).",
                 min(real.shape[1:]), ms_ssim_min_size(1))
    standardise = Standardiser(extractor, real)
    real_features = standardise(extractor.features(real[..., None]))
    texture = None if extractor.name == TextureExtractor.name else TextureExtractor()
    real_texture = Standardiser(texture, real) if texture is not None else None
    count = len(arms.generated["generator"])
    rng = np.random.default_rng(cfg.infer.seed)
    sets = {**arms.generated,
            "gaussian_noise": np.clip(rng.normal(real.mean(), real.std(), (count, *real.shape[1:])), 0, 1).astype(np.float32)}
    if arms.real_train is not None:
        sets["real_train"] = arms.real_train
    spectra = radial_spectra({"real": real, **sets})
    rows = []
    for arm, images in sets.items():
        embedding = extractor.embed(images[..., None])
        features = standardise(embedding.features)
        kernel = kid(real_features, features, subsets=cfg.eval.kid_subsets,
                     subset_size=cfg.eval.kid_subset_size, seed=cfg.train.seed)
        quality = prdc(real_features, features, k=min(5, len(real) - 1, len(images) - 1))
        score = None
        if embedding.probabilities is not None:
            score = classifier_score(embedding.probabilities, splits=min(cfg.eval.classifier_score_splits, len(images)))
        row: dict[str, object] = {
            "arm": arm, "extractor": extractor.name, "samples": len(images), "real": len(real),
            "kid_mean": kernel.mean, "kid_std": kernel.std,
            "fid": fid(real_features, features),  # biased upwards at small sample counts: compare arms, not papers
            **_c2st_columns("c2st", real_features, features, cfg.train.seed),
            "precision": quality.precision, "recall": quality.recall,
            "density": quality.density, "coverage": quality.coverage,
            "classifier_score": score.mean if score else "", "classifier_score_std": score.std if score else "",
            "moment_distance": moment_distance(real, images),
            "diversity_ms_ssim": mean_pairwise_ms_ssim(images[..., None], 1.0, MS_SSIM_WEIGHTS[:scales], max_pairs=300)
            if scales else "",
            "diversity_ms_ssim_scales": scales,
            "spectrum_gap_sd": spectrum_gap(spectra["real"], spectra[arm]),
        }
        if real_texture is not None:  # texture statistics beside any network's features: what those may not see
            arm_texture = real_texture(texture.features(images))
            row["texture_kid"] = kid(real_texture.reference, arm_texture, subsets=cfg.eval.kid_subsets,
                                     subset_size=cfg.eval.kid_subset_size, seed=cfg.train.seed).mean
            row.update(_c2st_columns("texture_c2st", real_texture.reference, arm_texture, cfg.train.seed))
        if arms.real_labels is not None:
            row.update(_per_class_kid(cfg, real_features, arms.real_labels, features, arms.labels.get(arm)))
        if cfg.eval.frd:
            row["frd"] = frechet_radiomics_distance(real, images)
        rows.append(row)
        if arm == "generator":
            gan_tile(output_dir / "samples.png", f"evaluated generator, {min(32, len(images))} samples", images[:32], real, {})
    atomic_write_csv(output_dir / "evaluation.csv", rows)
    write_power_spectra(output_dir, spectra)
    log.info("Synthetic-image evaluation (%s features, %d real patches) → %s", extractor.name, len(real), output_dir / "evaluation.csv")
    for row in rows:
        log.info("  %-16s KID %.4f ± %.4f  FID %.2f  C2ST %s  precision %.2f  recall %.2f  coverage %.2f  classifier score %s  "
                 "moments %.3f  MS-SSIM %s%s%s%s",
                 row["arm"], row["kid_mean"], row["kid_std"], row["fid"], _show(row["c2st"]), row["precision"], row["recall"],
                 row["coverage"], _show(row["classifier_score"]), row["moment_distance"], _show(row["diversity_ms_ssim"]),
                 f"  texture KID {row['texture_kid']:.4f} C2ST {_show(row['texture_c2st'])}" if "texture_kid" in row else "",
                 f"  spectrum gap {row['spectrum_gap_sd']:.2f} sd",
                 f"  FRD {row['frd']:.3f}" if "frd" in row else "")
    if arms.skip_memorisation:
        log.info("Memorisation check not run: %s.", arms.skip_memorisation)
    elif cfg.dataset.train_dir is None:
        log.warning("Memorisation check skipped: [dataset] train_dir is not set in %s.", cfg.path)
    else:  # the nearest training patch of every sample, the held-out reals as the not-a-copy reference
        check_against_training(cfg, arms.generated["generator"], arms.names, output_dir, "the memorisation check", extractor,
                               held_out=(real, arms.real_names))
    return rows


class Standardiser:
    """Scales features by the real set's per-feature mean and standard deviation when the extractor asks for it
    (texture statistics mix units: grey levels, log powers, GLCM ratios); network features pass unchanged."""

    def __init__(self, extractor: object, real: np.ndarray) -> None:
        self.active = bool(getattr(extractor, "standardise", False))
        raw = extractor.features(real[..., None]) if self.active else None
        self.mean = self.scale = self.reference = None
        if raw is not None:
            spread = raw.std(axis=0)
            self.mean, self.scale = raw.mean(axis=0), np.where(spread > 1e-12, spread, 1.0)
            self.reference = self(raw)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale if self.active else features


def _c2st_columns(prefix: str, real: np.ndarray, other: np.ndarray, seed: int) -> dict[str, object]:
    """C2ST accuracy with its 95 % interval over 5 folds ("" when a set has fewer than 5 images)."""
    if min(len(real), len(other)) < C2ST_FOLDS:
        return {prefix: "", f"{prefix}_ci_low": "", f"{prefix}_ci_high": ""}
    test = classifier_two_sample_test(real, other, folds=C2ST_FOLDS, seed=seed)
    return {prefix: test.accuracy, f"{prefix}_ci_low": test.ci_low, f"{prefix}_ci_high": test.ci_high}


POWER_SPECTRUM_BINS = 32


def radial_spectra(sets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each set's (N, POWER_SPECTRUM_BINS) radial power spectra, per image."""
    return {name: np.stack([radial_power_spectrum(image, POWER_SPECTRUM_BINS) for image in images])
            for name, images in sets.items()}


def write_power_spectra(output_dir: Path, spectra: dict[str, np.ndarray]) -> None:
    """power_spectrum.png (mean ± sd of the real patches' radial power spectra, each arm's mean) and its table."""
    frequencies = (np.arange(POWER_SPECTRUM_BINS) + 0.5) * 0.5 / POWER_SPECTRUM_BINS
    plot_power_spectra(output_dir / "power_spectrum.png", frequencies, spectra)
    moments = {name: log_power_moments(values) for name, values in spectra.items()}
    rows = [{"frequency": float(f), "real_log10_sd": float(moments["real"][1][i]),
             **{f"{name}_log10_power": float(mean[i]) for name, (mean, _) in moments.items()}}
            for i, f in enumerate(frequencies)]
    atomic_write_csv(output_dir / "power_spectrum.csv", rows)


def _per_class_kid(config: Config, real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray,
                   fake_labels: np.ndarray | None) -> dict[str, object]:
    """KID within each class and their mean: a class-balanced sample is judged against each class of the real
    set, not against the real set's class mix. Empty for arms without classes or classes with < 2 images."""
    cfg, values = config, {}
    for index, name in enumerate(cfg.model.classes):
        real_c = real[real_labels == index]
        fake_c = None if fake_labels is None else fake[fake_labels == index]
        if fake_c is None or min(len(real_c), len(fake_c)) < 2:
            values[f"kid_{name}"] = ""
            continue
        values[f"kid_{name}"] = kid(real_c, fake_c, subsets=cfg.eval.kid_subsets, subset_size=cfg.eval.kid_subset_size,
                                    seed=cfg.train.seed).mean
    defined = [v for v in values.values() if v != ""]
    values["kid_class_mean"] = float(np.mean(defined)) if len(defined) == len(values) else ""
    return values
