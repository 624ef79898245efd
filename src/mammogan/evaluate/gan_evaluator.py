"""`mammogan evaluate` for synthetic-image GANs: generated samples against held-out real patches.

Every arm is compared with the same real set through the same named feature extractor: the trained
generator, the untrained step-0 generator, a Gaussian-noise baseline matched to the real mean/std,
and real training patches (the floor a perfect generator could reach with this many samples).
The generator's samples then go through the memorisation check against the training patches, with
the real evaluation patches as the not-a-copy reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..callbacks.tiles import gan_tile
from ..config.loader import Config, write_resolved_config
from ..data.patch_dataset import load_patches
from ..infer.inferencer import sample_name
from ..infer.model_io import generator_path, load_model, sample_images
from ..metrics.features import FeatureExtractor
from ..metrics.distribution import kid, mean_pairwise_ms_ssim, prdc
from ..utils.io import atomic_write_csv
from ..utils.logs import add_log_file, get_logger
from .comparison import moment_distance
from .memorisation import check_against_training, configured_extractor, patch_names

log = get_logger("evaluate")
# MS-SSIM on small patches: three scales fit in 64×64 (the full five need 161×161).
SMALL_PATCH_POWER_FACTORS = (0.0448, 0.2856, 0.3001)


class GANEvaluator:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.output_dir: Path = config.eval.output_dir

    def _arms(self, real: np.ndarray) -> dict[str, np.ndarray]:
        cfg = self.config
        models = cfg.train.output_dir / "models"
        count, latent_dim, seed = cfg.eval.num_samples, cfg.model.latent_dim, cfg.infer.seed
        arms = {"generator": sample_images(load_model(generator_path(cfg)), count, latent_dim, seed)}
        initial = models / "initial" / "generator.keras"
        if initial.is_file():
            arms["step0_generator"] = sample_images(load_model(initial), count, latent_dim, seed)
        rng = np.random.default_rng(seed)
        arms["gaussian_noise"] = np.clip(rng.normal(real.mean(), real.std(), (count, *real.shape[1:])), 0, 1).astype(np.float32)
        train_dir = cfg.dataset.train_dir
        if train_dir is not None:
            arms["real_train"] = load_patches(train_dir, cfg.model.image_size)[:count]
        return arms

    def run(self) -> list[dict[str, object]]:
        cfg = self.config
        self.output_dir.mkdir(parents=True, exist_ok=True)
        add_log_file(self.output_dir, "evaluate.log")
        write_resolved_config(cfg, self.output_dir)
        real_dir = cfg.dataset.test_dir or cfg.need("dataset", "valid_dir", "evaluating a synthetic-image GAN (or set test_dir)")
        real = load_patches(real_dir, cfg.model.image_size)
        extractor = configured_extractor(cfg)
        real_features = extractor.features(real[..., None])
        rows = []
        arms = self._arms(real)
        for arm, images in arms.items():
            features = extractor.features(images[..., None])
            kernel = kid(real_features, features, subsets=cfg.eval.kid_subsets, subset_size=cfg.eval.kid_subset_size, seed=cfg.train.seed)
            quality = prdc(real_features, features, k=min(5, len(real) - 1, len(images) - 1))
            rows.append({
                "arm": arm, "extractor": extractor.name, "samples": len(images), "real": len(real),
                "kid_mean": kernel.mean, "kid_std": kernel.std, "precision": quality.precision, "recall": quality.recall,
                "density": quality.density, "coverage": quality.coverage,
                "moment_distance": moment_distance(real, images),
                "diversity_ms_ssim": mean_pairwise_ms_ssim(images[..., None], 1.0, SMALL_PATCH_POWER_FACTORS, max_pairs=300),
            })
            if arm == "generator":
                gan_tile(self.output_dir / "samples.png", 0, images[:32], real, {})
        atomic_write_csv(self.output_dir / "evaluation.csv", rows)
        log.info("Synthetic-image evaluation (%s features, %d real patches) → %s", extractor.name, len(real), self.output_dir / "evaluation.csv")
        for row in rows:
            log.info("  %-16s KID %.4f ± %.4f  precision %.2f  recall %.2f  coverage %.2f  moments %.3f  MS-SSIM %.3f",
                     row["arm"], row["kid_mean"], row["kid_std"], row["precision"], row["recall"], row["coverage"],
                     row["moment_distance"], row["diversity_ms_ssim"])
        self._memorisation(arms["generator"], real, real_dir, extractor)
        return rows

    def _memorisation(self, samples: np.ndarray, real: np.ndarray, real_dir: Path, extractor: FeatureExtractor) -> None:
        """Nearest training patch of every sample; named as `infer` names the same latents' images."""
        cfg = self.config
        if cfg.dataset.train_dir is None:
            log.warning("Memorisation check skipped: [dataset] train_dir is not set in %s.", cfg.path)
            return
        names = [sample_name(cfg.infer.seed, index) for index in range(len(samples))]
        check_against_training(cfg, samples, names, self.output_dir, "the memorisation check", extractor,
                               held_out=(real, patch_names(real_dir)))
