"""`report.html` for a run or evaluation folder: one static page that opens from the file system.

The page is built from what the folder holds, whatever the family wrote: the resolved config, the
training curves, the epoch-change tiles (the latest one large, a strip of all of them, the GIF), every
CSV table (small ones inline, large ones linked) and every other image, with links to all files. It
needs no server and no network: images and files are linked by relative paths.
"""

from __future__ import annotations

import csv
import html
import time
from pathlib import Path

from ..config.loader import Config
from ..core.io import atomic_write_text

REPORT = "report.html"
INLINE_ROWS = 40  # CSV tables up to this many rows are shown; longer ones are linked
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg")
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1280px; color: #1d2330; background: #fafbfc; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6; }
.meta { color: #5a6476; margin-bottom: 16px; }
img { max-width: 100%; border: 1px solid #d8dde6; background: #fff; }
.strip { display: flex; gap: 6px; overflow-x: auto; padding-bottom: 6px; }
.strip figure { margin: 0; flex: 0 0 auto; text-align: center; font-size: 12px; color: #5a6476; }
.strip img { height: 150px; width: auto; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.gallery figure { margin: 0; font-size: 12px; color: #5a6476; }
table { border-collapse: collapse; font-size: 12.5px; background: #fff; margin-bottom: 6px; }
th, td { border: 1px solid #d8dde6; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #eef1f6; } td:first-child, th:first-child { text-align: left; }
.scroll { overflow-x: auto; }
pre { background: #fff; border: 1px solid #d8dde6; padding: 10px; overflow-x: auto; font-size: 12px; max-height: 420px; }
ul.files { columns: 3; font-size: 12.5px; }
"""


def write_command_report(config: Config, folder: Path, what: str) -> Path:
    """The report of one command's output folder ("training", "evaluation", ...), headed by the experiment's name.

    An evaluation or inference folder inside the run folder also refreshes the run's report, which links it.
    """
    report = write_report(folder, f"{config.path.parent.name}: {what} ({config.model.task})")
    run = config.train.output_dir
    if run in Path(folder).parents and (run / REPORT).is_file():
        write_report(run, f"{config.path.parent.name}: training ({config.model.task})")
    return report


def write_report(folder: Path, title: str) -> Path:
    """Write `folder/report.html` describing everything in `folder` (rewritten whenever called).

    A subfolder with a report of its own (an evaluation or inference inside the run folder) is linked,
    not repeated.
    """
    folder = Path(folder)
    nested = sorted(path.parent for path in folder.rglob(REPORT) if path.parent != folder)
    files = _own_files(folder, set(nested))  # one walk of the folder serves every section
    sections = [_nested(folder, nested), _tiles(folder), _curves(folder), _tables(folder, files), _images(folder, files),
                _config(folder), _files(folder, files)]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<div class=\"meta\">{html.escape(str(folder))} · written {time.strftime('%Y-%m-%d %H:%M:%S')}</div>\n"
            + "\n".join(part for part in sections if part) + "\n</body></html>\n")
    target = folder / REPORT
    atomic_write_text(target, page)
    return target


def _link(folder: Path, path: Path) -> str:
    return html.escape(path.relative_to(folder).as_posix(), quote=True)


def _own_files(folder: Path, nested: set[Path]) -> list[Path]:
    """Every file of `folder` except checkpoints, this report and what lies in a subfolder with a report of its own."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.name != REPORT
                  and "checkpoints" not in path.relative_to(folder).parts and not nested & set(path.parents))


def _nested(folder: Path, nested: list[Path]) -> str:
    items = "".join(f"<li><a href=\"{_link(folder, sub / REPORT)}\">{_link(folder, sub)}</a></li>" for sub in nested)
    return f"<h2>Reports inside this folder</h2><ul>{items}</ul>" if nested else ""


def _tiles(folder: Path) -> str:
    tiles = sorted((folder / "epoch_tiles").glob("epoch_*.png"))
    if not tiles:
        return ""
    latest = tiles[-1]
    parts = ["<h2>Epoch-change tiles</h2>", f"<p>Latest: <b>{latest.stem}</b></p>",
             f"<a href=\"{_link(folder, latest)}\"><img src=\"{_link(folder, latest)}\" alt=\"{latest.stem}\"></a>"]
    gif = folder / "epoch_tiles.gif"
    if gif.is_file():
        parts.append(f"<p>Animation of all epochs: <a href=\"{_link(folder, gif)}\">epoch_tiles.gif</a></p>")
    strip = "".join(f"<figure><a href=\"{_link(folder, tile)}\"><img src=\"{_link(folder, tile)}\" alt=\"{tile.stem}\"></a>"
                    f"<figcaption>{tile.stem.replace('epoch_', 'epoch ')}</figcaption></figure>" for tile in tiles)
    parts.append(f"<div class=\"strip\">{strip}</div>")
    return "\n".join(parts)


def _curves(folder: Path) -> str:
    curves = folder / "train_metrics.png"
    return (f"<h2>Training curves</h2><img src=\"{_link(folder, curves)}\" alt=\"training curves\">"
            if curves.is_file() else "")


def _csv_table(rows: list[list[str]]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_number(cell))}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<div class=\"scroll\"><table><tr>{head}</tr>{body}</table></div>"


def _number(cell: str) -> str:
    """A CSV cell for reading: decimals to 5 significant digits (the CSV keeps the full value)."""
    if not any(mark in cell for mark in ".eE") or cell.lower() in ("nan", "inf", "-inf"):
        return cell
    try:
        return f"{float(cell):.5g}"
    except ValueError:
        return cell


def _tables(folder: Path, files: list[Path]) -> str:
    parts = []
    for path in (path for path in files if path.suffix == ".csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        name = _link(folder, path)
        if len(rows) - 1 <= INLINE_ROWS:
            parts.append(f"<h3>{name}</h3>{_csv_table(rows)}")
        else:
            parts.append(f"<h3>{name}</h3><p>{len(rows) - 1} rows: <a href=\"{name}\">open the CSV</a></p>")
    return ("<h2>Tables</h2>\n" + "\n".join(parts)) if parts else ""


def _images(folder: Path, files: list[Path]) -> str:
    shown_elsewhere = {folder / "train_metrics.png", folder / "epoch_tiles.gif"}
    images = [path for path in files if path.suffix.lower() in IMAGE_SUFFIXES and path not in shown_elsewhere
              and not {"epoch_tiles", "models"} & set(path.relative_to(folder).parts[:-1])
              and path.parent.name not in ("images", "masks")]
    if not images:
        return ""
    figures = "".join(f"<figure><a href=\"{_link(folder, path)}\"><img src=\"{_link(folder, path)}\" loading=\"lazy\" "
                      f"alt=\"{path.stem}\"></a><figcaption>{_link(folder, path)}</figcaption></figure>" for path in images)
    return f"<h2>Images</h2><div class=\"gallery\">{figures}</div>"


def _config(folder: Path) -> str:
    config = folder / "resolved.config"
    if not config.is_file():
        return ""
    return f"<h2>Resolved config</h2><pre>{html.escape(config.read_text(encoding='utf-8'))}</pre>"


def _files(folder: Path, files: list[Path]) -> str:
    items = "".join(f"<li><a href=\"{_link(folder, path)}\">{_link(folder, path)}</a></li>" for path in files[:500])
    more = f"<p>… and {len(files) - 500} more files.</p>" if len(files) > 500 else ""
    return f"<h2>Files</h2><ul class=\"files\">{items}</ul>{more}"
