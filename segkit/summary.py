"""Tables, curves and a ranking from finished runs: the lab report's section 3, generated.

It reads only what runs leave on disk (``config.yaml``, ``metrics.jsonl``, ``test.json`` and a
sweep's ``sweep.json``), so it works on any run folders, old or new, while a sweep is still
going, and without torch, TensorBoard or matplotlib: the plots are drawn with PIL.

    segkit summarize work_dirs/sweeps/report_lr                 # a sweep's folder
    segkit summarize work_dirs/a work_dirs/b --group-by MODEL --out work_dirs/ab
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .sweep import GROUP_DIRS, MANIFEST, TEST_JSON, read_manifest, run_name, short_keys

__all__ = ["RunResult", "SummaryError", "collect_runs", "setting_columns", "group_runs", "markdown",
           "write_csv", "ranking", "plot_curves", "panel_boxes", "summarize", "main", "PLOT_SIZE"]

MISSING = "—"
IGNORED_KEYS = ("OUTPUT_DIR",)  # differs between every pair of runs and says nothing about them
PLOT_SIZE = (1280, 560)
LEGEND_WIDTH = 290
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID_INK = (228, 228, 228)
# matplotlib's "tab10": ten colours that stay apart for most kinds of colour blindness.
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
CURVES = (("loss", "Loss (BCE)"), ("dice", "Dice"))


class SummaryError(ValueError):
    """Folders with no runs in them, or a grouping key no run has."""


# --------------------------------------------------------------------------- reading runs
@dataclass
class RunResult:
    name: str
    path: str
    sweep: str = ""
    status: str = ""
    settings: Dict[str, Any] = field(default_factory=dict)  # a sweep's grid values for this run
    from_sweep: bool = False
    config: Dict[str, Any] = field(default_factory=dict)  # config.yaml, flattened to dotted keys
    epochs: List[dict] = field(default_factory=list)  # the epoch records of metrics.jsonl
    test: Optional[dict] = None
    seconds: Optional[float] = None
    error: str = ""

    @property
    def final(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    @property
    def best(self) -> Optional[dict]:
        """The epoch with the highest val/dice (the first of equals): the one best.pth holds."""
        scored = [e for e in self.epochs if _number(e.get("val/dice")) is not None]
        return max(scored, key=lambda e: e["val/dice"]) if scored else None

    def value(self, key: str) -> Any:
        if key in self.settings:
            return self.settings[key]
        return self.config.get(key)

    def label(self, keys: Sequence[str]) -> str:
        """The run told apart by ``keys`` (short names), or by its folder name when none is set."""
        short = short_keys(list(keys)) if keys else {}
        parts = [f"{short[k]}={display(self.value(k)).replace(', ', ',')}" for k in keys
                 if self.value(k) is not None]
        return ", ".join(parts) or self.name


def _number(value: Any) -> Optional[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def flatten(node: dict, prefix: str = "") -> Dict[str, Any]:
    """``{"SOLVER": {"BASE_LR": 1e-4}}`` -> ``{"SOLVER.BASE_LR": 1e-4}``, as keys are written on the command line."""
    out: Dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_epochs(path: str) -> List[dict]:
    """Epoch records, one per epoch (the last if logged twice); lines cut short by a kill are skipped."""
    if not os.path.isfile(path):
        return []
    by_epoch: Dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("type") == "epoch" and "epoch" in record:
                by_epoch[int(record["epoch"])] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def _read_json(path: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError:
            return None


def read_run(path: str, **known: Any) -> RunResult:
    run = RunResult(name=known.pop("name", os.path.basename(os.path.normpath(path))), path=path, **known)
    config_path = os.path.join(path, "config.yaml")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            run.config = flatten(yaml.safe_load(f) or {})
    run.epochs = read_epochs(os.path.join(path, "metrics.jsonl"))
    run.test = _read_json(os.path.join(path, TEST_JSON))
    # A sweep calls a run finished in an earlier call "skipped"; here only the files count.
    if run.test:
        run.status = "done"
    elif not run.status or run.status == "skipped":
        run.status = "trained, not tested" if run.epochs else "no results"
    return run


def _runs_of_sweep(folder: str) -> List[RunResult]:
    manifest = read_manifest(folder)
    runs = []
    for entry in manifest.get("runs", []):
        path = os.path.join(folder, entry["name"])  # the folder may have moved since it ran
        if not os.path.isdir(path) and os.path.isdir(entry.get("output_dir") or ""):
            path = entry["output_dir"]
        runs.append(read_run(path, name=entry["name"], sweep=manifest.get("name", ""), status=entry.get("status", ""),
                             settings=dict(entry.get("overrides") or {}), from_sweep=True,
                             seconds=entry.get("seconds"), error=entry.get("error") or ""))
    return runs


def _is_run(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, f)) for f in ("metrics.jsonl", "config.yaml", TEST_JSON))


def collect_runs(paths: Sequence[str]) -> Tuple[List[RunResult], List[dict]]:
    """Runs under ``paths``: a sweep folder gives its runs, a run folder itself, any other folder
    the sweeps and runs directly inside it. Also returns the sweeps' manifests."""
    runs: List[RunResult] = []
    manifests: List[dict] = []
    for path in paths:
        if not os.path.isdir(path):
            raise SummaryError(f"'{path}' is not a folder")
        found = _collect_one(path, runs, manifests)
        if not found:
            raise SummaryError(f"no runs in '{path}': no {MANIFEST}, metrics.jsonl or config.yaml there "
                               f"or in the folders directly inside it")
    unique, seen = [], set()
    for run in runs:
        real = os.path.realpath(run.path)
        if real not in seen:
            seen.add(real)
            unique.append(run)
    return unique, manifests


def _collect_one(path: str, runs: List[RunResult], manifests: List[dict], depth: int = 0) -> int:
    if os.path.isfile(os.path.join(path, MANIFEST)):
        manifests.append(read_manifest(path))
        found = _runs_of_sweep(path)
    elif _is_run(path):
        found = [read_run(path)]
    elif depth == 0:
        return sum(_collect_one(os.path.join(path, d), runs, manifests, 1) for d in sorted(os.listdir(path))
                   if os.path.isdir(os.path.join(path, d)))
    else:
        found = []
    runs.extend(found)
    return len(found)


# --------------------------------------------------------------------------- what tells runs apart
def display(value: Any) -> str:
    """A setting as a short table cell: 0.0001, unet, HorizontalFlip+Rotate, none."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "NAME" in v for v in value):
        text = "+".join(str(v["NAME"]) for v in value)
    elif isinstance(value, list) and not value:
        text = "none"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def varying_config_keys(runs: Sequence[RunResult]) -> List[str]:
    """Config keys whose values differ between the runs (a key some runs lack counts as differing)."""
    keys: List[str] = []
    for run in runs:
        keys += [k for k in run.config if k not in keys and k not in IGNORED_KEYS]
    marker = object()
    return [k for k in keys
            if len({json.dumps(r.config.get(k, marker), sort_keys=True, default=repr) for r in runs}) > 1]


def setting_columns(runs: Sequence[RunResult]) -> List[str]:
    """The sweeps' grid keys; for runs that no sweep made, the config keys that differ between runs."""
    keys: List[str] = []
    for run in runs:
        keys += [k for k in run.settings if k not in keys]
    if any(not r.from_sweep for r in runs):
        keys += [k for k in varying_config_keys([r for r in runs if r.config]) if k not in keys]
    return keys


def group_runs(runs: Sequence[RunResult], group_by: Sequence[str]) -> List[Tuple[Dict[str, Any], List[RunResult]]]:
    """Runs split by their values of ``group_by``, groups and runs in first-seen order."""
    for key in group_by:
        if all(r.value(key) is None for r in runs):
            known = ", ".join(setting_columns(runs)) or "none"
            raise SummaryError(f"--group-by {key}: no run has this setting; settings that differ here: {known}")
    groups: Dict[Tuple[str, ...], Tuple[Dict[str, Any], List[RunResult]]] = {}
    for run in runs:
        values = {k: run.value(k) for k in group_by}
        key = tuple(display(v) for v in values.values())
        groups.setdefault(key, (values, []))[1].append(run)
    return list(groups.values())


def group_title(values: Dict[str, Any]) -> str:
    return ", ".join(f"{k} = {display(v)}" for k, v in values.items()) or "All runs"


def group_slug(values: Dict[str, Any]) -> str:
    return run_name(values) if values else "all"


# --------------------------------------------------------------------------- tables
METRIC_COLUMNS = ["train loss", "train Dice", "val loss", "val Dice", "best epoch",
                  "test loss (mean ± std)", "test Dice (mean ± std)"]


def _f4(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{number:.4f}"


def _pm(test: Optional[dict], key: str) -> str:
    if not test or _number(test.get(f"{key}_mean")) is None:
        return MISSING
    return f"{test[f'{key}_mean']:.4f} ± {test[f'{key}_std']:.4f}"


def metric_cells(run: RunResult) -> List[str]:
    final, best = run.final, run.best
    best_epoch = f"{best['epoch']}/{final['epoch']}" if best else MISSING
    return [_f4(final.get("train/loss")), _f4(final.get("train/dice")), _f4(final.get("val/loss")),
            _f4(final.get("val/dice")), best_epoch, _pm(run.test, "loss"), _pm(run.test, "dice")]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def table(runs: Sequence[RunResult], label_keys: Sequence[str], with_sweep: bool) -> List[str]:
    heads = (["sweep"] if with_sweep else []) + (list(label_keys) or ["run"]) + METRIC_COLUMNS
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(" --- " for _ in heads) + "|"]
    for run in runs:
        labels = [display(run.value(k)) for k in label_keys] or [run.name]
        cells = ([run.sweep or MISSING] if with_sweep else []) + labels + metric_cells(run)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def ranking(runs: Sequence[RunResult]) -> List[Tuple[RunResult, str]]:
    """Runs with a test result by test Dice, then those without one by their best val Dice."""
    tested = sorted((r for r in runs if r.test and _number(r.test.get("dice_mean")) is not None),
                    key=lambda r: -r.test["dice_mean"])
    done = {id(r) for r in tested}
    untested = sorted((r for r in runs if id(r) not in done and r.best), key=lambda r: -r.best["val/dice"])
    lines = []
    for run in tested:
        best = run.best
        val = f" (best val Dice {best['val/dice']:.4f} at epoch {best['epoch']})" if best else ""
        lines.append((run, f"test Dice {_pm(run.test, 'dice')}{val}"))
    for run in untested:
        lines.append((run, f"best val Dice {run.best['val/dice']:.4f} at epoch {run.best['epoch']} (not tested)"))
    return lines


def _ranked_name(run: RunResult, with_sweep: bool) -> str:
    return f"{run.sweep}/{run.name}" if with_sweep and run.sweep else run.name


def markdown(runs: Sequence[RunResult], groups, group_by: Sequence[str], title: str, sources: Sequence[str],
             plots: Dict[str, str]) -> str:
    with_sweep = len({r.sweep for r in runs}) > 1
    label_keys = [k for k in setting_columns(runs) if k not in group_by]
    out = [f"# {title}", "",
           f"{len(runs)} runs from {', '.join(f'`{s}`' for s in sources)}. Train and val columns are the last "
           f"epoch's; the best epoch has the highest val Dice, and the test columns evaluate its checkpoint "
           f"(`best.pth`) as mean ± std over the test images.", ""]
    for values, members in groups:
        shown = [r for r in members if r.epochs or r.test]
        if not shown:
            continue
        out += [f"## {group_title(values)}", "", *table(shown, label_keys, with_sweep), ""]
        slug = group_slug(values)
        if slug in plots:
            out += [f"![train and val loss and Dice per epoch, {group_title(values)}]({plots[slug]})", ""]
    ranked = ranking(runs)
    if ranked:
        out += ["## Ranking", ""]
        out += [f"{i}. **{_ranked_name(r, with_sweep)}**: {text}" for i, (r, text) in enumerate(ranked, 1)]
        out.append("")
    unfinished = [r for r in runs if r.status != "done"]
    if unfinished:
        out += ["## Unfinished runs", ""]
        for run in unfinished:
            last = run.error.strip().splitlines()[-1] if run.error.strip() else ""
            out.append(f"- **{_ranked_name(run, with_sweep)}**: {run.status}" + (f": `{_cell(last)}`" if last else "")
                       + f" (`{run.path}`)")
        out.append("")
    return "\n".join(out)


CSV_METRICS = ["epochs", "best_epoch", "best_val_dice", "train_loss", "train_dice", "val_loss", "val_dice",
               "test_loss_mean", "test_loss_std", "test_dice_mean", "test_dice_std", "test_iou_mean",
               "test_iou_std", "test_n", "seconds"]


def csv_row(run: RunResult) -> Dict[str, Any]:
    final, best, test = run.final, run.best, run.test or {}
    return {"epochs": final.get("epoch"), "best_epoch": best and best["epoch"],
            "best_val_dice": best and best["val/dice"], "train_loss": final.get("train/loss"),
            "train_dice": final.get("train/dice"), "val_loss": final.get("val/loss"),
            "val_dice": final.get("val/dice"),
            **{f"test_{k}": test.get(k) for k in ("loss_mean", "loss_std", "dice_mean", "dice_std",
                                                   "iou_mean", "iou_std", "n")},
            "seconds": run.seconds}


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def write_csv(runs: Sequence[RunResult], path: str) -> None:
    keys = setting_columns(runs)
    fields = ["run", "sweep", "status", "path", *keys, *CSV_METRICS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for run in runs:
            row = {"run": run.name, "sweep": run.sweep, "status": run.status, "path": run.path,
                   **{k: run.value(k) for k in keys}, **csv_row(run)}
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


# --------------------------------------------------------------------------- plots (PIL only)
def panel_boxes(size: Tuple[int, int] = PLOT_SIZE) -> List[Tuple[int, int, int, int]]:
    """(left, top, right, bottom) of the loss panel and the Dice panel; the legend is to their right."""
    width, height = size
    left, gap, top, bottom = 70, 80, 50, height - 60
    panel = (width - LEGEND_WIDTH - left - gap - 30) // 2
    return [(left, top, left + panel, bottom), (left + panel + gap, top, left + 2 * panel + gap, bottom)]


def _font(size: int = 13):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, target: int = 5) -> List[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    # A step a little under the raw one is fine: a tick more reads better than two too few.
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.75)
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 12) for i in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


def _epoch_ticks(last: int, target: int = 6) -> List[int]:
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000) if s * target >= last or s == 1000)
    return [1] + list(range(step, last + 1, step)) if step > 1 else list(range(1, last + 1))


def _y_range(values: List[float]) -> Tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.05, 0.01)
    return lo - pad, hi + pad


def _dashed(draw, points: List[Tuple[float, float]], colour, width: int, dash: float = 7, gap: float = 5) -> None:
    on, left = True, dash
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < length:
            step = min(left, length - pos)
            if on:
                a, b = pos / length, (pos + step) / length
                draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                          fill=colour, width=width)
            pos += step
            left -= step
            if left <= 1e-9:
                on = not on
                left = dash if on else gap


def _series(run: RunResult, key: str) -> List[Tuple[int, Optional[float]]]:
    return [(int(e["epoch"]), _number(e.get(key))) for e in run.epochs]


def _draw_panel(draw, box, runs: Sequence[RunResult], metric: str, title: str, font) -> None:
    left, top, right, bottom = box
    values = [v for r in runs for split in ("train", "val") for _, v in _series(r, f"{split}/{metric}")
              if v is not None]
    last_epoch = max((int(e["epoch"]) for r in runs for e in r.epochs), default=1)
    x_lo, x_hi = (0.5, 1.5) if last_epoch <= 1 else (1, last_epoch)
    y_lo, y_hi = _y_range(values) if values else (0.0, 1.0)
    inset = 8  # keeps markers at the ends of the range off the frame

    def to_px(x: float, y: float) -> Tuple[float, float]:
        return (left + inset + (x - x_lo) / (x_hi - x_lo) * (right - left - 2 * inset),
                bottom - inset - (y - y_lo) / (y_hi - y_lo) * (bottom - top - 2 * inset))

    for tick in nice_ticks(y_lo, y_hi):
        y = to_px(x_lo, tick)[1]
        draw.line([(left, y), (right, y)], fill=GRID_INK)
        draw.line([(left - 5, y), (left, y)], fill=INK)
        draw.text((left - 8, y), f"{tick:.3g}", fill=INK, font=font, anchor="rm")
    for tick in _epoch_ticks(last_epoch):
        x = to_px(tick, y_lo)[0]
        draw.line([(x, bottom), (x, bottom + 5)], fill=INK)
        draw.text((x, bottom + 8), str(tick), fill=INK, font=font, anchor="mt")
    draw.rectangle(box, outline=INK)
    draw.text(((left + right) / 2, top - 12), title, fill=INK, font=_font(15), anchor="mb")
    draw.text(((left + right) / 2, bottom + 28), "epoch", fill=INK, font=font, anchor="mt")
    for i, run in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        for split, dashed in (("train", False), ("val", True)):
            points = [to_px(x, y) if y is not None else None for x, y in _series(run, f"{split}/{metric}")]
            _draw_series(draw, points, colour, dashed)


def _draw_series(draw, points: List[Optional[Tuple[float, float]]], colour, dashed: bool) -> None:
    """A line through the points, broken where a value is missing, with a marker on each point:
    filled for train, hollow for val, so a one-epoch run still shows up."""
    pieces: List[List[Tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            pieces.append([])
        else:
            pieces[-1].append(p)
    for piece in pieces:
        if len(piece) > 1:
            if dashed:
                _dashed(draw, piece, colour, width=2)
            else:
                draw.line(piece, fill=colour, width=2, joint="curve")
        for x, y in piece:
            r = 3
            if dashed:
                draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, fill=BACKGROUND, width=2)
            else:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _draw_legend(draw, x: int, y: int, labels: Sequence[str], title: str, font) -> None:
    draw.text((x, y), _clip(title, 40), fill=INK, font=_font(14))
    y += 28
    for i, label in enumerate(labels):
        colour = COLOURS[i % len(COLOURS)]
        draw.line([(x, y + 7), (x + 24, y + 7)], fill=colour, width=3)
        draw.text((x + 32, y), _clip(label, 40), fill=INK, font=font)
        y += 20
    y += 12
    draw.line([(x, y + 7), (x + 24, y + 7)], fill=INK, width=2)
    draw.text((x + 32, y), "train (filled markers)", fill=INK, font=font)
    _dashed(draw, [(x, y + 27), (x + 24, y + 27)], INK, width=2)
    draw.text((x + 32, y + 20), "val (hollow markers)", fill=INK, font=font)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def plot_curves(runs: Sequence[RunResult], path: str, title: str, label_keys: Sequence[str] = (),
                size: Tuple[int, int] = PLOT_SIZE) -> None:
    """Train (solid) and val (dashed) loss and Dice per epoch, one colour per run, to a PNG."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    boxes = panel_boxes(size)
    for box, (metric, name) in zip(boxes, CURVES):
        _draw_panel(draw, box, runs, metric, name, font)
    _draw_legend(draw, boxes[-1][2] + 30, boxes[0][1] - 20, [r.label(label_keys) for r in runs], title, font)
    image.save(path)


# --------------------------------------------------------------------------- putting it together
def _default_title(runs: Sequence[RunResult], paths: Sequence[str]) -> str:
    sweeps = sorted({r.sweep for r in runs if r.sweep})
    return "Summary of " + ", ".join(sweeps or [os.path.basename(os.path.abspath(p)) for p in paths])


def summarize(paths: Sequence[str], out: Optional[str] = None, group_by: Sequence[str] = (),
              title: Optional[str] = None) -> Dict[str, Any]:
    """Write summary.md, summary.csv and curves_<group>.png to ``out``; returns what it wrote."""
    runs, manifests = collect_runs(paths)
    out = out or paths[0]
    os.makedirs(out, exist_ok=True)
    hints = next((m for m in manifests if m.get("group_by") or m.get("title")), {})
    group_by = list(group_by) or [k for k in hints.get("group_by", []) if any(r.value(k) is not None for r in runs)]
    title = title or hints.get("title") or _default_title(runs, paths)
    groups = group_runs(runs, group_by)
    label_keys = [k for k in setting_columns(runs) if k not in group_by]
    plots = {}
    for values, members in groups:
        plotted = [r for r in members if r.epochs]
        if plotted:
            name = f"curves_{group_slug(values)}.png"
            plot_curves(plotted, os.path.join(out, name), group_title(values), label_keys)
            plots[group_slug(values)] = name
    text = markdown(runs, groups, group_by, title, paths, plots)
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    write_csv(runs, os.path.join(out, "summary.csv"))
    return {"runs": runs, "out": out, "plots": [os.path.join(out, p) for p in plots.values()],
            "ranking": ranking(runs), "with_sweep": len({r.sweep for r in runs}) > 1}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="segkit summarize",
        description="Tables (Markdown and CSV), loss/Dice curves and a ranking from run or sweep folders.")
    p.add_argument("work_dirs", nargs="+", metavar="WORK_DIR",
                   help="a sweep folder (with sweep.json), a run folder, or a folder of those")
    p.add_argument("--out", help="where to write summary.md, summary.csv and curves_*.png "
                                 "(default: the first WORK_DIR)")
    p.add_argument("--group-by", action="append", default=[], metavar="KEY",
                   help=f"one table and one plot per value of KEY (repeatable), e.g. MODEL or SOLVER.BATCH_SIZE; "
                        f"default: the sweep file's GROUP_BY. Group keys: {', '.join(GROUP_DIRS)} or any config key")
    p.add_argument("--title", help="the heading of summary.md (default: the sweep file's TITLE)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = summarize(args.work_dirs, args.out, args.group_by, args.title)
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("SEGKIT_DEBUG"):
            raise
        print(f"segkit summarize: error: {e}", file=sys.stderr)
        return 2
    for i, (run, text) in enumerate(result["ranking"], 1):
        print(f"{i}. {_ranked_name(run, result['with_sweep'])}: {text}")
    wrote = ["summary.md", "summary.csv"] + [os.path.basename(p) for p in result["plots"]]
    print(f"{len(result['runs'])} runs; wrote {', '.join(wrote)} to {result['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
