"""The downstream-utility benchmark end to end on the bundled sample (tiny classifier, one seed): the table's
shape, that each arm trained on exactly the data it claims, and that no test patch reached any arm."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from mammogan.cli import main
from mammogan.data.images import read_image

REPO = Path(__file__).resolve().parents[1]
ARMS = ["real_only", "real_traditional", "real_synthetic", "combined"]
AUGMENTATIONS_PER_PATCH = 2  # hflip + one rotation
SYNTHETIC_RATIO = 0.5


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "images").glob("*.png"))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """Prepared sample, its augmented patches, a GAN `infer` folder, and a finished utility run."""
    root = tmp_path_factory.mktemp("utility")
    shutil.copytree(REPO / "sample", root / "sample")
    (root / "prepare.config").write_text(
        '[prepare]\nkind = "mias"\ninput_dir = "sample/mias"\ninfo_file = "sample/mias/Info.txt"\n'
        'output_dir = "data"\nbit_depth = 8\nsr_scales = [2]\n')
    assert main(["prepare", str(root / "prepare.config")]) == 0
    (root / "augment.config").write_text(
        '[generator]\ninput_dir = "data/patches"\noutput_dir = "augmented"\nhflip = true\nvflip = false\n'
        'rotation_angles = [90.0]\nshrink_ratios = []\nshear_factors = []\nelastic = []\ngrid_distortion = []\n'
        'barrel_amounts = []\npincushion_amounts = []\n')
    assert main(["augment", str(root / "augment.config")]) == 0

    gan = root / "gan"  # an untrained generator stands in for a trained one: only the folder's provenance matters here
    keras.utils.set_random_seed(0)
    latent = keras.Input((8,))
    image = keras.layers.Reshape((64, 64, 1))(keras.layers.Dense(64 * 64, activation="tanh")(latent))
    (gan / "output" / "models" / "best").mkdir(parents=True)
    keras.Model(latent, image).save(gan / "output" / "models" / "best" / "generator.keras")
    (gan / "train_eval_infer.config").write_text(
        '[model]\ntask = "dcgan"\nimage_size = 64\nlatent_dim = 8\n[dataset]\ntrain_dir = "../data/patches/train"\n'
        '[train]\noutput_dir = "./output"\n[infer]\noutput_dir = "./output/synthetic"\nnum_samples = 30\n')
    assert main(["infer", str(gan / "train_eval_infer.config")]) == 0

    (root / "utility.config").write_text(
        '[model]\ntask = "utility"\nimage_size = 64\n'
        '[dataset]\ntrain_dir = "data/patches/train"\nvalid_dir = "data/patches/valid"\ntest_dir = "data/patches/test"\n'
        '[train]\noutput_dir = "run"\nbatch_size = 16\n'
        f'[utility]\naugmented_dir = "augmented"\nsynthetic_dir = "gan/output/synthetic"\nsynthetic_ratio = {SYNTHETIC_RATIO}\n'
        'synthetic_class = "lesion"\nfilters = 4\nepochs = 2\nseeds = [5]\n')
    assert main(["train", str(root / "utility.config")]) == 0
    return root


def test_table_has_one_row_per_arm_with_every_metric(experiment):
    summary = read_csv(experiment / "run" / "utility.csv")
    assert [row["arm"] for row in summary] == ARMS
    for metric in ("accuracy", "auc", "f1", "recall_lesion", "recall_normal"):
        for row in summary:
            assert 0.0 <= float(row[f"{metric}_mean"]) <= 1.0
            assert row[f"{metric}_std"] == "nan"  # one seed: no spread
        assert all(row[f"{metric}_vs_real_only_mean"] == "nan" for row in summary[:1])
        for row in summary[1:]:  # the paired difference with one seed is the plain difference
            difference = float(row[f"{metric}_mean"]) - float(summary[0][f"{metric}_mean"])
            assert float(row[f"{metric}_vs_real_only_mean"]) == pytest.approx(difference, abs=1e-5)
    assert {row["test_images"] for row in summary} == {str(len(names_in(experiment / "data" / "patches" / "test")))}
    assert len(read_csv(experiment / "run" / "utility_runs.csv")) == len(ARMS)
    assert read_image(experiment / "run" / "utility.png").shape[1] >= 800
    assert sorted(p.name for p in (experiment / "run" / "models").glob("*.keras")) == sorted(f"{a}_seed5.keras" for a in ARMS)


def test_arms_used_the_data_they_claim(experiment):
    patches = experiment / "data" / "patches"
    real = names_in(patches / "train")
    synthetic = round(SYNTHETIC_RATIO * len(real))
    augmented = AUGMENTATIONS_PER_PATCH * len(real)
    expected = {"real_only": (len(real), 0, 0), "real_traditional": (len(real), augmented, 0),
                "real_synthetic": (len(real), 0, synthetic), "combined": (len(real), augmented, synthetic)}
    for row in read_csv(experiment / "run" / "utility.csv"):
        assert (int(row["train_real"]), int(row["train_augmented"]), int(row["train_synthetic"])) == expected[row["arm"]]

    lesions = {r["patch"] for r in read_csv(patches / "metadata.csv") if r["lesion_class"] != "normal"}
    real_lesions = len(set(real) & lesions)
    runs = {row["arm"]: row for row in read_csv(experiment / "run" / "utility_runs.csv")}
    assert int(runs["real_only"]["train_lesion"]) == real_lesions
    assert int(runs["real_traditional"]["train_lesion"]) == real_lesions * (1 + AUGMENTATIONS_PER_PATCH)
    assert int(runs["real_synthetic"]["train_lesion"]) == real_lesions + synthetic  # synthetic_class = "lesion"

    listed = read_csv(experiment / "run" / "training_sets.csv")
    combined = [row for row in listed if row["arm"] == "combined"]
    assert sorted(Path(r["image"]).name for r in combined if r["origin"] == "real") == real
    for row in (r for r in combined if r["origin"] == "augmented"):
        assert Path(row["image"]).parent == experiment / "augmented" / "train" / "images"
        assert row["source"] in real and row["label"] == ("lesion" if row["source"] in lesions else "normal")
    assert {Path(r["image"]).parent for r in combined if r["origin"] == "synthetic"} == {
        experiment / "gan" / "output" / "synthetic" / "images"}


def test_no_test_image_appears_in_any_training_arm(experiment):
    patches = experiment / "data" / "patches"
    held_out = set(names_in(patches / "test")) | set(names_in(patches / "valid"))
    test_images = [read_image(patches / "test" / "images" / name) for name in names_in(patches / "test")]
    variants = {np.rot90(np.fliplr(image) if flip else image, k).tobytes()
                for image in test_images for flip in (False, True) for k in range(4)}
    listed = read_csv(experiment / "run" / "training_sets.csv")
    assert {row["arm"] for row in listed} == set(ARMS)
    for row in listed:
        assert Path(row["image"]).name not in held_out and row["source"] not in held_out
        assert read_image(Path(row["image"])).tobytes() not in variants


def test_evaluate_refreshes_the_same_summary(experiment):
    before = (experiment / "run" / "utility.csv").read_text()
    (experiment / "run" / "utility.csv").unlink()
    assert main(["evaluate", str(experiment / "utility.config")]) == 0
    assert (experiment / "run" / "utility.csv").read_text() == before


def test_synthetic_data_from_a_gan_trained_on_test_patches_is_refused(experiment, log_text):
    leaky = experiment / "leaky"
    shutil.copytree(experiment / "gan" / "output" / "synthetic", leaky)
    resolved = leaky / "resolved.config"
    test_dir = experiment / "data" / "patches" / "test"
    resolved.write_text(resolved.read_text().replace(str(experiment / "data" / "patches" / "train"), str(test_dir)))
    config = experiment / "leaky.config"
    config.write_text((experiment / "utility.config").read_text()
                      .replace('synthetic_dir = "gan/output/synthetic"', 'synthetic_dir = "leaky"').replace('"run"', '"leaky_run"'))
    assert main(["train", str(config)]) == 2
    assert "validation/test patches" in log_text() and not (experiment / "leaky_run" / "utility_runs.csv").exists()


def test_conditional_samples_are_labelled_by_class_and_drawn_in_turn(experiment):
    """A conditional GAN's manifest names each sample's class: "normal" → normal, lesion classes → lesion, and
    the draw alternates classes instead of taking the manifest's first (single-class) block."""
    from mammogan.config import load_config
    from mammogan.data.labelled_patches import CLASSES, synthetic_patches

    folder = experiment / "conditional"
    shutil.copytree(experiment / "gan" / "output" / "synthetic", folder)
    rows = read_csv(folder / "manifest.csv")
    classes = ["normal"] * 20 + ["mass"] * 10  # grouped by class, as a conditional `infer` writes them
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "class"])
        writer.writeheader()
        writer.writerows({**row, "class": name} for row, name in zip(rows, classes))
    config = load_config(experiment / "utility.config")  # its synthetic_class ("lesion") must not be used here
    patches = synthetic_patches(config, folder, 8, 64, held_out=[])
    assert list(patches.labels) == [CLASSES.index("normal"), CLASSES.index("lesion")] * 4
    assert [path.name for path in patches.paths][:2] == [rows[0]["image"], rows[20]["image"]]


def test_paired_comparison_over_seeds_has_a_t_test(experiment):
    """Three seeds whose combined-arm accuracy beats real only by 0.1, 0.2, 0.3: t = 0.2 / (0.1 / √3), df 2."""
    run = experiment / "seeds_run"
    run.mkdir()
    rows = read_csv(experiment / "run" / "utility_runs.csv")
    seeded = []
    for seed, gain in ((1, 0.1), (2, 0.2), (3, 0.3)):
        for row in rows:
            if row["arm"] in ("real_only", "combined"):
                accuracy = 0.5 + (gain if row["arm"] == "combined" else 0.0)
                seeded.append({**row, "seed": str(seed), "accuracy": str(accuracy)})
    with (run / "utility_runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(seeded)
    config = experiment / "seeds.config"
    config.write_text((experiment / "utility.config").read_text().replace('"run"', '"seeds_run"'))
    assert main(["evaluate", str(config)]) == 0
    combined = next(row for row in read_csv(run / "utility.csv") if row["arm"] == "combined")
    assert float(combined["accuracy_vs_real_only_mean"]) == pytest.approx(0.2)
    assert float(combined["accuracy_vs_real_only_p"]) == pytest.approx(0.0742, abs=5e-4)  # 2·P(T₂ > 2√3)
    assert combined["auc_vs_real_only_p"] == "nan"  # identical differences in every seed: no spread to test
