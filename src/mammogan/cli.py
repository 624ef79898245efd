"""The `mammogan` command: one entry point, one subcommand per numbered script.

User errors (bad config, unreadable data) print one paragraph and exit 2; `--debug` shows the
traceback. Bugs exit 1 with the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import Callable, Sequence

from .errors import UserError
from .core.logs import close_log_files, get_logger, setup_console

EXIT_USER_ERROR = 2
EXIT_BUG = 1


def _prepare(args: argparse.Namespace) -> int:
    from .prepare.pipeline import run_prepare

    return run_prepare(_load(args.config))


def _augment(args: argparse.Namespace) -> int:
    from .augment.generator import run_augment

    return run_augment(_load(args.config))


def _device_line() -> None:
    """Load TensorFlow without its start-up notices and say in one line which device runs the job."""
    from .core.devices import start_tensorflow

    get_logger().info(start_tensorflow())


def _train(args: argparse.Namespace) -> int:
    from .registry import FAMILIES

    config = _load(args.config)
    _device_line()
    return FAMILIES.get(config.model.task, f"{config.path}: [model] task").train(config, resume=not args.restart)


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate.evaluator import Evaluator

    config = _load(args.config)
    _device_line()
    return Evaluator(config).run()


def _infer(args: argparse.Namespace) -> int:
    from .infer.inferencer import Inferencer

    config = _load(args.config)
    _device_line()
    return Inferencer(config).run()


def _config_show(args: argparse.Namespace) -> int:
    from .config.loader import render_config

    _print(render_config(_load(args.config)))
    return 0


def _config_keys(args: argparse.Namespace) -> int:
    from .config.reference import reference_markdown

    _print(reference_markdown())
    return 0


def _print(text: str) -> None:
    """Print to stdout; a reader that stops early (`mammogan config keys | head`) is no error, the rest is dropped."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null, or the interpreter's last flush at exit fails on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _load(path: str):
    from .config.loader import load_config

    return load_config(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammogan",
        description="Train and use GANs on mammograms: super-resolution (SRGAN) and synthetic image/mask generation. "
        "Every command reads one experiment's train_eval_infer.config (TOML).",
        epilog="Example: mammogan train projects/SRGAN/MIAS-x2/train_eval_infer.config",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback for user errors too")
    parser.add_argument("--verbose", action="store_true", help="print debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("config", help="path to train_eval_infer.config")
        sub.set_defaults(handler=handler)
        return sub

    command("prepare", _prepare, "Prepare raw mammograms ([prepare]): PGM/DICOM/PNG → cropped PNGs, masks, SR pairs, GAN patches, splits.")
    command("augment", _augment, "Write an offline-augmented image/mask dataset ([generator]).")
    train = command("train", _train, "Train the configured model ([model], [dataset], [train]); resumes from the last checkpoint.")
    train.add_argument("--restart", action="store_true", help="ignore existing checkpoints and start from step 0")
    command("evaluate", _evaluate, "Evaluate the trained model on the test split ([eval]).")
    command("infer", _infer, "Run the trained model on new images or sample new ones ([infer]).")

    config = commands.add_parser("config", help="Show the effective config or the reference of all keys.")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_commands.add_parser("show", help="print the config with every default filled in and paths resolved")
    show.add_argument("config")
    show.set_defaults(handler=_config_show)
    keys = config_commands.add_parser("keys", help="print every section and key with its type, default and meaning")
    keys.set_defaults(handler=_config_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_console(verbose=args.verbose)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        if args.debug:
            raise
        message = textwrap.fill(str(error), width=100, break_long_words=False, break_on_hyphens=False)
        get_logger().error("Error: %s", message)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        get_logger().error("Interrupted.")
        return 130
    finally:
        close_log_files()


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
