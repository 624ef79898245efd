"""`mammogan augment`: write an offline-augmented copy of a prepared dataset ([generator]).

The config gives a recipe: one output per configured augmentation variant (and per chain). Every
source image of an augmented split is copied, then gets one output per recipe entry: the image and
each `masks*` file of the same name move with one map (masks nearest-neighbour), and every `lr_x*`
counterpart is regenerated from the augmented HR by the degradation recorded in the dataset's
manifest.json. Files are paired by name, never by position. Other splits are copied unchanged.
`augmentation.csv` records source, transform, parameters and seed of every output; outputs depend
only on the config, so the same config gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2

from ..config.loader import Config, start_output_folder
from ..data.degradation import DegradationSpec, degrade
from ..data.images import list_images, read_image, read_mask, write_png
from ..errors import DataError
from ..prepare.splits import SPLITS
from ..registry import AUGMENTATIONS, DEGRADATIONS
from ..core.io import atomic_path, atomic_write_text
from ..core.logs import get_logger
from ..core.progress import progress
from .transforms import Border, Pair, apply_steps

log = get_logger("augment")
MANIFEST_CSV = "augmentation.csv"
CSV_COLUMNS = ["split", "source", "output", "transform", "parameters", "seed"]
IMAGES = "images"

# The [generator] key that configures each registered augmentation (for error messages).
CONFIG_KEYS = {
    "hflip": "hflip", "vflip": "vflip", "rotation": "rotation_angles", "shrink": "shrink_ratios",
    "shear": "shear_factors", "elastic": "elastic", "grid": "grid_distortion", "barrel": "barrel_amounts",
    "pincushion": "pincushion_amounts", "gamma": "gamma", "contrast": "contrast", "brightness": "brightness",
    "noise": "noise",
}


@dataclass(frozen=True)
class Step:
    """One registered augmentation with fixed parameters; `tag` is its part of the output name."""

    name: str
    params: tuple[tuple[str, float], ...]
    tag: str


@dataclass(frozen=True)
class Output:
    """One recipe entry: the steps applied, in order, to make one output per source."""

    steps: tuple[Step, ...]

    @property
    def tag(self) -> str:
        return "+".join(step.tag for step in self.steps)

    @property
    def transform(self) -> str:
        return "+".join(step.name for step in self.steps)

    @property
    def parameters(self) -> str:
        return json.dumps([dict(step.params) for step in self.steps])


def _num(value: float) -> str:
    return f"{value:g}"


# --- recipe -------------------------------------------------------------------------------------


def _tuples(config: Config, key: str, fields: tuple[str, ...]) -> list[tuple[float, ...]]:
    """The items of a list-of-lists key, each exactly `fields` long."""
    items = getattr(config.generator, key)
    for index, item in enumerate(items):
        if len(item) != len(fields):
            raise config.error("generator", key, f"item {index} has {len(item)} numbers; expected [{', '.join(fields)}]")
    return [tuple(item) for item in items]


def _require(config: Config, key: str, ok: bool, problem: str) -> None:
    if not ok:
        raise config.error("generator", key, problem)


def _radial_steps(config: Config, name: str) -> list[Step]:
    g = config.generator
    centres = _tuples(config, f"{name}_centres", ("x", "y"))
    radius, amounts = getattr(g, f"{name}_radius"), getattr(g, f"{name}_amounts")
    if amounts:
        _require(config, f"{name}_radius", radius > 0, "the radius must be > 0 (a fraction of the shorter image side)")
        _require(config, f"{name}_centres", bool(centres), f"{name}_amounts is set, so at least one [x, y] centre is needed")
    return [Step(name, (("cx", cx), ("cy", cy), ("radius", radius), ("amount", amount)),
                 f"{name}_c{index}_r{_num(radius)}_a{_num(amount)}")
            for amount in amounts for index, (cx, cy) in enumerate(centres, 1)]


def _families(config: Config) -> dict[str, list[Step]]:
    """Every variant of every registered augmentation the config turns on, in a fixed order."""
    g = config.generator
    shears = _tuples(config, "shear_factors", ("x", "y"))
    for x, y in shears:
        _require(config, "shear_factors", x * y < 0.9, f"[{_num(x)}, {_num(y)}] folds the image flat (x·y must be < 0.9)")
    elastics = _tuples(config, "elastic", ("alpha", "sigma"))
    for _, sigma in elastics:
        _require(config, "elastic", sigma > 0, "sigma (the second number) must be > 0")
    grids = _tuples(config, "grid_distortion", ("strength", "cells"))
    for strength, cells in grids:
        _require(config, "grid_distortion", strength < 0.5, "strength must be < 0.5 of a cell (the grid would fold)")
        _require(config, "grid_distortion", cells >= 2 and float(cells).is_integer(), "grid cells must be a whole number >= 2")
    families = {
        "hflip": [Step("hflip", (), "hflip")] if g.hflip else [],
        "vflip": [Step("vflip", (), "vflip")] if g.vflip else [],
        "rotation": [Step("rotation", (("angle", a),), f"rot{_num(a)}") for a in g.rotation_angles],
        "shrink": [Step("shrink", (("ratio", r),), f"shrink{_num(r)}") for r in g.shrink_ratios],
        "shear": [Step("shear", (("x", x), ("y", y)), f"shear_x{_num(x)}_y{_num(y)}") for x, y in shears],
        "elastic": [Step("elastic", (("alpha", a), ("sigma", s)), f"elastic_a{_num(a)}_s{_num(s)}") for a, s in elastics],
        "grid": [Step("grid", (("strength", s), ("cells", c)), f"grid_s{_num(s)}_g{_num(c)}") for s, c in grids],
        "barrel": _radial_steps(config, "barrel"),
        "pincushion": _radial_steps(config, "pincushion"),
        "gamma": [Step("gamma", (("gamma", v),), f"gamma{_num(v)}") for v in g.gamma],
        "contrast": [Step("contrast", (("factor", v),), f"contrast{_num(v)}") for v in g.contrast],
        "brightness": [Step("brightness", (("shift", v),), f"brightness{_num(v)}") for v in g.brightness],
        "noise": [Step("noise", (("std", v),), f"noise{_num(v)}") for v in g.noise],
    }
    for name, steps in families.items():
        tags = [step.tag for step in steps]
        _require(config, CONFIG_KEYS[name], len(set(tags)) == len(tags), "lists the same variant twice (their outputs would overwrite each other)")
    return families


def build_recipe(config: Config) -> tuple[Output, ...]:
    """The outputs every source gets: each configured variant alone, then every combination of each chain."""
    families = _families(config)
    recipe = [Output((step,)) for steps in families.values() for step in steps]
    for chain in config.generator.chains:
        for name in chain:
            AUGMENTATIONS.get(name, f"{config.path}: [generator] chains")
            hint = f"set [generator] {CONFIG_KEYS[name]} to chain it" if name in CONFIG_KEYS else "no [generator] key configures it"
            _require(config, "chains", bool(families.get(name)), f"{name!r} is chained but has no variants; {hint}")
        recipe += [Output(steps) for steps in itertools.product(*(families[name] for name in chain))]
    tags = [output.tag for output in recipe]
    _require(config, "chains", len(set(tags)) == len(tags), "lists the same chain twice (their outputs would overwrite each other)")
    return tuple(recipe)


def output_seed(base_seed: int, split: str, source: str, tag: str) -> int:
    """The seed of one output: stable across runs, machines and worker counts."""
    digest = hashlib.sha256(f"{base_seed}/{split}/{source}/{tag}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# --- dataset scanning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One source image and its partners, paired by file name (stem)."""

    split: str
    name: str
    image: Path
    masks: tuple[tuple[str, Path], ...]  # (subfolder, file)
    low_res: tuple[tuple[str, Path], ...]  # (subfolder, file)


@dataclass(frozen=True)
class Settings:
    """The picklable part of `[generator]` a worker process needs."""

    output_dir: Path
    seed: int
    border: Border
    recipe: tuple[Output, ...]
    degradations: dict[str, tuple[DegradationSpec, int]]  # LR subfolder → (spec, seed)


def _read_manifest(input_dir: Path) -> dict[str, Any]:
    path = input_dir / "manifest.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object.")
    return manifest


def _degradations(manifest: dict[str, Any], input_dir: Path) -> dict[str, tuple[DegradationSpec, int]]:
    """LR subfolder → the degradation (and seed) `prepare` recorded for it."""
    found = {}
    recorded_sr = manifest.get("sr", {})
    if not isinstance(recorded_sr, dict):
        raise DataError(f"{input_dir / 'manifest.json'}: \"sr\" must map scales to their LR folder and degradation.")
    for key, entry in recorded_sr.items():
        try:
            recorded = entry["degradation"]
            spec = DegradationSpec(str(recorded["name"]), int(recorded["scale"]), float(recorded.get("blur_sigma", 0.0)),
                                   float(recorded.get("noise_std", 0.0)))
            found[str(entry["lr_subdir"])] = (spec, int(entry.get("seed", 0)))
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{input_dir / 'manifest.json'}: sr entry {key!r} is incomplete ({error!r}); expected "
                            "lr_subdir, seed and degradation {name, scale, blur_sigma, noise_std}.") from None
        if spec.name not in DEGRADATIONS:
            raise DataError(f"{input_dir / 'manifest.json'}: sr entry {key!r} names the unknown degradation {spec.name!r} "
                            f"(known: {', '.join(DEGRADATIONS.names())}).")
    return found


def _by_stem(folder: Path) -> dict[str, Path]:
    files = list_images(folder)
    by_stem = {path.stem: path for path in files}
    if len(by_stem) != len(files):
        twins = sorted({p.name for p in files if sum(q.stem == p.stem for q in files) > 1})
        raise DataError(f"{folder}: several files share a name ({', '.join(twins)}); pairing by name needs one per name.")
    return by_stem


def scan_split(split_dir: Path, degradations: dict[str, Any]) -> tuple[list[Source], list[str]]:
    """The sources of one split with their partner files, and the problems of sources lacking one."""
    split = split_dir.name
    folders = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if IMAGES not in folders:
        raise DataError(f"{split_dir}: no {IMAGES}/ folder; expected {IMAGES}/, masks*/ and lr_x*/ subfolders.")
    mask_dirs = [f for f in folders if f.startswith("masks")]
    low_dirs = [f for f in folders if f in degradations]
    for folder in sorted(set(folders) - {IMAGES, *mask_dirs, *low_dirs}):
        if folder.startswith("lr_"):
            raise DataError(f"{split_dir / folder}: LR images, but the dataset's manifest.json records no degradation for "
                            f"{folder!r}, so they cannot be regenerated from augmented images.")
        log.warning("%s: not an images/masks*/LR folder; left out of the augmented split.", split_dir / folder)
    images = _by_stem(split_dir / IMAGES)
    partners = {folder: _by_stem(split_dir / folder) for folder in mask_dirs + low_dirs}
    sources, problems = [], []
    for stem, image in images.items():
        missing = [folder for folder in partners if stem not in partners[folder]]
        if missing:
            problems.append(f"{image}: no file named {stem}.* in {', '.join(f'{f}/' for f in missing)} (files are paired by name).")
            continue
        sources.append(Source(split, stem, image, tuple((f, partners[f][stem]) for f in mask_dirs),
                              tuple((f, partners[f][stem]) for f in low_dirs)))
    for folder, files in partners.items():
        orphans = sorted(set(files) - set(images))
        if orphans:
            log.warning("%s: %d file(s) without an image of the same name, ignored: %s", split_dir / folder, len(orphans), ", ".join(orphans[:5]))
    return sources, problems


# --- writing ------------------------------------------------------------------------------------


def _copy_file(source: Path, target: Path) -> None:
    with atomic_path(target) as temp:
        shutil.copyfile(source, temp)


def _copy_tree(source_dir: Path, target_dir: Path) -> int:
    """Copy a split unchanged (hidden files skipped); returns the number of files."""
    count = 0
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            _copy_file(path, target_dir / relative)
            count += 1
    return count


def augment_source(source: Source, settings: Settings) -> list[dict[str, Any]]:
    """Copy one source's files and write all its augmented outputs; returns its manifest rows."""
    image = read_image(source.image)
    masks = tuple(read_mask(path) for _, path in source.masks)
    for (_, path), mask in zip(source.masks, masks):
        if mask.shape != image.shape:
            raise DataError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {source.image} is "
                            f"{image.shape[1]}x{image.shape[0]}.")
    split_dir = settings.output_dir / source.split
    for folder, path in ((IMAGES, source.image), *source.masks, *source.low_res):
        _copy_file(path, split_dir / folder / path.name)
    rows = [{"split": source.split, "source": source.name, "output": source.image.name, "transform": "original",
             "parameters": "[]", "seed": ""}]
    for output in settings.recipe:
        seed = output_seed(settings.seed, source.split, source.name, output.tag)
        steps = [(step.name, dict(step.params)) for step in output.steps]
        result = apply_steps(Pair(image, masks), steps, seed, settings.border)
        name = f"{source.name}_{output.tag}.png"
        write_png(split_dir / IMAGES / name, result.image)
        for (folder, _), mask in zip(source.masks, result.masks):
            write_png(split_dir / folder / name, mask)
        for folder, _ in source.low_res:
            spec, low_seed = settings.degradations[folder]
            write_png(split_dir / folder / name, degrade(result.image, spec, low_seed))
        rows.append({"split": source.split, "source": source.name, "output": name, "transform": output.transform,
                     "parameters": output.parameters, "seed": seed})
    return rows


def _job(args: tuple[Source, Settings]) -> tuple[Source, list[dict[str, Any]], str | None]:
    source, settings = args
    try:
        return source, augment_source(source, settings), None
    except DataError as error:
        return source, [], str(error)


@contextlib.contextmanager
def _one_cv2_thread() -> Iterator[None]:
    """One worker = one core: OpenCV's own threads would blur what `workers` means."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _run_jobs(jobs: list[tuple[Source, Settings]], workers: int) -> Iterator[tuple[Source, list[dict[str, Any]], str | None]]:
    if workers <= 1 or len(jobs) <= 1:
        with _one_cv2_thread():
            yield from map(_job, jobs)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        yield from pool.map(_job, jobs, chunksize=1)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _check_folders(config: Config, input_dir: Path, output_dir: Path) -> None:
    if not input_dir.is_dir():
        raise config.error("generator", "input_dir", "folder not found")
    source, target = input_dir.resolve(), output_dir.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise config.error("generator", "output_dir", f"must lie outside input_dir ({input_dir}) and not contain it")


def _check_names(sources: list[Source], recipe: tuple[Output, ...]) -> None:
    """An output named like another source's file would silently replace it."""
    taken = {source.name for source in sources}
    for source in sources:
        for output in recipe:
            if f"{source.name}_{output.tag}" in taken:
                raise DataError(f"{source.image}: its output {source.name}_{output.tag}.png has the name of another source "
                                "image of the split; rename one of them.")


def run_augment(config: Config) -> int:
    """Write the augmented dataset; returns the exit code (2 when some sources failed)."""
    g = config.generator
    input_dir: Path = config.need("generator", "input_dir", "augment")
    output_dir: Path = config.need("generator", "output_dir", "augment")
    _check_folders(config, input_dir, output_dir)
    recipe = build_recipe(config)
    manifest = _read_manifest(input_dir)
    settings = Settings(output_dir, g.seed, Border(g.border_mode, g.border_value), recipe, _degradations(manifest, input_dir))
    present = [split for split in SPLITS if (input_dir / split).is_dir()]
    for split in g.splits:
        if split not in present:
            raise DataError(f"{input_dir}: no {split}/ folder, but [generator] splits asks to augment it.")
    sources, failures = [], []
    for split in g.splits:
        found, problems = scan_split(input_dir / split, settings.degradations)
        _check_names(found, recipe)
        sources += found
        failures += problems

    start_output_folder(config, "generator", "augment.log")  # the first write, once the config is known good
    log_path = output_dir / "augment.log"
    if not recipe:
        log.warning("augment: no augmentation is turned on in [generator]; the output is a plain copy.")
    for split in present:
        if split not in g.splits:
            log.info("augment: %s/ copied unchanged (%d files).", split, _copy_tree(input_dir / split, output_dir / split))
    log.info("augment: %d source images × %d outputs in %s, %d workers → %s", len(sources), len(recipe),
             "/".join(g.splits), g.workers, output_dir)

    rows: list[dict[str, Any]] = []
    written: dict[str, list[str]] = {split: [] for split in g.splits}
    done = 0
    jobs = [(source, settings) for source in sources]
    for source, source_rows, error in progress(_run_jobs(jobs, g.workers), total=len(jobs), desc="augment", unit="src"):
        if error:
            failures.append(error)
            log.error("FAILED %s", error)
            continue
        done += 1
        rows += source_rows
        written[source.split] += [Path(row["output"]).stem for row in source_rows]
    atomic_write_text(output_dir / MANIFEST_CSV, _csv_text(rows))
    if manifest:
        splits = {**manifest.get("splits", {}), **{split: sorted(names) for split, names in written.items()}}
        updated = {**manifest, "splits": splits, "augmentation": {"input_dir": str(input_dir), "manifest": MANIFEST_CSV}}
        atomic_write_text(output_dir / "manifest.json", json.dumps(updated, indent=1))
    log.info("augment: %d pairs written from %d source images, %d failed. Dataset: %s (log: %s)",
             len(rows), done, len(failures), output_dir, log_path)
    if failures:
        log.error("Source images that could not be augmented:\n  %s", "\n  ".join(failures))
        return 2
    return 0
