"""`mammogan infer`: the generic Inferencer; the config's family decides what inference means.

SR families super-resolve `[infer] input_dir`; synthetic-image families sample a dataset. Either way the
run folder gets its log and the resolved config first.
"""

from __future__ import annotations

from pathlib import Path

from ..config.loader import Config, start_output_folder
from ..core.logs import get_logger
from ..registry import FAMILIES
from ..visual.report import write_command_report

log = get_logger("infer")


class Inferencer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.family = FAMILIES.get(config.model.task, f"{config.path}: [model] task")
        self.output_dir: Path = config.infer.output_dir

    def run(self) -> int:
        self.family.check(self.config, "infer")
        if not self.family.infers:
            raise self.config.error("model", "task", "this study trains classifiers, not a generator: there is nothing to infer")
        start_output_folder(self.config, "infer", "infer.log")
        code = self.family.infer(self.config, self.output_dir)
        log.info("Report: %s", write_command_report(self.config, self.output_dir, "inference"))
        return code
