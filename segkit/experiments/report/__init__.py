"""Tables, curves and a ranking from finished runs: the lab report's section 3, generated.

``collect`` reads what runs leave on disk (run folders, sweep folders, folders of those),
``tables`` writes the Markdown tables, ranking and CSV, ``plots`` the curves (matplotlib).
``summarize`` puts them together; the command line is ``segkit summarize``
(segkit.commands.summarize).

    from segkit.experiments.report import summarize
    summarize(["work_dirs/sweeps/report_lr"], group_by=["MODEL"])
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from .collect import RunResult, SummaryError, collect_runs, read_run, setting_columns
from .plots import PLOT_SIZE, curves_figure, loss_label, loss_name, plot_curves
from .tables import group_runs, group_slug, group_title, markdown, ranked_name, ranking, write_csv

__all__ = ["RunResult", "SummaryError", "collect_runs", "read_run", "setting_columns", "group_runs", "markdown",
           "write_csv", "ranking", "ranked_name", "plot_curves", "curves_figure", "loss_label", "loss_name",
           "summarize", "PLOT_SIZE"]


def _default_title(runs: Sequence[RunResult], paths: Sequence[str]) -> str:
    sweeps = sorted({r.sweep for r in runs if r.sweep})
    return "Summary of " + ", ".join(sweeps or [os.path.basename(os.path.abspath(p)) for p in paths])


def summarize(paths: Sequence[str], out: Optional[str] = None, group_by: Sequence[str] = (),
              title: Optional[str] = None) -> Dict[str, Any]:
    """Write summary.md, summary.csv and curves_<group>.png to ``out`` (default: the first path).

    ``group_by`` and ``title`` default to the sweep file's GROUP_BY and TITLE. Returns the runs,
    the folder, the plots' paths, the ranking and whether the runs come from several sweeps."""
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
    for manifest in manifests:
        if manifest.get("study") is not None:  # a segkit tune study: Optuna's history and importances too
            from .study_plots import plot_study

            drawn = plot_study(manifest["study"], out)
            plots.update({f"study_{kind}": os.path.basename(p) for kind, p in drawn.items()})
            text += "".join(f"\n![{kind} of study {manifest['name']}]({os.path.basename(p)})\n"
                            for kind, p in drawn.items())
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    write_csv(runs, os.path.join(out, "summary.csv"))
    return {"runs": runs, "out": out, "plots": [os.path.join(out, p) for p in plots.values()],
            "ranking": ranking(runs), "with_sweep": len({r.sweep for r in runs}) > 1}
