"""The cross-validated utility study: interval and paired-test math against hand-computed values, patient-level
folds, synthetic provenance, a tiny study end to end on the bundled sample, and resuming after a kill."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from mammogan.cli import main
from mammogan.data.cv_pool import assign_folds, load_pool, validation_patients
from mammogan.errors import ConfigError
from mammogan.metrics.classification import multiclass_scores
from mammogan.metrics.intervals import bootstrap_p_value, compare_arms, patient_resamples, percentile_interval
from mammogan.models.classifier import build_efficientnet_b0

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["normal", "mass"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- math ---------------------------------------------------------------------------------------------------


def test_percentile_interval_and_p_value_match_hand_computation():
    assert percentile_interval(np.arange(11.0), level=0.8) == pytest.approx((1.0, 9.0))
    assert percentile_interval(np.array([np.nan, 2.0, 4.0]), level=0.0) == pytest.approx((3.0, 3.0))
    assert bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(2 * 2 / 5)  # 1 at or below 0, +1 each
    assert bootstrap_p_value(np.arange(1.0, 10.0)) == pytest.approx(2 * 1 / 10)  # none at or below 0
    assert bootstrap_p_value(np.zeros(9)) == 1.0


def test_compare_arms_on_enumerated_resamples_matches_hand_computation():
    """Two patients of two patches; real_only gets patient p1 right and half of p2, the other arm all of both.
    The four resamples of two patients give real_only accuracies 1, .75, .5, .75 and differences 0, .25, .5, .25."""
    labels = np.array([0, 1, 0, 1])
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])  # patient p2's second patch is wrong for real_only
    perfect = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    resamples = [np.array([0, 1, 0, 1]), np.array([0, 1, 2, 3]), np.array([2, 3, 2, 3]), np.array([2, 3, 0, 1])]
    table = compare_arms(labels, {"real_only": [right], "gan": [perfect]}, "real_only",
                         lambda y, p: {"accuracy": float(np.mean(p.argmax(1) == y))}, resamples, level=0.5)
    real, gan = table["real_only"], table["gan"]
    assert real["accuracy"] == pytest.approx(0.75) and gan["accuracy"] == pytest.approx(1.0)
    # numpy's linear percentiles of [.5, .75, .75, 1]: 25 % at index 0.75, 75 % at index 2.25
    assert (real["accuracy_low"], real["accuracy_high"]) == pytest.approx((0.6875, 0.8125))
    assert gan["accuracy_diff"] == pytest.approx(0.25)
    assert (gan["accuracy_diff_low"], gan["accuracy_diff_high"]) == pytest.approx((0.1875, 0.3125))
    assert gan["accuracy_p"] == pytest.approx(2 * (1 + 1) / 5)  # one difference of 0 at or below zero
    assert np.isnan(real["accuracy_diff"]) and np.isnan(real["accuracy_p"])


def test_patient_bootstrap_interval_of_independent_patients_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    labels = np.zeros(400, dtype=int)
    probabilities = np.where(rng.random(400)[:, None] < 0.8, [[0.9, 0.1]], [[0.1, 0.9]])
    table = compare_arms(labels, {"real_only": [probabilities]}, "real_only",
                         lambda y, p: {"accuracy": float(np.mean(p.argmax(1) == y))},
                         patient_resamples([f"p{i}" for i in range(400)], 2000, 1))["real_only"]
    accuracy = table["accuracy"]
    half_width = 1.96 * np.sqrt(accuracy * (1 - accuracy) / 400)
    assert table["accuracy_high"] - table["accuracy_low"] == pytest.approx(2 * half_width, rel=0.15)


def test_patient_resamples_take_whole_patients():
    patients = ["a", "a", "b", "c", "c", "c"]
    for rows in patient_resamples(patients, 50, 3):
        drawn = [patients[i] for i in rows]
        for patient in set(drawn):
            assert drawn.count(patient) % patients.count(patient) == 0  # every copy brings all its rows
        assert len(rows) >= 3  # as many patients drawn as there are, each with at least one row


def test_multiclass_scores_on_a_hand_checked_example():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.array([[.8, .1, .1], [.3, .6, .1], [.1, .8, .1], [.2, .7, .1], [.1, .2, .7], [.5, .1, .4]])
    scores = multiclass_scores(labels, probabilities, ["normal", "mass", "calcification"])
    # predictions 0 1 1 1 2 0: per class recall 1/2, 1, 1/2; precision 1/2, 2/3, 1
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert scores["precision_mass"] == pytest.approx(2 / 3) and scores["recall_calcification"] == pytest.approx(0.5)
    assert scores["f1_normal"] == pytest.approx(0.5)
    assert scores["auc_calcification"] == pytest.approx(1.0)  # 0.7 and 0.4 above every other row's 0.1
    assert scores["auc"] == pytest.approx(np.mean([scores[f"auc_{c}"] for c in ("normal", "mass", "calcification")]))
    without = multiclass_scores(labels[:4], probabilities[:4], ["normal", "mass", "calcification"])
    assert np.isnan(without["auc"]) and np.isnan(without["precision_calcification"])  # a resample lacking a class
    two = multiclass_scores(labels[:4], probabilities[:4], ["normal", "mass", "calcification"], expected=[0, 1])
    assert two["balanced_accuracy"] == pytest.approx((0.5 + 1) / 2)  # an external set of two of the classes


# --- data -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, prepared_sample) -> Path:
    """The prepared bundled sample (12 films of 6 patients, normal and mass patches) as `data/`, with an augment
    and a GAN config beside it."""
    root = tmp_path_factory.mktemp("utility_cv")
    (root / "data").symlink_to(prepared_sample)  # read only: the study writes into its own output folders
    (root / "augment.config").write_text(
        '[generator]\ninput_dir = "replaced"\noutput_dir = "replaced"\nhflip = true\nvflip = false\nrotation_angles = []\n'
        'shrink_ratios = []\nshear_factors = []\nelastic = []\ngrid_distortion = []\nbarrel_amounts = []\npincushion_amounts = []\n')
    (root / "gan").mkdir()
    (root / "gan" / "train_eval_infer.config").write_text(
        '[model]\ntask = "dcgan"\ngenerator = "dcgan"\ndiscriminator = "dcgan"\nimage_size = 64\nlatent_dim = 8\nfilters = 4\n'
        'd_filters = 4\n[dataset]\ntrain_dir = "replaced"\n[train]\noutput_dir = "./output"\nbatch_size = 4\ngan_steps = 100\n'
        'tile_images = 2\n[infer]\noutput_dir = "./output/synthetic"\nnum_samples = 4\n')
    (root / "cgan").mkdir()
    (root / "cgan" / "train_eval_infer.config").write_text(
        '[model]\ntask = "conditional"\ngenerator = "conditional_dcgan"\ndiscriminator = "conditional_dcgan"\n'
        'classes = ["normal", "mass", "other"]\nimage_size = 64\nlatent_dim = 8\nfilters = 4\nd_filters = 4\n'
        '[dataset]\ntrain_dir = "replaced"\nclass_column = "lesion_class"\n[train]\noutput_dir = "./output"\nbatch_size = 4\n'
        'gan_steps = 100\ntile_images = 2\n[infer]\noutput_dir = "./output/synthetic"\nnum_samples = 4\n')
    return root


def study_config(root: Path, name: str, extra: str = "") -> Path:
    path = root / f"{name}.config"
    path.write_text(
        '[model]\ntask = "utility_cv"\nimage_size = 64\n[train]\n'
        f'output_dir = "{name}"\nbatch_size = 16\n[utility]\npatches_dir = "data/patches"\nclasses = ["normal", "mass"]\n'
        'folds = 3\nfilters = 4\nepochs = 2\nbootstrap_samples = 200\n' + extra)
    return path


def test_folds_split_patients_not_patches_and_spread_the_rare_class(prepared):
    pool, left_out = load_pool(prepared / "data" / "patches", ["train", "valid", "test"], "lesion_class", CLASSES, 0.0, 0)
    assert len(pool.patches) == 64 and left_out == {}
    fold_of = assign_folds(pool, 3, 0)
    assert sorted(fold_of) == sorted(set(pool.patients)) and sorted(set(fold_of.values())) == [0, 1, 2]
    for fold in range(3):
        test = {p for p, f in fold_of.items() if f == fold}
        training = set(fold_of) - test
        valid = validation_patients(pool, training, 0.3, fold)
        assert valid and valid < training and not valid & test
        mass_patients = {p.patient for p in pool.select(test) if p.label == 1}
        assert mass_patients  # every fold tests at least one mass patient (4 of the 6 have masses)
    one_per_film, left = load_pool(prepared / "data" / "patches", ["train"], "lesion_class", CLASSES, 1.0, 1)
    films = {p.row["source_image"] for p in one_per_film.patches if p.label == 0}
    assert sum(p.label == 0 for p in one_per_film.patches) == len(films)
    assert left["normal beyond max_normal_per_image"] > 0 and "mass" in left  # zoom 2 mass patches left out


def test_pretrained_backbone_loads_the_given_weights_and_refuses_none(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(64, 64, 3))
    weights = tmp_path / "efficientnetb0_notop.weights.h5"
    backbone.save_weights(weights)
    model = build_efficientnet_b0(64, weights, 3)
    loaded = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for mine, theirs in zip(loaded.weights, backbone.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert model.output_shape == (None, 3)
    with pytest.raises(ConfigError, match="backbone_weights is not set"):
        build_efficientnet_b0(64, None, 3)


# --- end to end -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(prepared) -> Path:
    """A finished tiny study: 3 folds × 1 seed; real, traditional, a per-class DCGAN and a conditional DCGAN (its
    classes replaced by the study's) at ratio 1, and each combined with traditional."""
    external = prepared / "external"  # the sample's test split under other patient ids: a stand-in for another site
    shutil.copytree(prepared / "data" / "patches", external / "patches")
    images = (prepared / "data" / "images.csv").read_text()
    (external / "images.csv").write_text(images.replace(",mias_p", ",site2_p"))
    config = study_config(prepared, "study", 'seeds = [4]\naugment_config = "augment.config"\nrepeat_control = true\n'
                          'synthetic_configs = ["gan/train_eval_infer.config", "cgan/train_eval_infer.config"]\ngan_steps = 4\n'
                          'synthetic_ratios = [1.0]\n'
                          'external_test_dir = "external/patches/test"\n')
    assert main(["train", str(config)]) == 0
    return prepared / "study"


def test_study_writes_one_row_per_arm_and_evaluation_with_intervals(study):
    table = read_csv(study / "utility.csv")
    arms = ["real_only", "traditional", "real_repeated", "gan@1", "cgan@1", "traditional+gan@1", "traditional+cgan@1"]
    assert [(r["evaluation"], r["arm"]) for r in table] == [(e, a) for e in ("cross_validated", "external") for a in arms]
    cross = [r for r in table if r["evaluation"] == "cross_validated"]
    assert {r["test_patches"] for r in cross} == {"64"} and {r["test_patients"] for r in cross} == {"6"}
    external = [r for r in table if r["evaluation"] == "external"]
    assert {r["runs"] for r in external} == {"3"}  # every fold classifier of the one seed scores the external patches
    for row in table:
        for metric in ("auc", "balanced_accuracy", "f1", "auc_mass"):
            assert float(row[f"{metric}_low"]) <= float(row[metric]) <= float(row[f"{metric}_high"])
    real, traditional, repeated, gan, conditional, combined, _ = cross
    assert float(traditional["train_augmented"]) == pytest.approx(float(real["train_real"]))  # hflip: one per patch
    assert float(repeated["train_real"]) == pytest.approx(2 * float(real["train_real"]))  # as many as traditional
    for synthetic in (gan, conditional, combined):  # ratio 1, every class
        assert float(synthetic["train_synthetic"]) == pytest.approx(float(synthetic["train_real"]))
    assert float(gan["auc_diff"]) == pytest.approx(float(gan["auc"]) - float(real["auc"]), abs=1e-5)
    assert (study / "utility.png").stat().st_size > 10_000
    assert "| traditional+gan@1 |" in (study / "utility.md").read_text()


def test_every_patch_is_tested_once_and_generators_train_on_the_folds_training_patients_only(study):
    folds = read_csv(study / "folds.csv")
    tested = [r["patch"] for r in folds if r["role"] == "test"]
    assert len(tested) == len(set(tested)) == 64
    for fold in range(3):
        roles = {role: {r["patient"] for r in folds if r["fold"] == str(fold) and r["role"] == role}
                 for role in ("train", "valid", "test")}
        assert not roles["train"] & roles["test"] and not roles["valid"] & (roles["train"] | roles["test"])
        sources = [r for r in read_csv(study / "provenance.csv") if r["fold"] == str(fold)]
        assert sorted(Path(r["gan_train_dir"]).parent.name for r in sources) == ["all", "mass", "normal"]  # cgan: one run
        for provenance in sources:
            names = [p.name for p in (Path(provenance["gan_train_dir"]) / "images").glob("*.png")]
            trained_on = {r["patient"] for r in folds if r["fold"] == str(fold) and r["patch"] in names}
            assert names and trained_on <= roles["train"]
            assert int(provenance["gan_train_patients"]) == len(trained_on)
        runs = read_csv(study / "runs" / f"fold{fold}" / "gan@1" / "seed4.csv")
        assert {r["patient"] for r in runs if r["set"] == "test"} == roles["test"]


def test_a_generator_trained_on_a_test_patient_stops_the_study(study, prepared):
    folds = read_csv(study / "folds.csv")
    test_patch = next(r["patch"] for r in folds if r["fold"] == "0" and r["role"] == "test")
    gan_data = study / "folds" / "fold0" / "gan_data" / "mass" / "train" / "images"
    shutil.copyfile(next((prepared / "data" / "patches").glob(f"*/images/{test_patch}")), gan_data / test_patch)
    try:
        assert main(["train", str(prepared / "study.config")]) != 0
    finally:
        (gan_data / test_patch).unlink()
    assert main(["train", str(prepared / "study.config")]) == 0  # nothing to retrain once the folder is clean


def test_a_killed_study_continues_where_it_stopped(prepared):
    config = study_config(prepared, "resumed", 'seeds = [1, 2]\naugment_config = "augment.config"\n')
    runs = prepared / "resumed" / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-m", "mammogan", "train", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(runs.rglob("seed*.csv"))) < 3 and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {path: path.stat().st_mtime_ns for path in runs.rglob("seed*.csv")}
    assert 3 <= len(before) < 12  # 3 folds × 2 arms × 2 seeds
    assert main(["train", str(config)]) == 0
    after = {path: path.stat().st_mtime_ns for path in runs.rglob("seed*.csv")}
    assert len(after) == 12 and all(after[path] == mtime for path, mtime in before.items())
    assert not list((prepared / "resumed").rglob("*.tmp*")) and not list((prepared / "resumed").rglob("*.partial"))
    assert len(read_csv(prepared / "resumed" / "utility.csv")) == 2
    config.write_text(config.read_text().replace("epochs = 2", "epochs = 3"))
    assert main(["train", str(config)]) != 0  # planned with other classifier settings: refused, nothing mixed
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in after.items())
