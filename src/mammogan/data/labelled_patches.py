"""The patch sets of the utility benchmark: real splits, augmented and synthetic additions, with provenance.

Every image carries its origin (real / augmented / synthetic), its file and the real training patch
it derives from, so the arms can be shown to use the data they claim, and the test split can be
shown never to reach training: augmented patches must derive from [dataset] train_dir patches, the
GAN behind the synthetic folder must not have been trained on test or validation patches, and no
training image may equal a test image in any flip or 90° rotation.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.loader import Config, load_config
from .images import read_image
from .labels import patch_metadata
from .patch_dataset import ORIENTATIONS, load_patches, orient, patch_folder, patch_names, read_resized
from ..errors import DataError

CLASSES = ("normal", "lesion")  # label = index: the classifier outputs P(lesion)
ORIGINS = ("real", "augmented", "synthetic")


@dataclass(frozen=True)
class PatchSet:
    images: np.ndarray  # (N, S, S) float32 in [0, 1]
    labels: np.ndarray  # (N,) int, index into CLASSES
    origins: tuple[str, ...]
    paths: tuple[Path, ...]
    sources: tuple[str, ...]  # the real training patch an image derives from ("" for synthetic)

    def __add__(self, other: "PatchSet") -> "PatchSet":
        return PatchSet(np.concatenate([self.images, other.images]), np.concatenate([self.labels, other.labels]),
                        self.origins + other.origins, self.paths + other.paths, self.sources + other.sources)

    def count(self, origin: str) -> int:
        return self.origins.count(origin)


def _read_csv(path: Path, columns: tuple[str, ...], produced_by: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: not found; it is written by {produced_by}.")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in columns if rows and c not in rows[0]]
    if not rows or missing:
        raise DataError(f"{path}: expected a table with the columns {', '.join(columns)} (missing: {', '.join(missing) or 'all rows'}).")
    return rows


def real_split(split_dir: Path, size: int) -> PatchSet:
    """A prepared patch split; labels from the `metadata.csv` `prepare` writes beside the splits."""
    classes = {name: row["lesion_class"] for name, row in patch_metadata(split_dir, ("lesion_class",), "the utility benchmark").items()}
    names = patch_names(split_dir)
    unknown = [name for name in names if name not in classes]
    if unknown:
        raise DataError(f"{split_dir.parent / 'metadata.csv'}: no lesion_class for {len(unknown)} patches of {split_dir}, e.g. {unknown[0]}.")
    labels = np.array([CLASSES.index("normal" if classes[name] == "normal" else "lesion") for name in names])
    return PatchSet(load_patches(split_dir, size), labels, ("real",) * len(names),
                    tuple(patch_folder(split_dir) / name for name in names), tuple(names))


def _load_named(folder: Path, wanted: list[str], size: int, listed_in: str) -> np.ndarray:
    """The patches `wanted` (file names) of a patch folder, in that order."""
    names = patch_names(folder)
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise DataError(f"{patch_folder(folder)}: {len(missing)} patches listed in {listed_in} are missing, e.g. {missing[0]}.")
    if not wanted:
        return np.zeros((0, size, size), np.float32)
    return read_resized([patch_folder(folder) / name for name in wanted], size)


def augmented_patches(augmented_dir: Path, real_train: PatchSet, size: int) -> PatchSet:
    """The augmented (not the copied original) train patches of a `mammogan augment` output, labelled by source."""
    rows = _read_csv(augmented_dir / "augmentation.csv", ("split", "source", "output", "transform"),
                     "`mammogan augment` run on the patch splits (input_dir = the folder holding patches/train)")
    labels_by_stem = {Path(name).stem: (name, label) for name, label in zip(real_train.sources, real_train.labels)}
    chosen = [row for row in rows if row["split"] == "train" and row["transform"] != "original"]
    foreign = [row["source"] for row in chosen if row["source"] not in labels_by_stem]
    if foreign:
        raise DataError(f"{augmented_dir}: {len(foreign)} augmented patches derive from patches that are not in [dataset] "
                        f"train_dir, e.g. {foreign[0]}; augment the same patch splits the benchmark trains on.")
    if not chosen:
        raise DataError(f"{augmented_dir / 'augmentation.csv'}: no augmented train patches.")
    train_dir = augmented_dir / "train"
    outputs = [row["output"] for row in chosen]
    sources = [labels_by_stem[row["source"]] for row in chosen]
    images = _load_named(train_dir, outputs, size, "augmentation.csv")
    return PatchSet(images, np.array([label for _, label in sources]),
                    ("augmented",) * len(outputs), tuple(patch_folder(train_dir) / name for name in outputs),
                    tuple(name for name, _ in sources))


def generator_training_dir(synthetic_dir: Path) -> Path:
    """The [dataset] train_dir of the GAN behind a synthetic folder, read from the resolved.config its `infer` wrote."""
    resolved = synthetic_dir / "resolved.config"
    if not resolved.is_file():
        raise DataError(f"{resolved}: not found; the synthetic folder must be written by a GAN `infer` run, whose "
                        "resolved.config shows which patches the GAN was trained on.")
    gan_train_dir = load_config(resolved).dataset.train_dir
    if gan_train_dir is None:
        raise DataError(f"{resolved}: [dataset] train_dir is not set, so the GAN's training data is unknown.")
    return gan_train_dir


def written_samples(synthetic_dir: Path) -> list[dict[str, str]]:
    """The manifest rows of the images a GAN `infer` run wrote (near-copies it rejected left out), in manifest order."""
    rows = _read_csv(synthetic_dir / "manifest.csv", ("image",), "`mammogan infer` of a synthetic-image GAN")
    return [row for row in rows if row.get("status", "written") == "written"]


def _check_gan_training_data(synthetic_dir: Path, held_out: list[str]) -> None:
    """The GAN's own config (saved by `infer`) must not name a training folder holding evaluation patches."""
    gan_train_dir = generator_training_dir(synthetic_dir)
    leaked = sorted(set(patch_names(gan_train_dir)) & set(held_out))
    if leaked:
        raise DataError(f"{synthetic_dir}: the GAN was trained on {gan_train_dir}, which holds {len(leaked)} validation/test "
                        f"patches of this benchmark (e.g. {leaked[0]}); its samples would leak them into training.")


def _synthetic_label(config: Config, row: dict[str, str], synthetic_dir: Path) -> int:
    """A conditional GAN's sample is labelled by its class ("normal" or a lesion class), a mask-to-image sample by
    whether its mask marks anything; an unconditional GAN's samples all get `[utility] synthetic_class`."""
    if row.get("class"):
        return CLASSES.index("normal" if row["class"] == "normal" else "lesion")
    if row.get("mask"):
        return CLASSES.index("lesion" if read_image(synthetic_dir / "masks" / row["mask"]).any() else "normal")
    return CLASSES.index(config.need("utility", "synthetic_class", "labelling the samples of an unconditional GAN"))


def _round_robin(labels: list[int], count: int) -> list[int]:
    """Indices of `count` samples taking the labels in turn (manifest order within a label), so both classes come in."""
    queues = {label: [i for i, l in enumerate(labels) if l == label] for label in sorted(set(labels))}
    order: list[int] = []
    while len(order) < count:
        for queue in queues.values():
            if queue and len(order) < count:
                order.append(queue.pop(0))
    return order


def synthetic_patches(config: Config, synthetic_dir: Path, count: int, size: int, held_out: list[str]) -> PatchSet:
    """`count` written samples of a GAN `infer` folder, taking its classes in turn, each with its label."""
    _check_gan_training_data(synthetic_dir, held_out)
    written = written_samples(synthetic_dir)
    leaked = sorted({row["source_patch"] for row in written if row.get("source_patch") in set(held_out)})
    if leaked:  # a translation (CycleGAN) or an injected sample (SinGAN) keeps its source's geometry
        raise DataError(f"{synthetic_dir / 'manifest.csv'}: {len(leaked)} images derive from validation/test patches of "
                        f"this benchmark (source_patch {leaked[0]}, ...); they would leak those patches into training.")
    if len(written) < count:
        raise config.error("utility", "synthetic_ratio", f"needs {count} synthetic images but {synthetic_dir} holds "
                           f"{len(written)}; sample more ([infer] num_samples of the GAN project) or lower the ratio")
    labels = [_synthetic_label(config, row, synthetic_dir) for row in written]
    chosen = _round_robin(labels, count)
    names = [written[i]["image"] for i in chosen]
    images = _load_named(synthetic_dir, names, size, "manifest.csv")
    return PatchSet(images, np.array([labels[i] for i in chosen]), ("synthetic",) * count,
                    tuple(patch_folder(synthetic_dir) / name for name in names), ("",) * count)


def _fingerprint(image: np.ndarray) -> str:
    return hashlib.sha1(np.round(image * 255).astype(np.uint8).tobytes()).hexdigest()


def check_disjoint(training: PatchSet, held_out: PatchSet) -> None:
    """No training image (of any origin) may equal a validation/test image in any of the 8 orientations."""
    held_out_prints = {_fingerprint(image) for k in range(len(ORIENTATIONS)) for image in orient(held_out.images, k)}
    leaked = [path for path, image in zip(training.paths, training.images) if _fingerprint(image) in held_out_prints]
    if leaked:
        raise DataError(f"{len(leaked)} training images equal a validation/test image (possibly flipped or rotated), "
                        f"e.g. {leaked[0]}; those splits must stay unseen.")


def labelled_splits(config: Config, purpose: str) -> tuple[PatchSet, PatchSet, PatchSet]:
    """The real train, valid and test patch splits with their lesion/normal labels; each must hold both classes."""
    keys = ("train_dir", "valid_dir", "test_dir")
    train, valid, test = (real_split(config.need("dataset", key, purpose), config.model.image_size) for key in keys)
    for key, split in zip(keys, (train, valid, test)):
        if len(np.unique(split.labels)) < len(CLASSES):
            raise config.error("dataset", key, f"needs both lesion and normal patches for {purpose}")
    return train, valid, test
