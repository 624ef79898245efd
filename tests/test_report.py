"""report.html: one static page per run and evaluation folder, with relative links that all resolve."""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mammogan.cli import main
from test_training import TINY_SR_TRAIN as TRAIN, sr_config



class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for name, value in attrs if name in ("href", "src") and value]


def links(report: Path) -> list[str]:
    parser = Links()
    parser.feed(report.read_text(encoding="utf-8"))
    return parser.targets


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, prepared_sample) -> Path:
    run = tmp_path_factory.mktemp("report") / "run"
    config = sr_config(run, prepared_sample, TRAIN)
    config.write_text(config.read_text().replace("[dataset]\n", f'[dataset]\ntest_dir = "{prepared_sample / "train"}"\n')
                      + "[eval]\ncomparison_crops = 2\n")
    assert main(["train", str(config)]) == 0
    assert main(["evaluate", str(config)]) == 0
    return run / "output"


def test_run_and_evaluation_reports_show_tiles_tables_and_resolving_relative_links(evaluated_run):
    report = evaluated_run / "report.html"
    text = report.read_text(encoding="utf-8")
    targets = links(report)
    tiles = sorted(p.relative_to(evaluated_run).as_posix() for p in (evaluated_run / "epoch_tiles").glob("*.png"))
    assert len(tiles) == 3 and set(tiles) <= set(targets)  # every epoch tile (steps 0, 5, 10)
    assert "epoch_tiles.gif" in targets and "train_metrics.png" in targets and "evaluation/report.html" in targets
    assert "<h3>train_metrics.csv</h3>" in text and "[model]" in text  # the table and the resolved config
    evaluation = evaluated_run / "evaluation" / "report.html"
    assert "<h3>evaluation.csv</h3>" in evaluation.read_text(encoding="utf-8")
    assert sum(target.startswith("comparisons/") and target.endswith(".png") for target in links(evaluation)) >= 2
    for page in (report, evaluation):
        for target in links(page):
            assert not target.startswith(("/", "http:", "https:", "file:")), target  # opens from any copy of the folder
            assert (page.parent / target).is_file(), target


def test_report_renders_in_headless_chromium(evaluated_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    screenshot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1800", f"--screenshot={screenshot}",
                    (evaluated_run / "report.html").as_uri()], capture_output=True, timeout=120, check=True,
                   env={**os.environ, "HOME": str(tmp_path)})
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float64)
    assert pixels.shape == (1800, 1300)
    # The page shows images and text, not a blank or error page: many grey levels, dark tile areas present.
    assert len(np.unique(pixels)) > 64 and (pixels < 80).mean() > 0.02
