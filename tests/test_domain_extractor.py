"""The domain feature extractor end to end on the prepared bundled sample: training writes versioned
classifiers with a card, the GAN evaluator uses one by folder (named `domain:v001`, with a classifier
score), random_cnn leaves the score empty, 32 px patches get a 2-scale MS-SSIM, FRD needs its package."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import pytest

from mammogan.cli import main
from mammogan.config.loader import load_config
from mammogan.data.patch_dataset import load_patches
from mammogan.errors import ConfigError
from mammogan.evaluate.evaluator import Evaluator
from mammogan.metrics.features import DOMAIN_MODEL_FILE
from mammogan.registry import FEATURE_EXTRACTORS

SIZE = 32  # below the 41 px a 3-scale MS-SSIM needs


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained(prepared_sample: Path, tmp_path_factory) -> Path:
    """Two training runs of a tiny domain extractor (v001, v002) on the prepared sample's patches."""
    root = tmp_path_factory.mktemp("domain")
    patches = prepared_sample / "patches"
    (root / "extractor.config").write_text(
        f'[model]\ntask = "domain_extractor"\nimage_size = {SIZE}\n'
        f'[dataset]\ntrain_dir = "{patches / "train"}"\nvalid_dir = "{patches / "valid"}"\ntest_dir = "{patches / "test"}"\n'
        '[train]\noutput_dir = "out"\nseed = 3\nbatch_size = 16\n'
        '[utility]\nfilters = 4\nepochs = 2\n')
    for _ in range(2):
        assert main(["train", str(root / "extractor.config")]) == 0
    return root


@pytest.fixture(scope="module")
def gan(trained: Path, prepared_sample: Path) -> Path:
    """A GAN run folder at 32 px whose generator is a fixed untrained network (only the evaluation is tested)."""
    keras.utils.set_random_seed(0)
    latent = keras.Input((8,))
    image = keras.layers.Reshape((SIZE, SIZE, 1))(keras.layers.Dense(SIZE * SIZE, activation="tanh")(latent))
    models = trained / "gan" / "models" / "best"
    models.mkdir(parents=True)
    keras.Model(latent, image).save(models / "generator.keras")
    return trained / "gan"


def gan_config(root: Path, name: str, patches: Path, with_training: bool = True, **eval_keys: object) -> Path:
    """A GAN evaluation config; without training patches there is no real_train arm and no memorisation check."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in eval_keys.items()]
    train_dir = f'train_dir = "{patches / "train"}"\n' if with_training else ""
    path = root / f"{name}.config"
    path.write_text(
        f'[model]\ntask = "dcgan"\nimage_size = {SIZE}\nlatent_dim = 8\n'
        f'[dataset]\n{train_dir}test_dir = "{patches / "test"}"\n'
        f'[train]\noutput_dir = "gan"\n'
        f'[eval]\noutput_dir = "{name}"\nnum_samples = 16\nkid_subsets = 5\nkid_subset_size = 8\ncomparison_crops = 1\n'
        + "\n".join(lines) + "\n")
    return path


def test_each_run_adds_a_version_and_keeps_the_earlier_ones(trained: Path, caplog):
    root = trained / "out" / "domain_extractor"
    assert sorted(p.name for p in root.iterdir()) == ["v001", "v002"]  # no temporary folder left behind
    for version in ("v001", "v002"):
        assert sorted(p.name for p in (root / version).iterdir()) == ["card.json", DOMAIN_MODEL_FILE, "resolved.config"]
        assert json.loads((root / version / "card.json").read_text())["version"] == version
    with caplog.at_level("INFO"):
        assert main(["evaluate", str(trained / "extractor.config")]) == 0  # re-prints the latest card
    assert f"Domain extractor v002 → {root / 'v002'}" in caplog.text


def test_card_records_data_classes_accuracy_seed_and_size(trained: Path, prepared_sample: Path):
    card = json.loads((trained / "out" / "domain_extractor" / "v001" / "card.json").read_text())
    datetime.fromisoformat(card["date"])
    assert (card["classes"], card["seed"], card["input_size"], card["classifier"], card["filters"]) == (
        ["normal", "lesion"], 3, SIZE, "small_resnet", 4)
    patches = prepared_sample / "patches"
    lesion_class = {row["patch"]: row["lesion_class"] for row in read_csv(patches / "metadata.csv")}
    for split in ("train", "valid", "test"):
        names = sorted(p.name for p in (patches / split / "images").glob("*.png"))
        normal = sum(lesion_class[name] == "normal" for name in names)
        assert card["data"][split] == {"dir": str(patches / split), "patches": len(names),
                                       "normal": normal, "lesion": len(names) - normal}
    # The recorded test accuracy is that of the saved classifier on the test patches.
    model = keras.saving.load_model(trained / "out" / "domain_extractor" / "v001" / DOMAIN_MODEL_FILE, compile=False)
    test_names = sorted(p.name for p in (patches / "test" / "images").glob("*.png"))
    labels = np.array([lesion_class[name] != "normal" for name in test_names])
    predicted = np.asarray(model(load_patches(patches / "test", SIZE)[..., None], training=False))[:, 0] >= 0.5
    assert card["test"]["accuracy"] == pytest.approx(float(np.mean(predicted == labels)))
    assert 0.0 <= card["valid"]["accuracy"] <= 1.0 and 0.0 <= card["test"]["auc"] <= 1.0


def test_domain_extractor_is_named_by_its_version(trained: Path, caplog):
    folder = trained / "out" / "domain_extractor" / "v002"
    with caplog.at_level("INFO"):
        extractor = FEATURE_EXTRACTORS.get("domain")(folder)
    assert extractor.name == "domain:v002" and extractor.has_classifier
    assert "test accuracy" in caplog.text
    assert FEATURE_EXTRACTORS.get("domain")(folder / DOMAIN_MODEL_FILE).name == "domain:v002"
    probabilities = extractor.embed(np.random.default_rng(0).uniform(size=(3, SIZE, SIZE, 1))).probabilities
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_gan_evaluation_with_the_domain_extractor_at_32_px(trained: Path, gan: Path, prepared_sample: Path):
    config = gan_config(trained, "eval_domain", prepared_sample / "patches", feature_extractor="domain",
                        extractor_weights="out/domain_extractor/v001", classifier_score_splits=4)
    assert main(["evaluate", str(config)]) == 0
    rows = read_csv(trained / "eval_domain" / "evaluation.csv")
    assert [row["arm"] for row in rows] == ["generator", "gaussian_noise", "real_train"]
    for row in rows:
        assert row["extractor"] == "domain:v001"
        assert 1.0 <= float(row["classifier_score"]) <= 2.0 and math.isfinite(float(row["classifier_score_std"]))
        assert row["diversity_ms_ssim_scales"] == "2" and -1.0 <= float(row["diversity_ms_ssim"]) <= 1.0
        assert "frd" not in row
    assert (trained / "eval_domain" / "memorisation.csv").is_file()


def test_random_cnn_leaves_the_classifier_score_empty(trained: Path, gan: Path, prepared_sample: Path, caplog):
    config = gan_config(trained, "eval_random", prepared_sample / "patches", with_training=False, feature_extractor="random_cnn")
    with caplog.at_level("INFO"):
        assert main(["evaluate", str(config)]) == 0
    rows = read_csv(trained / "eval_random" / "evaluation.csv")
    assert [row["arm"] for row in rows] == ["generator", "gaussian_noise"]
    assert {(row["classifier_score"], row["classifier_score_std"]) for row in rows} == {("", "")}
    assert all(row["extractor"].startswith("random_cnn:") and row["kid_mean"] for row in rows)
    assert "classifier_score left empty: random_cnn is an untrained feature network" in caplog.text


def test_frd_without_its_package_names_the_key(trained: Path, prepared_sample: Path):
    config = gan_config(trained, "eval_frd", prepared_sample / "patches", with_training=False, frd=True)
    with pytest.raises(ConfigError, match=r"\[eval\] frd = (?i:true): .*pip install -r requirements-extra.txt"):
        Evaluator(load_config(config)).run()
    assert not (trained / "eval_frd").exists()  # refused before any work
