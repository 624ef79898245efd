"""Training the `domain` feature extractor (`[model] task = "domain_extractor"`): a versioned patch classifier.

The distribution metrics need features that know mammograms. This task trains the downstream-utility
benchmark's lesion-vs-normal classifier ([utility] classifier, filters, epochs, learning_rate; seed
[train] seed) on the real [dataset] train_dir patches, keeps the weights of the lowest class-balanced
valid_dir loss, scores them on valid_dir and test_dir, and saves them as a new version:
`<[train] output_dir>/domain_extractor/v<NNN>/` holding `classifier.keras`, `card.json` (version, date,
data folders and counts, classes, accuracy and AUC, seed, input size, classifier settings) and the
`resolved.config`. A version is written under a temporary name and renamed when complete, and an earlier
version is never overwritten, so a GAN evaluation that names `domain:v001` stays reproducible.
`evaluate` re-prints the latest card.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ..config.loader import Config, write_resolved_config
from ..core.io import atomic_write_text
from ..core.logs import add_log_file, get_logger
from ..data.labelled_patches import CLASSES, PatchSet, labelled_splits
from ..errors import UserError
from ..metrics.classification import classification_scores
from ..metrics.features import DOMAIN_CARD_FILE, DOMAIN_MODEL_FILE
from ..registry import FAMILIES
from ..train.classifier import lesion_probabilities, train_classifier
from .base import Study

log = get_logger("utility")
FOLDER = "domain_extractor"
VERSION = re.compile(r"v(\d{3,})")


def versions(root: Path) -> list[Path]:
    """The finished version folders under `root`, oldest first."""
    found = [p for p in root.glob("v*") if p.is_dir() and VERSION.fullmatch(p.name)] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[1:]))


def save_version(root: Path, model: keras.Model, card: dict[str, Any], config: Config) -> Path:
    """Write model, card (with its version filled in) and resolved config as the next `root/v<NNN>`.

    Everything goes to a temporary folder first, renamed when complete; the number is one above every
    name taken, and a rename that loses a race with another run tries the next number.
    """
    root.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".version-", suffix=".tmp", dir=root))
    try:
        model.save(temp / DOMAIN_MODEL_FILE)
        write_resolved_config(config, temp)
        while True:
            taken = [int(match.group(1)) for match in map(VERSION.fullmatch, os.listdir(root)) if match]
            card["version"] = f"v{max(taken, default=0) + 1:03d}"
            atomic_write_text(temp / DOMAIN_CARD_FILE, json.dumps(card, indent=2) + "\n")
            target = root / card["version"]
            try:
                os.rename(temp, target)
            except OSError:
                if target.exists():
                    continue
                raise
            return target
    finally:
        if temp.exists():
            shutil.rmtree(temp)


def _split_card(folder: Path, patches: PatchSet) -> dict[str, Any]:
    counts = np.bincount(patches.labels, minlength=len(CLASSES))
    return {"dir": str(folder), "patches": len(patches.labels), **{name: int(n) for name, n in zip(CLASSES, counts)}}


@FAMILIES.register("domain_extractor")
class DomainExtractorStudy(Study):
    """`mammogan train` trains and saves a new version (`run`); `mammogan evaluate` shows the latest card (`summarise`)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.root: Path = config.train.output_dir / FOLDER

    def _start(self) -> None:
        add_log_file(self.config.train.output_dir, "domain_extractor.log")

    def run(self) -> int:
        cfg = self.config
        self._start()
        train, valid, test = labelled_splits(cfg, "training the domain feature extractor")
        log.info("Domain feature extractor: %s classifier (filters %d) on %d real patches, seed %d, %d epochs",
                 cfg.utility.classifier, cfg.utility.filters, len(train.labels), cfg.train.seed, cfg.utility.epochs)
        model, best_epoch = train_classifier(cfg, cfg.train.seed, train, valid)
        card: dict[str, Any] = {
            "version": None,  # filled in by save_version
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "labels": "lesion vs normal: lesion_class of the metadata.csv beside the patch splits",
            "classes": list(CLASSES),
            "output": "P(lesion) (sigmoid); the layer before it gives the features",
            "input_size": cfg.model.image_size,
            "classifier": cfg.utility.classifier,
            "filters": cfg.utility.filters,
            "epochs": cfg.utility.epochs,
            "best_epoch": best_epoch,
            "learning_rate": cfg.utility.learning_rate,
            "batch_size": cfg.train.batch_size,
            "seed": cfg.train.seed,
            "data": {name: _split_card(folder, split) for name, folder, split in (
                ("train", cfg.dataset.train_dir, train), ("valid", cfg.dataset.valid_dir, valid), ("test", cfg.dataset.test_dir, test))},
        }
        for name, split in (("valid", valid), ("test", test)):
            scores = classification_scores(split.labels, lesion_probabilities(model, split.images))
            card[name] = {"accuracy": scores["accuracy"], "auc": scores["auc"]}
        folder = save_version(self.root, model, card, cfg)
        _log_card(card, folder)
        return 0

    def summarise(self) -> int:
        self._start()
        existing = versions(self.root)
        if not existing:
            raise UserError(f"{self.root}: no domain extractor versions; run `1.train` for {self.config.path} first.")
        card = json.loads((existing[-1] / DOMAIN_CARD_FILE).read_text(encoding="utf-8"))
        _log_card(card, existing[-1])
        return 0


def _log_card(card: dict[str, Any], folder: Path) -> None:
    log.info("Domain extractor %s → %s (use [eval] feature_extractor = \"domain\", extractor_weights = that folder)",
             card["version"], folder)
    log.info("  valid accuracy %.3f  AUC %.3f   test accuracy %.3f  AUC %.3f   (%d / %d / %d train/valid/test patches, best epoch %d)",
             card["valid"]["accuracy"], card["valid"]["auc"], card["test"]["accuracy"], card["test"]["auc"],
             card["data"]["train"]["patches"], card["data"]["valid"]["patches"], card["data"]["test"]["patches"],
             card["best_epoch"])
