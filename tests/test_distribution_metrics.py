"""Distribution metrics (FID, KID, PRDC, classifier score, diversity) and the feature extractors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import scipy.linalg

from mammogan.data.images import read_image
from mammogan.errors import ConfigError
from mammogan.metrics.distribution import (
    classifier_score,
    fid,
    frechet_distance,
    frechet_radiomics_distance,
    kid,
    mean_pairwise_ms_ssim,
    polynomial_mmd2_unbiased,
    prdc,
)
from mammogan.metrics.features import INCEPTION_TOP_WEIGHTS_FILE, INCEPTION_WEIGHTS_FILE, build_inception
from mammogan.metrics.full_reference import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_scales_that_fit
from mammogan.registry import FEATURE_EXTRACTORS

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"


def gaussian_sets(seed: int, n: int = 400, dim: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix_a, mix_b = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
    real = rng.normal(size=(n, dim)) @ mix_a + rng.normal(size=dim)
    fake = rng.normal(size=(n, dim)) @ mix_b + rng.normal(size=dim)
    return real, fake


def scipy_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """The usual formula with scipy.linalg.sqrtm (as in pytorch-fid), as an independent reference."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fid_equals_scipy_sqrtm_reference(seed: int) -> None:
    real, fake = gaussian_sets(seed)
    assert fid(real, fake) == pytest.approx(scipy_fid(real, fake), rel=1e-3)


def test_frechet_distance_closed_form_for_diagonal_covariances() -> None:
    # For commuting covariances: |mu1 - mu2|² + sum (sqrt(a) - sqrt(b))².
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fid_of_identical_sets_is_zero_even_with_singular_covariance() -> None:
    real, _ = gaussian_sets(3)
    assert fid(real, real) == pytest.approx(0.0, abs=1e-8)
    few = real[:8]  # 8 samples in 12 dimensions: singular covariance
    assert fid(few, few) == pytest.approx(0.0, abs=1e-8)


def test_kid_is_unbiased_and_detects_a_shift() -> None:
    """Mean KID over many draws of two samples from one distribution is ~0; a biased estimator is not."""
    rng = np.random.default_rng(11)
    draws, biased = [], []
    for _ in range(1000):
        x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
        draws.append(kid(x, y, subsets=2, subset_size=30, seed=int(rng.integers(1 << 30))).mean)
        k_xx, k_yy, k_xy = ((x @ x.T / 8 + 1) ** 3), ((y @ y.T / 8 + 1) ** 3), ((x @ y.T / 8 + 1) ** 3)
        biased.append(k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    # Within 4 standard errors of 0; the biased (V-statistic) estimate is ~100 standard errors away.
    assert abs(np.mean(draws)) < 4 * np.std(draws) / np.sqrt(len(draws))
    assert np.mean(biased) > 20 * np.std(biased) / np.sqrt(len(biased))

    x, y = rng.normal(size=(200, 8)), rng.normal(loc=0.5, size=(200, 8))
    shifted = kid(x, y, subsets=20, subset_size=100)
    assert shifted.mean > 5 * shifted.std > 0
    assert (shifted.subsets, shifted.subset_size) == (20, 100)
    assert kid(x, y, subset_size=5000).subset_size == 200  # capped at the smaller set


def test_polynomial_mmd_matches_explicit_sums() -> None:
    x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1.0, 1.0], [0.0, 0.0], [2.0, 0.0]])

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / 2 + 1) ** 3

    within_x = 2 * k(x[0], x[1]) / 2
    within_y = 2 * (k(y[0], y[1]) + k(y[0], y[2]) + k(y[1], y[2])) / 6
    across = sum(k(a, b) for a in x for b in y) / 6
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(within_x + within_y - 2 * across, rel=1e-12)


def test_prdc_hand_computed_example() -> None:
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k=1: every real radius is 1; both fake radii are 9.5. Fake 0.5 lies in the balls of reals 0 and 1,
    # fake 10 in none; reals 0 and 1 have a fake closer than their radius.
    result = prdc(real, fake, k=1)
    assert (result.precision, result.recall, result.density, result.coverage) == (0.5, 1.0, 1.0, 0.5)


def test_prdc_sees_mode_dropping_and_identical_sets() -> None:
    rng = np.random.default_rng(5)
    modes = np.array([[0.0, 0.0], [20.0, 0.0]])
    real = np.concatenate([rng.normal(size=(200, 2)) + mode for mode in modes])
    fake = rng.normal(size=(200, 2)) + modes[0]  # only the first mode
    dropped = prdc(real, fake, k=5)
    assert dropped.precision > 0.95 and dropped.coverage < 0.55 and dropped.recall < 0.55
    same = prdc(real, real, k=5)
    assert (same.precision, same.recall, same.coverage) == (1.0, 1.0, 1.0)
    assert same.density == pytest.approx(1.0, abs=0.25)


def test_classifier_score_extremes() -> None:
    confident_even = np.eye(4)[np.arange(40) % 4]
    assert classifier_score(confident_even, splits=2).mean == pytest.approx(4.0)
    assert classifier_score(np.eye(4)[np.zeros(40, int)], splits=2).mean == pytest.approx(1.0)
    assert classifier_score(np.full((40, 4), 0.25), splits=2).mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="softmax"):
        classifier_score(np.full((40, 4), 2.0), splits=2)


def test_classifier_score_hand_computed() -> None:
    # p(y) = (0.75, 0.25); KL of [1, 0] is ln(4/3), of [0.5, 0.5] is 0.5 ln(2/3) + 0.5 ln 2 = 0.5 ln(4/3).
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5]])
    single = classifier_score(probabilities, splits=1)
    assert single.mean == pytest.approx((4 / 3) ** 0.75, rel=1e-12) and single.std == 0.0
    # Consecutive splits: two distinct one-hots score 2, two uniform rows score 1 → mean 1.5, std 0.5.
    split = classifier_score(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]]), splits=2)
    assert (split.mean, split.std, split.splits) == (pytest.approx(1.5), pytest.approx(0.5), 2)


def test_mean_pairwise_ms_ssim() -> None:
    rng = np.random.default_rng(2)
    noise = rng.uniform(size=(4, 64, 64, 1)).astype(np.float32)
    three = MS_SSIM_WEIGHTS[:3]
    identical = np.repeat(noise[:1], 3, axis=0)
    assert mean_pairwise_ms_ssim(identical, power_factors=three) == pytest.approx(1.0, abs=1e-5)
    assert mean_pairwise_ms_ssim(noise, power_factors=three) < 0.1

    crops = np.stack([read_image(p) for p in sorted(FIXTURES.glob("a8_*_ref.png"))])[..., None] / 255.0
    crops = crops.astype(np.float32)
    pairs = [(0, 1), (0, 2), (1, 2)]
    manual = np.mean([ms_ssim(crops[i : i + 1], crops[j : j + 1], 1.0).numpy()[0] for i, j in pairs])
    assert mean_pairwise_ms_ssim(crops) == pytest.approx(manual, rel=1e-5)
    sampled = mean_pairwise_ms_ssim(crops, max_pairs=2, seed=4)
    assert sampled == mean_pairwise_ms_ssim(crops, max_pairs=2, seed=4)
    assert min(ms_ssim(crops[i : i + 1], crops[j : j + 1], 1.0).numpy()[0] for i, j in pairs) <= sampled


def test_ms_ssim_scales_that_fit_small_patches() -> None:
    assert [ms_ssim_scales_that_fit(side) for side in (10, 11, 20, 21, 32, 41, 64, 81, 160, 161, 512)] == [
        0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    patches = np.random.default_rng(4).uniform(size=(3, 32, 32, 1)).astype(np.float32)
    assert 0.0 < mean_pairwise_ms_ssim(patches, power_factors=MS_SSIM_WEIGHTS[:ms_ssim_scales_that_fit(32)]) < 0.2


def test_feature_extractor_registry() -> None:
    assert FEATURE_EXTRACTORS.names() == ["domain", "inception", "random_cnn", "texture"]
    with pytest.raises(ConfigError, match="Did you mean 'inception'"):
        FEATURE_EXTRACTORS.get("incepton")


def test_random_cnn_is_seeded_and_says_it_is_random() -> None:
    build = FEATURE_EXTRACTORS.get("random_cnn")
    images = np.random.default_rng(0).uniform(size=(3, 96, 80, 1))
    first, again, other = build(seed=1), build(seed=1), build(seed=2)
    assert "random" in first.name and "untrained" in first.name and "seed1" in first.name
    features = first.features(images)
    assert features.shape == (3, 256) and features.dtype == np.float64
    np.testing.assert_array_equal(features, again.features(images))
    assert not np.allclose(features, other.features(images))
    assert np.ptp(features, axis=0).max() > 0  # differs between images
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        first.features(images * 255)


def test_inception_without_weights_explains_where_to_put_them(tmp_path: Path, monkeypatch) -> None:
    def no_download(*args, **kwargs):
        raise AssertionError("attempted a download")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_download)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    expected = tmp_path / "keras" / "models" / INCEPTION_WEIGHTS_FILE
    with pytest.raises(ConfigError, match=f"put {INCEPTION_WEIGHTS_FILE} at {expected}"):
        build_inception()
    with pytest.raises(ConfigError, match=f"{tmp_path / 'nowhere.h5'}: InceptionV3 weights file not found"):
        build_inception(tmp_path / "nowhere.h5")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="broken.h5: not usable as InceptionV3"):
        build_inception(tmp_path / "broken.h5")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras' legacy HDF5 writer
def test_inception_loads_weights_from_the_keras_cache(tmp_path: Path, monkeypatch) -> None:
    """A stand-in weights file in Keras' legacy HDF5 layout (that of the published file) is really loaded."""
    from keras.src.legacy.saving import legacy_h5_format  # the only writer of the published file's layout

    source = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    with h5py.File(cache / INCEPTION_WEIGHTS_FILE, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    extractor = FEATURE_EXTRACTORS.get("inception")()
    assert extractor.name == f"inception_v3:{INCEPTION_WEIGHTS_FILE}"
    assert not extractor.has_classifier and INCEPTION_TOP_WEIGHTS_FILE in extractor.no_classifier_reason
    images = np.random.default_rng(1).uniform(size=(2, 128, 128, 1))
    embedding = extractor.embed(images)
    features = embedding.features
    assert features.shape == (2, 2048) and embedding.probabilities is None
    resized = keras.ops.image.resize(np.repeat(images, 3, axis=-1), (299, 299), antialias=True)
    direct = source(keras.applications.inception_v3.preprocess_input(np.asarray(resized) * 255.0), training=False)
    np.testing.assert_allclose(features, direct, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras' legacy HDF5 writer
def test_inception_with_top_weights_gives_imagenet_probabilities(tmp_path: Path) -> None:
    """The with-top file (its `predictions` layer is detected) adds the softmax head for the classifier score."""
    from keras.src.legacy.saving import legacy_h5_format

    source = keras.applications.InceptionV3(include_top=True, weights=None, input_shape=(299, 299, 3))
    weights = tmp_path / INCEPTION_TOP_WEIGHTS_FILE
    with h5py.File(weights, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)

    extractor = build_inception(weights)
    assert extractor.name == f"inception_v3:{INCEPTION_TOP_WEIGHTS_FILE}" and extractor.has_classifier
    images = np.random.default_rng(2).uniform(size=(2, 64, 64, 1))
    embedding = extractor.embed(images)
    resized = keras.ops.image.resize(np.repeat(images, 3, axis=-1), (299, 299), antialias=True)
    network_input = keras.applications.inception_v3.preprocess_input(np.asarray(resized) * 255.0)
    pooled = keras.Model(source.input, source.get_layer("avg_pool").output)(network_input, training=False)
    np.testing.assert_allclose(embedding.features, pooled, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(embedding.probabilities, source(network_input, training=False), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(embedding.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_frd_writes_both_sets_as_png_folders_for_the_package(monkeypatch, tmp_path: Path) -> None:
    """frd-score is not installed here: a stand-in module checks what MammoGAN hands to compute_frd."""
    seen = {}

    def compute_frd(paths):
        seen["pngs"] = [sorted(Path(p).glob("*.png")) for p in paths]
        seen["first"] = [read_image(pngs[0]) for pngs in seen["pngs"]]
        return 3.25

    monkeypatch.setitem(sys.modules, "frd_score", types.SimpleNamespace(compute_frd=compute_frd))
    monkeypatch.setitem(sys.modules, "radiomics", types.SimpleNamespace())
    real, fake = np.full((3, 16, 16), 0.5, np.float32), np.ones((2, 16, 16), np.float32)
    assert frechet_radiomics_distance(real, fake) == 3.25
    assert [len(pngs) for pngs in seen["pngs"]] == [3, 2]
    assert seen["first"][0].max() == 128 and seen["first"][1].min() == 255
    assert not seen["pngs"][0][0].exists()  # the temporary folders are removed

    monkeypatch.setitem(sys.modules, "radiomics", None)  # frd-score present, its pyradiomics backend missing
    with pytest.raises(ImportError, match="requirements-extra.txt"):
        frechet_radiomics_distance(real, fake)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras' model saving
def test_domain_extractor_uses_the_penultimate_layer(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(32, 32, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    embedding = keras.layers.Dense(6, activation="relu", name="embedding")(hidden)
    outputs = keras.layers.Dense(2, activation="softmax")(embedding)
    classifier = keras.Model(inputs, outputs)
    classifier.save(tmp_path / "patch_classifier.keras")

    extractor = FEATURE_EXTRACTORS.get("domain")(tmp_path / "patch_classifier.keras")
    assert extractor.name == "domain:patch_classifier.keras"
    images = np.random.default_rng(3).uniform(size=(5, 32, 32, 1))
    expected = keras.Model(inputs, embedding).predict_on_batch(images.astype(np.float32))
    embedding = extractor.embed(images)
    np.testing.assert_allclose(embedding.features, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embedding.probabilities, classifier.predict_on_batch(images.astype(np.float32)), rtol=1e-5)
    assert extractor.features(np.zeros((2, 64, 48, 1))).shape == (2, 6)  # resized to the input size

    with pytest.raises(ConfigError, match="missing.keras: domain classifier not found.*downstream-utility"):
        FEATURE_EXTRACTORS.get("domain")(tmp_path / "missing.keras")
    with pytest.raises(ConfigError, match="needs the path"):
        FEATURE_EXTRACTORS.get("domain")()
