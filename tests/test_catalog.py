"""The component catalog: it matches the real registrations and builder signatures, the loader refuses keys
the chosen components do not read (saying who would read them), and config commands run without TensorFlow."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mammogan import catalog
from mammogan.config import load_config, render_config
from mammogan.config.schema import SECTIONS
from mammogan.errors import ConfigError
from mammogan.registry import REGISTRIES, Registry

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for folder in ("projects", "dataset", "generator") for p in (REPO / folder).rglob("*.config"))
BUILDER_KINDS = ("generator", "discriminator", "classifier")


def test_catalog_names_and_modules_are_the_real_registrations():
    for module in {entry.module for table in catalog.CATALOG.values() for entry in table.values()}:
        importlib.import_module(module)
    assert set(REGISTRIES) == set(catalog.CATALOG) - {"part"}
    for kind, registry in REGISTRIES.items():
        # Every registered mammogan name, with the module defining it (names tests register at run time are not mammogan's).
        registered = {name: registry.get(name).__module__ for name in registry}
        registered = {name: module for name, module in registered.items() if module.startswith("mammogan.")}
        assert registered == {name: entry.module for name, entry in catalog.CATALOG[kind].items()}, kind


def test_every_schema_key_has_a_reader_and_every_catalogued_key_exists():
    for section in SECTIONS.values():
        for key in section.keys:
            assert catalog.readers(section.name, key.name), f"[{section.name}] {key.name} is read by no component"
    for table in catalog.CATALOG.values():
        for entry in table.values():
            groups = [entry.reads] + [keys for _, keys in entry.when]
            for keys in groups:
                for section, names in keys.items():
                    assert set(names) <= {k.name for k in SECTIONS[section].keys}, (section, names)
            for conditions, _ in entry.when:
                assert all(SECTIONS[c.section].key(c.key) is not None for c in conditions)


@pytest.mark.parametrize("kind", BUILDER_KINDS)
def test_builder_parameters_are_the_keys_it_reads(kind):
    for name, entry in catalog.CATALOG[kind].items():
        parameters = set(inspect.signature(REGISTRIES[kind].get(name)).parameters)
        assert parameters == {key for keys in entry.reads.values() for key in keys} | set(entry.given), (kind, name)
        assert entry.when == ()  # a builder's keywords do not depend on other values


def test_arguments_for_gives_a_builder_its_keys_and_only_overrides_of_them(tmp_path):
    path = tmp_path / "gan.config"
    path.write_text('[model]\ntask = "dcgan"\ngenerator = "dcgan"\ndiscriminator = "dcgan"\nimage_size = 32\n'
                    'd_filters = 8\n')
    config = load_config(path)
    assert config.arguments_for("discriminator", "dcgan", d_normalization="layer") == {
        "image_size": 32, "d_filters": 8, "spectral_norm": False, "d_normalization": "layer", "d_laplacian": False,
        "d_minibatch_std": False}
    assert config.arguments_for("discriminator", "vgg", d_normalization="layer") == {
        "d_filters": 8, "d_blocks": 4, "spectral_norm": False}
    assert config.arguments_for("classifier", "small_resnet") == {"image_size": 32, "filters": 16}


def test_names_need_no_import_and_runtime_registrations_still_work():
    registry = Registry("generator")
    assert "srresnet" in registry and "pix2pix_unet" in registry.names() and "nope" not in registry

    def build() -> str:
        return "built"

    registry.register("runtime_only")(build)
    assert "runtime_only" in registry and "runtime_only" in registry.names()
    assert registry.get("runtime_only") is build
    with pytest.raises(ConfigError, match="unknown generator 'srresnett'. Did you mean 'srresnet'"):
        registry.get("srresnett")


GAN = '[model]\ntask = "dcgan"\ngenerator = "dcgan"\ndiscriminator = "dcgan"\n'
REFUSALS = {
    "generator key": ('[model]\ngenerator = "srresnet"\nspade = true\n',
                      "[model] spade is read by generator 'pix2pix_unet', not by generator 'srresnet'."),
    "discriminator key": (GAN + "d_blocks = 3\n",
                          "[model] d_blocks is read by discriminator 'vgg', 'unet', 'patchgan' or 'patchgan70', not by discriminator 'dcgan'."),
    "family key": ('[model]\ntask = "srgan"\n[train]\nclass_weights = [1.0, 2.0]\n',
                   "[train] class_weights is read by family 'conditional', not by family 'srgan'."),
    "SRGAN without its adversarial phase": (
        '[train]\ngan_steps = 0\nadversarial_loss = "relativistic"\n',
        "[train] adversarial_loss is read by family 'srgan' only when [train] gan_steps > 0 (here [train] gan_steps = 0), "
        "and by family 'dcgan', 'conditional', 'mask_to_image' or 'cyclegan'."),
    # The discriminator's own keys go with it, and the message says why it is not used.
    "discriminator key without the adversarial phase": (
        '[model]\nd_blocks = 3\n[train]\ngan_steps = 0\n',
        "[model] d_blocks is read by discriminator 'vgg', 'unet', 'patchgan' or 'patchgan70'; [model] discriminator = \"vgg\" names "
        "discriminator 'vgg', but [model] discriminator is read by family 'srgan' only when [train] gan_steps > 0 "
        "(here [train] gan_steps = 0), and by family 'dcgan', 'conditional', 'mask_to_image' or 'cyclegan'."),
    "trainer loop key of a benchmark": (
        '[model]\ntask = "utility"\n[train]\nstrategy = "mirrored"\n',
        "[train] strategy is read by the trainer loop (of family 'srgan', 'dcgan', 'conditional', 'mask_to_image' or 'cyclegan'), "
        "not by family 'utility'."),
    "adversarial loss key": (
        GAN + '[train]\nadversarial_loss = "nonsaturating"\nn_critic = 3\n',
        "[train] n_critic is read by adversarial_loss 'wasserstein' only when [model] task is \"dcgan\", \"conditional\" "
        "or \"mask_to_image\", not by adversarial_loss 'nonsaturating'."),
    "optimizer key": ('[train]\noptimizer = "sgd"\nbeta_2 = 0.9\n',
                      "[train] beta_2 is read by optimizer 'adam' or 'adamw', not by optimizer 'sgd'."),
    "dataset config": ('[prepare]\nkind = "dicom"\ninfo_file = "Info.txt"\n',
                       "[prepare] info_file is read by prepare_kind 'mias', not by prepare_kind 'dicom'."),
    "augment config": ("[generator]\nbarrel_amounts = []\nbarrel_radius = 0.2\n",
                       "[generator] barrel_radius is read by augmentation 'barrel' only when [generator] barrel_amounts "
                       "is not empty (here [generator] barrel_amounts = [])."),
}


@pytest.mark.parametrize("text, expected", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_key_no_chosen_component_reads_is_refused_naming_who_would(tmp_path, text, expected):
    path = tmp_path / "train_eval_infer.config"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {expected} Remove it, or choose a component that reads it."


def test_defaults_of_unread_keys_are_never_refused(tmp_path):
    path = tmp_path / "train_eval_infer.config"
    path.write_text('[model]\ntask = "utility"\n[prepare]\nkind = "images"\n')
    config = load_config(path)
    assert config.reads("prepare", "input_dir") and not config.reads("prepare", "info_file")
    assert not config.reads("train", "strategy") and not config.reads("model", "generator")


def test_the_shipped_configs_are_found():
    """The parametrized check below is only as good as this list: an empty one would skip silently."""
    assert len([p for p in SHIPPED if p.name == "train_eval_infer.config"]) >= 19 and REPO / "dataset" / "MIAS-sample.config" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_loads_and_its_resolved_config_loads_back(path, tmp_path):
    config = load_config(path)
    resolved = tmp_path / "resolved.config"
    resolved.write_text(render_config(config))
    again = load_config(resolved)
    for section in SECTIONS.values():
        for key in section.keys:
            if config.reads(section.name, key.name):
                assert getattr(getattr(again, section.name), key.name) == getattr(getattr(config, section.name), key.name)


HEAVY = ("tensorflow", "keras", "numpy")


@pytest.mark.parametrize("arguments", [["config", "show", str(REPO / "projects/SRGAN/MIAS-x2/train_eval_infer.config")],
                                       ["config", "keys"]])
def test_config_commands_import_no_tensorflow(arguments):
    code = ("import sys; from mammogan.cli import main; code = main(sys.argv[1:]); "
            f"print(code, [name for name in {HEAVY!r} if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"


def test_get_imports_only_the_module_of_the_name():
    code = ("import sys; from mammogan.registry import GENERATORS; GENERATORS.get('srresnet'); "
            "print(sorted(m for m in sys.modules if m.startswith(('mammogan.models.', 'mammogan.families'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "['mammogan.models.layers', 'mammogan.models.srresnet']"
