"""`mammogan evaluate`: the generic Evaluator; the config's family decides what is measured.

SR families compare the generator with bicubic on the test split; synthetic-image families compare
samples with held-out real patches; studies re-summarise their finished runs. The evaluation folder
gets its log and the resolved config first.
"""

from __future__ import annotations

from pathlib import Path

from ..config.loader import Config, start_output_folder
from ..core.logs import get_logger
from ..registry import FAMILIES
from ..visual.report import write_command_report

log = get_logger("evaluate")


class Evaluator:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.family = FAMILIES.get(config.model.task, f"{config.path}: [model] task")
        self.output_dir: Path = config.eval.output_dir

    def run(self) -> int:
        self.family.check(self.config, "evaluate")
        start_output_folder(self.config, "eval", "evaluate.log")
        code = self.family.evaluate(self.config, self.output_dir)
        log.info("Report: %s", write_command_report(self.config, self.output_dir, "evaluation"))
        return code
