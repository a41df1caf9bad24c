"""A study's own plots, drawn by Optuna's matplotlib backend: the optimisation history (each
trial's value and the best so far) and the parameters' importances (fANOVA), as PNGs."""
from __future__ import annotations

import logging
import os
import warnings
from typing import Dict

__all__ = ["plot_study"]

logger = logging.getLogger("segkit")
PLOTS = {"history": "optuna_history.png", "importance": "optuna_importance.png"}


def plot_study(study, out: str) -> Dict[str, str]:
    """Write the plots Optuna can draw for ``study`` to ``out``; {kind: path} of those written.
    Importances need two complete trials with differing parameters; a study without them gets
    the history alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    drawers = {"history": optuna_plots.plot_optimization_history, "importance": optuna_plots.plot_param_importances}
    written = {}
    for kind, draw in drawers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
                axes = draw(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(10, 5)
            figure.tight_layout()
            path = os.path.join(out, PLOTS[kind])
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written[kind] = path
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # too few complete trials
            logger.info("summarize: no %s plot for study '%s' (%s)", kind, study.study_name, e)
    return written
