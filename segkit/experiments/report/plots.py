"""The report's curves: train and val loss and Dice per epoch, one colour per run, to a PNG.

Drawn with matplotlib's object API (``Figure`` + the Agg canvas): no display, no pyplot state,
so it is safe from threads and on headless machines. The loss panel is named after the loss
the runs were configured with (``LOSS.TERMS`` in their ``config.yaml``), so a plot never claims
BCE for a run that trained on Dice.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from .collect import RunResult, number

__all__ = ["PLOT_SIZE", "loss_name", "loss_label", "curves_figure", "plot_curves"]

PLOT_SIZE = (1280, 560)  # pixels of the PNG
DPI = 100
_LEGEND_CHARS = 40
_TERM_TITLES = {"bce": "BCE"}  # a loss that is this one term alone is titled so


def loss_name(config: dict) -> Optional[str]:
    """The loss of a run's (flattened) config as a short name: ``BCE`` for BCE alone, else its terms
    as a weighted sum (``bce + dice``, ``0.5·bce + dice``); None when the config does not say."""
    terms = config.get("LOSS.TERMS")
    if not isinstance(terms, list) or not terms or not all(isinstance(t, dict) and t.get("NAME") for t in terms):
        return None
    parts = []
    for term in terms:
        weight = number(term.get("WEIGHT", 1.0))
        name = str(term["NAME"])
        parts.append(name if weight is None or weight == 1.0 else f"{weight:g}·{name}")
    if len(parts) == 1:
        return _TERM_TITLES.get(parts[0], parts[0])
    return " + ".join(parts)


def loss_label(runs: Sequence[RunResult]) -> str:
    """The loss panel's title: ``Loss (<name>)`` when every run has the same known loss, else ``Loss``."""
    names = {loss_name(r.config) for r in runs}
    if len(names) == 1 and None not in names:
        return f"Loss ({names.pop()})"
    return "Loss"


def _series(run: RunResult, key: str) -> Tuple[List[int], List[float]]:
    """Epochs and values; a missing value is NaN, which breaks the line there."""
    values = [number(e.get(key)) for e in run.epochs]
    return [int(e["epoch"]) for e in run.epochs], [float("nan") if v is None else v for v in values]


def _clip(text: str, n: int = _LEGEND_CHARS) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def curves_figure(runs: Sequence[RunResult], title: str, label_keys: Sequence[str] = (),
                  size: Tuple[int, int] = PLOT_SIZE) -> Any:
    """A matplotlib ``Figure``: a loss panel and a Dice panel, train solid with filled markers, val
    dashed with hollow ones (so a one-epoch run still shows), one colour per run, legend on the right."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    palette = matplotlib.colormaps["tab10"]  # ten colours that stay apart for most colour blindness
    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.06, right=0.75, top=0.86, bottom=0.12, wspace=0.22)
    for ax, (metric, name) in zip(axes, (("loss", loss_label(runs)), ("dice", "Dice"))):
        for i, run in enumerate(runs):
            colour = palette(i % palette.N)
            for split, style, face in (("train", "-", colour), ("val", "--", "white")):
                x, y = _series(run, f"{split}/{metric}")
                ax.plot(x, y, linestyle=style, color=colour, linewidth=1.8, marker="o", markersize=4.5,
                        markerfacecolor=face, markeredgewidth=1.5)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, color="#e4e4e4", linewidth=0.8)
        ax.set_axisbelow(True)
    handles = [Line2D([], [], color=palette(i % palette.N), linewidth=3, label=_clip(run.label(label_keys)))
               for i, run in enumerate(runs)]
    handles += [Line2D([], [], color="#282828", linestyle="-", marker="o", markersize=4.5, label="train"),
                Line2D([], [], color="#282828", linestyle="--", marker="o", markersize=4.5, markerfacecolor="white",
                       label="val")]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.765, 0.86), frameon=False, fontsize=9)
    fig.suptitle(_clip(title, 100), fontsize=13)
    return fig


def plot_curves(runs: Sequence[RunResult], path: str, title: str, label_keys: Sequence[str] = (),
                size: Tuple[int, int] = PLOT_SIZE) -> None:
    """``curves_figure`` saved as a PNG of ``size`` pixels."""
    curves_figure(runs, title, label_keys, size).savefig(path, dpi=DPI)
