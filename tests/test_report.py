"""Reports: tables, ranking, CSV and curves from run folders written here with known numbers
(a sweep's manifest and each run's config written by segkit itself), the summarize command
in-process and once as ``python -m segkit``, and the best/worst page of visualize."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit.commands import main
from segkit.config import dump_config, load_config
from segkit.experiments.report import (PLOT_SIZE, RunResult, SummaryError, collect_runs, curves_figure, loss_label,
                                       read_run, summarize)
from segkit.experiments.sweep import Manifest, compose_config, expand, load_sweep, run_overrides
from segkit.visualize import best_worst_grid

from .conftest import REPO

BASE = str(REPO / "configs" / "unet_noaug_cosine.yaml")
BCE_DICE = "[{'NAME': 'bce', 'WEIGHT': 1.0}, {'NAME': 'dice', 'WEIGHT': 1.0}]"
UNET_1E3, UNET_1E4 = "model=unet__base_lr=0.001", "model=unet__base_lr=0.0001"
R34_1E3, R34_1E4 = "model=resnet34_unet__base_lr=0.001", "model=resnet34_unet__base_lr=0.0001"
# (train/loss, train/dice, val/loss, val/dice) per epoch, and test.json, of the runs that have them.
EPOCHS = {
    UNET_1E3: [(0.6, 0.5, 0.65, 0.55), (0.4, 0.7, 0.45, 0.75), (0.3, 0.8, 0.5, 0.7)],
    UNET_1E4: [(0.7, 0.4, 0.7, 0.5), (0.5, 0.6, 0.5, 0.65), (0.35, 0.75, 0.4, 0.78)],
    R34_1E3: [(0.5, 0.6, 0.5, 0.8), (0.3, 0.85, 0.35, 0.9)],
}
TESTS = {UNET_1E3: {"loss_mean": 0.42, "loss_std": 0.05, "dice_mean": 0.74, "dice_std": 0.1, "n": 8},
         UNET_1E4: {"loss_mean": 0.38, "loss_std": 0.04, "dice_mean": 0.8, "dice_std": 0.02, "n": 8}}


@pytest.fixture
def sweep_folder(tmp_path) -> Path:
    """A 2×2 sweep as a sweep would leave it: two unet runs (bce + dice) tested, a resnet34_unet
    run trained but failed in test, one never started."""
    sweep_file = tmp_path / "demo.yaml"
    sweep_file.write_text(f"BASE: {BASE}\nNAME: demo\nTITLE: Demo table\nGROUP_BY: [MODEL]\nOUTPUT_ROOT: {tmp_path}\n"
                          f"GRID:\n  MODEL: [unet, resnet34_unet]\n  SOLVER.BASE_LR: [1.0e-3, 1.0e-4]\n")
    sweep = load_sweep(str(sweep_file))
    runs = expand(sweep)
    Path(sweep.folder).mkdir()
    manifest = Manifest(sweep, runs, ["segkit", "sweep", str(sweep_file)])
    manifest.write()
    for run in runs:
        if run.name not in EPOCHS:
            continue
        out = Path(run.output_dir)
        out.mkdir()
        loss = ["LOSS.TERMS", BCE_DICE] if run.settings["MODEL"] == "unet" else []
        dump_config(load_config(compose_config(sweep, run, str(out)), run_overrides(sweep, run) + loss),
                    str(out / "config.yaml"))
        with open(out / "metrics.jsonl", "w") as f:
            for epoch, values in enumerate(EPOCHS[run.name], 1):
                f.write(json.dumps({"type": "step", "epoch": epoch, "train/loss": 9.0}) + "\n")
                f.write(json.dumps({"type": "epoch", "epoch": epoch,
                                    **dict(zip(("train/loss", "train/dice", "val/loss", "val/dice"), values))}) + "\n")
            f.write('{"type": "epoch", "epo')  # a line cut short by a kill
        if run.name in TESTS:
            (out / "test.json").write_text(json.dumps(TESTS[run.name]))
            manifest.update(run.name, status="done", seconds=12.5, exit_code=0)
        else:
            manifest.update(run.name, status="failed", exit_code=1, failed_stage="test",
                            error="Traceback (most recent call last):\nsegkit: error: out of memory")
    return Path(sweep.folder)


def _rows(markdown: str) -> dict:
    """{first cell: the other cells} of the Markdown table rows under each '## ' heading."""
    rows, section = {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("| ") and not line.startswith("| SOLVER"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] != "---":  # the line under the header
                rows[(section, cells[0])] = cells[1:]
    return rows


# --------------------------------------------------------------------------- tables, ranking, CSV
def test_summary_tables_ranking_and_csv(sweep_folder, tmp_path):
    result = summarize([str(sweep_folder)], out=str(tmp_path / "out"))
    text = (tmp_path / "out" / "summary.md").read_text()
    assert text.startswith("# Demo table\n")  # the sweep file's TITLE, and its GROUP_BY below
    assert _rows(text) == {
        ("MODEL = unet", "0.001"): ["0.3000", "0.8000", "0.5000", "0.7000", "2/3", "0.4200 ± 0.0500",
                                    "0.7400 ± 0.1000"],
        ("MODEL = unet", "0.0001"): ["0.3500", "0.7500", "0.4000", "0.7800", "3/3", "0.3800 ± 0.0400",
                                     "0.8000 ± 0.0200"],
        ("MODEL = resnet34_unet", "0.001"): ["0.3000", "0.8500", "0.3500", "0.9000", "2/2", "—", "—"],
    }
    assert "![train and val loss and Dice per epoch, MODEL = unet](curves_model=unet.png)" in text
    ranking = text.split("## Ranking\n\n")[1].split("\n\n")[0].splitlines()
    assert ranking == [
        f"1. **{UNET_1E4}**: test Dice 0.8000 ± 0.0200 (best val Dice 0.7800 at epoch 3)",
        f"2. **{UNET_1E3}**: test Dice 0.7400 ± 0.1000 (best val Dice 0.7500 at epoch 2)",
        f"3. **{R34_1E3}**: best val Dice 0.9000 at epoch 2 (not tested)"]
    unfinished = text.split("## Unfinished runs\n\n")[1].splitlines()
    assert unfinished[0] == f"- **{R34_1E3}**: failed: `segkit: error: out of memory` (`{sweep_folder / R34_1E3}`)"
    assert unfinished[1] == f"- **{R34_1E4}**: pending (`{sweep_folder / R34_1E4}`)"
    assert [r.name for r, _ in result["ranking"]] == [UNET_1E4, UNET_1E3, R34_1E3]
    assert sorted(Path(p).name for p in result["plots"]) == ["curves_model=resnet34_unet.png",
                                                              "curves_model=unet.png"]

    with open(tmp_path / "out" / "summary.csv", newline="") as f:
        table = {row["run"]: row for row in csv.DictReader(f)}
    assert list(table) == [UNET_1E3, UNET_1E4, R34_1E3, R34_1E4]
    assert {k: table[UNET_1E3][k] for k in ("MODEL", "SOLVER.BASE_LR", "status", "epochs", "best_epoch",
                                            "best_val_dice", "val_dice", "test_dice_mean", "test_n", "seconds")} == \
        {"MODEL": "unet", "SOLVER.BASE_LR": "0.001", "status": "done", "epochs": "3", "best_epoch": "2",
         "best_val_dice": "0.75", "val_dice": "0.7", "test_dice_mean": "0.74", "test_n": "8", "seconds": "12.5"}
    assert (table[R34_1E4]["status"], table[R34_1E4]["epochs"], table[R34_1E4]["test_dice_mean"]) == ("pending", "", "")


def test_group_by_a_setting_and_an_unknown_key(sweep_folder, tmp_path):
    summarize([str(sweep_folder)], out=str(tmp_path), group_by=["SOLVER.BASE_LR"], title="By LR")
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# By LR\n")
    assert [line for line in text.splitlines() if line.startswith("## SOLVER")] == \
        ["## SOLVER.BASE_LR = 0.001", "## SOLVER.BASE_LR = 0.0001"]
    assert sorted(p.name for p in tmp_path.glob("curves_*.png")) == ["curves_base_lr=0.0001.png",
                                                                      "curves_base_lr=0.001.png"]
    with pytest.raises(SummaryError, match="--group-by SOLVER.NOPE: no run has this setting; settings that "
                                           "differ here: MODEL, SOLVER.BASE_LR"):
        summarize([str(sweep_folder)], out=str(tmp_path), group_by=["SOLVER.NOPE"])


def test_plain_run_folders_are_told_apart_by_the_config_keys_that_differ(tmp_path):
    for name, lr in (("a", "1e-3"), ("b", "1e-4")):
        dump_config(load_config(BASE, ["SOLVER.BASE_LR", lr, "OUTPUT_DIR", str(tmp_path / name)]),
                    str(tmp_path / "runs" / name / "config.yaml"))
    (tmp_path / "runs" / "a" / "metrics.jsonl").write_text('{"type": "epoch", "epoch": 1, "val/dice": 0.5}\n')
    runs, manifests = collect_runs([str(tmp_path / "runs")])
    assert [r.name for r in runs] == ["a", "b"] and manifests == []
    assert [r.status for r in runs] == ["trained, not tested", "no results"]
    summarize([str(tmp_path / "runs")], out=str(tmp_path / "out"))
    rows = [line for line in (tmp_path / "out" / "summary.md").read_text().splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| SOLVER.BASE_LR | train loss |")  # OUTPUT_DIR differs too, but says nothing
    assert rows[2].startswith("| 0.001 | — | — | — | 0.5000 | 1/1 |") and len(rows) == 3
    with pytest.raises(SummaryError, match="no runs in"):
        collect_runs([str(tmp_path / "out")])


# --------------------------------------------------------------------------- curves
def _run(terms=None) -> RunResult:
    return RunResult(name="r", path="", config={} if terms is None else {"LOSS.TERMS": terms})


@pytest.mark.parametrize("terms, label", [
    ([{"NAME": "bce", "WEIGHT": 1.0}], "Loss (BCE)"),
    ([{"NAME": "dice", "WEIGHT": 1.0}], "Loss (dice)"),
    ([{"NAME": "bce", "WEIGHT": 1.0}, {"NAME": "dice", "WEIGHT": 1.0}], "Loss (bce + dice)"),
    ([{"NAME": "bce", "WEIGHT": 0.5}, {"NAME": "lovasz"}], "Loss (0.5·bce + lovasz)"),
    (None, "Loss"),  # a run folder without config.yaml
])
def test_the_loss_label_names_the_configured_loss(terms, label):
    assert loss_label([_run(terms)]) == label


def test_runs_with_different_losses_get_a_plain_loss_label(tmp_path):
    bce = [{"NAME": "bce", "WEIGHT": 1.0}]
    assert loss_label([_run(bce), _run(bce)]) == "Loss (BCE)"
    assert loss_label([_run(bce), _run([{"NAME": "focal", "WEIGHT": 1.0}])]) == "Loss"
    assert loss_label([_run(bce), _run()]) == "Loss"
    dump_config(load_config(BASE), str(tmp_path / "config.yaml"))  # the default loss, as a run dumps it
    assert loss_label([read_run(str(tmp_path))]) == "Loss (BCE)"


def test_curves_show_every_run_train_solid_and_val_dashed(sweep_folder, tmp_path):
    summarize([str(sweep_folder)], out=str(tmp_path))
    with Image.open(tmp_path / "curves_model=unet.png") as image:
        assert image.size == PLOT_SIZE == (1280, 560)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    saturated = {tuple(p) for p in pixels if p.max() - p.min() > 100}
    assert len({(r // 32, g // 32, b // 32) for r, g, b in saturated}) >= 2, "two runs, two colours"

    runs = [r for r in collect_runs([str(sweep_folder)])[0] if r.name in (UNET_1E3, UNET_1E4)]
    fig = curves_figure(runs, "MODEL = unet", ["SOLVER.BASE_LR"])
    loss, dice = fig.axes[:2]
    assert (loss.get_title(), dice.get_title()) == ("Loss (bce + dice)", "Dice")
    assert [(line.get_linestyle(), list(line.get_ydata())) for line in loss.lines[:2]] == \
        [("-", [0.6, 0.4, 0.3]), ("--", [0.65, 0.45, 0.5])]
    assert list(dice.lines[3].get_xdata()) == [1, 2, 3] and list(dice.lines[3].get_ydata()) == [0.5, 0.65, 0.78]
    colours = [line.get_color() for line in dice.lines]
    assert colours[0] == colours[1] != colours[2] == colours[3]  # one colour per run
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["base_lr=0.001", "base_lr=0.0001", "train", "val"]
    r34 = curves_figure([r for r in collect_runs([str(sweep_folder)])[0] if r.name == R34_1E3], "x")
    assert r34.axes[0].get_title() == "Loss (BCE)"  # the base config's loss


# --------------------------------------------------------------------------- the command
def test_summarize_command_prints_the_ranking(sweep_folder, tmp_path, capsys):
    assert main(["summarize", str(sweep_folder), "--out", str(tmp_path / "out"), "--group-by", "MODEL"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"1. {UNET_1E4}: test Dice 0.8000 ± 0.0200 (best val Dice 0.7800 at epoch 3)"
    assert lines[-1] == (f"4 runs; wrote summary.md, summary.csv, curves_model=unet.png, "
                         f"curves_model=resnet34_unet.png to {tmp_path / 'out'}")


@pytest.mark.parametrize("argv, message", [
    (["nowhere"], "'{tmp}/nowhere' is not a folder"),
    (["empty"], "no runs in '{tmp}/empty'"),
])
def test_summarize_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["summarize", *(str(tmp_path / a) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segkit: error: " + message.format(tmp=tmp_path)) and len(err.splitlines()) == 1


def test_python_m_segkit_summarize(sweep_folder, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "segkit", "summarize", str(sweep_folder), "--out",
                           str(tmp_path / "out"), "--title", "From the shell"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# From the shell\n")
    assert proc.stdout.splitlines()[-1].startswith("4 runs; wrote summary.md, summary.csv")


# --------------------------------------------------------------------------- visualize's best/worst page
def test_best_worst_grid_places_each_tile_with_its_caption(tmp_path):
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    tiles = {}
    for name, rgb in colours.items():
        tiles[name] = str(tmp_path / f"{name}.png")
        Image.new("RGB", (40, 30), rgb).save(tiles[name])
    path = tmp_path / "grid" / "best_worst.png"
    best_worst_grid([(tiles["red"], "red\ndice 0.900"), (tiles["green"], "green\ndice 0.800"),
                     (tiles["blue"], "blue\ndice 0.700")],
                    [(tiles["blue"], "blue\ndice 0.100")], str(path), thumb=64)
    with Image.open(path) as page:
        page = page.convert("RGB")
        # label column 60, then 3 tiles of 64 + 6 padding; 2 rows of tile + 32 caption + 6 padding
        assert page.size == (60 + 3 * 70 + 6, 2 * (64 + 32 + 6) + 6)
        centre = lambda col, row: page.getpixel((66 + col * 70 + 32, 6 + row * 102 + 32))  # noqa: E731
        assert [centre(0, 0), centre(1, 0), centre(2, 0), centre(0, 1)] == \
            [colours["red"], colours["green"], colours["blue"], colours["blue"]]
        assert page.getpixel((66 + 70 + 32, 6 + 102 + 32)) == (255, 255, 255)  # no second worst tile
        caption = np.asarray(page.crop((66, 6 + 64 + 2, 66 + 64, 6 + 64 + 30)))
        assert (caption < 128).any(), "the caption is written under the tile"
