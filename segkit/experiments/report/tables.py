"""The report's text: runs grouped by a setting, a Markdown table per group, a ranking, a CSV.

The Markdown is what a person reads (and pastes into a lab report); the CSV holds the same
numbers at full precision for anything that wants to compute with them.
"""
from __future__ import annotations

import csv
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..sweep import run_name
from .collect import MISSING, RunResult, SummaryError, display, number, setting_columns

__all__ = ["METRIC_COLUMNS", "CSV_METRICS", "group_runs", "group_title", "group_slug", "metric_cells", "table",
           "ranking", "ranked_name", "markdown", "csv_row", "write_csv"]

Groups = List[Tuple[Dict[str, Any], List[RunResult]]]
METRIC_COLUMNS = ["train loss", "train Dice", "val loss", "val Dice", "best epoch",
                  "test loss (mean ± std)", "test Dice (mean ± std)"]
# Statuses of runs that ran to their end: a sweep's tested runs, a study's complete trials.
FINISHED = ("done", "complete")
CSV_METRICS = ["epochs", "best_epoch", "best_val_dice", "train_loss", "train_dice", "val_loss", "val_dice",
               "test_loss_mean", "test_loss_std", "test_dice_mean", "test_dice_std", "test_iou_mean",
               "test_iou_std", "test_n", "seconds"]


# --------------------------------------------------------------------------- groups
def group_runs(runs: Sequence[RunResult], group_by: Sequence[str]) -> Groups:
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
    """The group's part of its plot's file name: ``all`` or ``model=unet``."""
    return run_name(values) if values else "all"


# --------------------------------------------------------------------------- Markdown
def _f4(value: Any) -> str:
    value = number(value)
    return MISSING if value is None else f"{value:.4f}"


def _pm(test: Optional[dict], key: str) -> str:
    if not test or number(test.get(f"{key}_mean")) is None:
        return MISSING
    return f"{test[f'{key}_mean']:.4f} ± {test[f'{key}_std']:.4f}"


def metric_cells(run: RunResult) -> List[str]:
    """The METRIC_COLUMNS cells of one run."""
    final, best = run.final, run.best
    best_epoch = f"{best['epoch']}/{final['epoch']}" if best else MISSING
    return [_f4(final.get("train/loss")), _f4(final.get("train/dice")), _f4(final.get("val/loss")),
            _f4(final.get("val/dice")), best_epoch, _pm(run.test, "loss"), _pm(run.test, "dice")]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def table(runs: Sequence[RunResult], label_keys: Sequence[str], with_sweep: bool) -> List[str]:
    """A Markdown table: one row per run, its settings then its metrics."""
    heads = (["sweep"] if with_sweep else []) + (list(label_keys) or ["run"]) + METRIC_COLUMNS
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(" --- " for _ in heads) + "|"]
    for run in runs:
        labels = [display(run.value(k)) for k in label_keys] or [run.name]
        cells = ([run.sweep or MISSING] if with_sweep else []) + labels + metric_cells(run)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def ranking(runs: Sequence[RunResult]) -> List[Tuple[RunResult, str]]:
    """Runs with a test result by test Dice, then those without one by their best val Dice."""
    tested = sorted((r for r in runs if r.test and number(r.test.get("dice_mean")) is not None),
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


def ranked_name(run: RunResult, with_sweep: bool) -> str:
    """The run's name, prefixed with its sweep's when the report covers several sweeps."""
    return f"{run.sweep}/{run.name}" if with_sweep and run.sweep else run.name


def markdown(runs: Sequence[RunResult], groups: Groups, group_by: Sequence[str], title: str,
             sources: Sequence[str], plots: Dict[str, str]) -> str:
    """summary.md: a table (and its plot) per group, the ranking, then the runs that did not finish."""
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
        out += [f"{i}. **{ranked_name(r, with_sweep)}**: {text}" for i, (r, text) in enumerate(ranked, 1)]
        out.append("")
    unfinished = [r for r in runs if r.status not in FINISHED]
    if unfinished:
        out += ["## Unfinished runs", ""]
        for run in unfinished:
            last = run.error.strip().splitlines()[-1] if run.error.strip() else ""
            out.append(f"- **{ranked_name(run, with_sweep)}**: {run.status}" + (f": `{_cell(last)}`" if last else "")
                       + f" (`{run.path}`)")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- CSV
def csv_row(run: RunResult) -> Dict[str, Any]:
    """The CSV_METRICS of one run (None where a run has no value)."""
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
    """summary.csv: one row per run, its settings and CSV_METRICS at full precision."""
    keys = setting_columns(runs)
    fields = ["run", "sweep", "status", "path", *keys, *CSV_METRICS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for run in runs:
            row = {"run": run.name, "sweep": run.sweep, "status": run.status, "path": run.path,
                   **{k: run.value(k) for k in keys}, **csv_row(run)}
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
