"""Sweeps and summaries: grid parsing and run naming in-process, then a real 2×2 sweep of tiny
runs through the tools, its resume, its summary, and a sweep with a failing run."""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from segkit.config import load_config
from segkit.summary import PLOT_SIZE, panel_boxes, summarize
from segkit.sweep import (SweepError, compose_config, expand, load_sweep, main as sweep_main, parse_grid_arg,
                          run_name, run_overrides, short_keys, split_values, validate)

from .conftest import REPO, tiny_overrides

# One thread per process: tiny models gain nothing from more, and two processes spinning for
# the same two cores slow each other down many times over.
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
BASE = str(REPO / "configs" / "unet_noaug_cosine.yaml")
GRID = ["--grid", "SOLVER.BASE_LR=1e-3,1e-2", "--grid", "MODEL.BACKBONE.CHANNELS=[4,8,16,32,64],[2,4,8,16,32]"]
RUNS = ["base_lr=0.001__channels=4-8-16-32-64", "base_lr=0.001__channels=2-4-8-16-32",
        "base_lr=0.01__channels=4-8-16-32-64", "base_lr=0.01__channels=2-4-8-16-32"]


def tool(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[:2]} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def manifest(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


# --------------------------------------------------------------------------- grid parsing and naming
def test_grid_values_are_read_like_command_line_overrides():
    assert parse_grid_arg("SOLVER.BASE_LR=1e-3,1e-4") == ("SOLVER.BASE_LR", [0.001, 0.0001])
    assert parse_grid_arg("MODEL=unet,resnet34_unet") == ("MODEL", ["unet", "resnet34_unet"])
    assert parse_grid_arg("MODEL.BACKBONE.CHANNELS=[4,8],[2, 4]") == ("MODEL.BACKBONE.CHANNELS", [[4, 8], [2, 4]])
    assert parse_grid_arg("MODEL.CHANNELS_LAST=True,False")[1] == [True, False]
    assert parse_grid_arg("SOLVER.EPOCHS=5")[1] == [5]
    assert split_values("'a,b',[1,(2,3)],c") == ["'a,b'", "[1,(2,3)]", "c"]


@pytest.mark.parametrize("text, message", [
    ("SOLVER.BASE_LR", "expected KEY=v1,v2"),
    ("=1,2", "expected KEY=v1,v2"),
    ("SOLVER.BASE_LR=1e-3,,1e-4", "SOLVER.BASE_LR: empty value"),
    ("MODEL.BACKBONE.CHANNELS=[4,8", "unbalanced"),
])
def test_bad_grid_arguments_name_the_problem(text, message):
    with pytest.raises(SweepError, match=message):
        parse_grid_arg(text)


def test_bad_grids_fail_before_anything_runs(tmp_path):
    with pytest.raises(SweepError, match="SOLVER.BASE_LR repeats the value"):
        load_sweep(BASE, ["SOLVER.BASE_LR=1e-3,0.001"])
    with pytest.raises(SweepError, match="OUTPUT_DIR cannot be a grid key"):
        load_sweep(BASE, ["OUTPUT_DIR=a,b"])
    with pytest.raises(SweepError, match=r"MODEL=resnet50: there is no .*models/resnet50.yaml; choose from: "
                                         r"resnet34_unet, .*, unet"):
        validate(*_sweep_and_runs(BASE, ["MODEL=resnet50"]))
    with pytest.raises(SweepError, match="Did you mean 'SOLVER.EPOCHS'"):
        validate(*_sweep_and_runs(BASE, ["SOLVER.EPOCH=1,2"]))
    with pytest.raises(SweepError, match=r"run epochs=abc: .*SOLVER.EPOCHS expects int"):
        validate(*_sweep_and_runs(BASE, ["SOLVER.EPOCHS=2,abc"]))
    bad_file = tmp_path / "sweep.yaml"
    bad_file.write_text(f"BASE: {BASE}\nGRIDS:\n  SOLVER.BASE_LR: [1.0e-3]\n")
    with pytest.raises(SweepError, match="unknown key 'GRIDS'. Did you mean 'GRID'"):
        load_sweep(str(bad_file))


def _sweep_and_runs(config, grid, overrides=()):
    sweep = load_sweep(config, grid, list(overrides))
    return sweep, expand(sweep)


def test_run_names_are_readable_unique_and_file_safe():
    assert run_name({"MODEL": "unet", "SOLVER.BASE_LR": 0.001}) == "model=unet__base_lr=0.001"
    assert run_name({"SOLVER.BASE_LR": 1e-5}) == "base_lr=1e-05"
    assert run_name({"MODEL.BACKBONE.CHANNELS": [4, 8, 16]}) == "channels=4-8-16"
    assert run_name({"DATA.ROOT": "/data/my pets"}) == "root=data_my_pets"
    assert run_name({}) == "default"
    assert short_keys(["SOLVER.SCHEDULER.NAME", "MODEL.BACKBONE.NAME", "SOLVER.BASE_LR"]) == \
        {"SOLVER.SCHEDULER.NAME": "scheduler.name", "MODEL.BACKBONE.NAME": "backbone.name",
         "SOLVER.BASE_LR": "base_lr"}
    long_a, long_b = run_name({"X.Y": "a" * 300}), run_name({"X.Y": "a" * 299 + "b"})
    assert len(long_a) <= 160 and long_a != long_b
    with pytest.raises(SweepError, match="would share the folder name 'root=a_b'"):
        _sweep_and_runs(BASE, ["DATA.ROOT=a/b,a_b"])


def test_grid_is_the_cartesian_product_in_the_order_given(tmp_path):
    sweep, runs = _sweep_and_runs(BASE, ["MODEL=unet,resnet34_unet", "SOLVER.BASE_LR=1e-3,1e-4,1e-5"])
    assert [r.name for r in runs] == [f"model={m}__base_lr={lr}" for m in ("unet", "resnet34_unet")
                                      for lr in ("0.001", "0.0001", "1e-05")]
    assert runs[4].settings == {"MODEL": "resnet34_unet", "SOLVER.BASE_LR": 0.0001}
    assert runs[4].output_dir == os.path.join("work_dirs", "sweeps", "unet_noaug_cosine", runs[4].name)


def test_group_keys_pick_base_files_merged_before_the_overrides(tmp_path):
    config = str(REPO / "configs" / "unet_aug_cosine.yaml")
    sweep, runs = _sweep_and_runs(config, ["MODEL=resnet34_unet", "AUGMENT=none,lab"],
                                  ["MODEL.BACKBONE.NAME", "resnet18", "SOLVER.BASE_LR", "3e-4"])
    for run, transforms in zip(runs, (0, 6)):
        folder = tmp_path / run.name
        folder.mkdir()
        cfg = load_config(compose_config(sweep, run, str(folder)), run_overrides(sweep, run))
        assert cfg.MODEL.BACKBONE.NAME == "resnet18"  # the group file, then the fixed override
        assert len(cfg.INPUT.TRAIN_TRANSFORMS) == transforms
        assert cfg.SOLVER.BASE_LR == 3e-4 and cfg.OUTPUT_DIR == run.output_dir


@pytest.mark.parametrize("name, runs, checks", [
    ("lr", 6, {"SOLVER.BATCH_SIZE": 4, "INPUT.TRAIN_TRANSFORMS": [], "SOLVER.EPOCHS": 50}),
    ("batch_size", 4, {"SOLVER.BASE_LR": 1e-5, "INPUT.TRAIN_TRANSFORMS": []}),
    ("augment", 4, {"SOLVER.BATCH_SIZE": 8, "SOLVER.BASE_LR": 1e-4}),
    ("best", 2, {"SOLVER.BATCH_SIZE": 8, "SOLVER.BASE_LR": 1e-4, "SOLVER.SCHEDULER.NAME": "cosine"}),
])
def test_report_sweeps_are_valid(name, runs, checks, tmp_path):
    sweep, expanded = _sweep_and_runs(str(REPO / "configs" / "report" / f"{name}.yaml"), [], ["DATA.ROOT", "/data"])
    assert len(expanded) == runs and sweep.title.startswith("Table")
    assert sweep.group_by == ([] if name == "best" else ["MODEL"])  # Table 4 puts both models in one table
    validate(sweep, expanded)
    for run in expanded:
        (tmp_path / run.name).mkdir()
        cfg = load_config(compose_config(sweep, run, str(tmp_path / run.name)), run_overrides(sweep, run))
        for key, want in checks.items():
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == want, (run.name, key)
        assert cfg.MODEL.BACKBONE.NAME == {"unet": "unet", "resnet34_unet": "resnet34"}[run.settings["MODEL"]]
        assert cfg.INPUT.SIZE == 256


def test_dry_run_lists_runs_and_writes_nothing(tmp_path, capsys):
    assert sweep_main([BASE, *GRID, "--dry-run", "--output-root", str(tmp_path), "DATA.ROOT", "/data"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name} (would run)" in out for name in RUNS) and "4 runs" in out
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- a real sweep of tiny runs
@pytest.fixture(scope="module")
def tiny_sweep(synthetic_root, tmp_path_factory):
    """A 2×2 sweep of one-epoch tiny runs through tools/sweep.py; the folder and the command."""
    root = tmp_path_factory.mktemp("sweeps")
    cmd = [str(REPO / "tools" / "sweep.py"), BASE, *GRID, "--name", "tiny", "--output-root", str(root),
           "--jobs", "2", *tiny_overrides(synthetic_root, str(root / "ignored"), epochs=1)]
    proc = tool(*cmd)
    return root / "tiny", cmd, proc


def test_sweep_trains_and_tests_every_combination(tiny_sweep):
    folder, _, proc = tiny_sweep
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(RUNS)
    for name in RUNS:
        run = folder / name
        assert (run / "test.json").is_file() and (run / "best.pth").is_file()
        cfg = load_config(str(run / "config.yaml"))
        assert cfg.OUTPUT_DIR == str(run) and cfg.SOLVER.EPOCHS == 1
        # test.json holds the JSON line tools/test.py printed last
        logged = [line for line in (run / "sweep.log").read_text().splitlines() if line.startswith("{")]
        assert json.loads(logged[-1]) == json.loads((run / "test.json").read_text())
    data = manifest(folder)
    assert [r["name"] for r in data["runs"]] == RUNS
    assert all(r["status"] == "done" and r["exit_code"] == 0 and r["seconds"] > 0 for r in data["runs"])
    assert data["runs"][1]["overrides"] == {"SOLVER.BASE_LR": 0.001, "MODEL.BACKBONE.CHANNELS": [2, 4, 8, 16, 32]}
    assert data["grid"]["SOLVER.BASE_LR"] == [0.001, 0.01]
    assert "SOLVER.BASE_LR is replaced by the sweep's own value" in proc.stdout
    assert "4 done" in proc.stdout


def test_rerunning_a_finished_sweep_skips_every_run(tiny_sweep):
    folder, cmd, _ = tiny_sweep
    before = {name: (folder / name / "test.json").stat().st_mtime_ns for name in RUNS}
    start = time.perf_counter()
    proc = tool(*cmd)
    assert time.perf_counter() - start < 20  # nothing trained
    assert "4 skipped" in proc.stdout and "training" not in proc.stdout
    data = manifest(folder)
    assert [r["status"] for r in data["runs"]] == ["skipped"] * 4
    assert all(r["seconds"] > 0 for r in data["runs"])  # the time the runs took is kept
    assert before == {name: (folder / name / "test.json").stat().st_mtime_ns for name in RUNS}


def _epochs(run: Path) -> list:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["type"] == "epoch"]


def _table_rows(markdown: str) -> dict:
    """{(lr, channels): cells} of the Markdown table rows."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| 0.0"):
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_summary_tables_match_the_runs_logs(tiny_sweep, tmp_path):
    folder, _, _ = tiny_sweep
    out = tmp_path / "summary"
    proc = tool("-m", "segkit.cli", "summarize", str(folder), "--out", str(out))
    text = (out / "summary.md").read_text()
    rows = _table_rows(text)
    assert len(rows) == 4
    tests = {}
    for name in RUNS:
        run = folder / name
        final, test = _epochs(run)[-1], json.loads((run / "test.json").read_text())
        lr, channels = manifest(folder)["runs"][RUNS.index(name)]["overrides"].values()
        cells = rows[(f"{lr:g}", json.dumps(channels))]
        assert cells[:4] == [f"{final[k]:.4f}" for k in ("train/loss", "train/dice", "val/loss", "val/dice")]
        assert cells[4] == "1/1"
        assert cells[5] == f"{test['loss_mean']:.4f} ± {test['loss_std']:.4f}"
        assert cells[6] == f"{test['dice_mean']:.4f} ± {test['dice_std']:.4f}"
        tests[name] = test["dice_mean"]

    ranked = [line for line in text.split("## Ranking")[1].splitlines() if line[:1].isdigit()]
    assert len(ranked) == 4
    order = [next(n for n in RUNS if f"**{n}**" in line) for line in ranked]
    assert [tests[n] for n in order] == sorted(tests.values(), reverse=True)
    assert proc.stdout.splitlines()[0].startswith(f"1. {order[0]}: test Dice")

    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["run"] for r in table] == RUNS
    for row in table:
        test = json.loads((folder / row["run"] / "test.json").read_text())
        assert float(row["test_dice_mean"]) == pytest.approx(test["dice_mean"])
        assert float(row["val_dice"]) == pytest.approx(_epochs(folder / row["run"])[-1]["val/dice"])
        assert row["status"] == "done" and row["best_epoch"] == "1"


def test_summary_plot_draws_every_run(tiny_sweep, tmp_path):
    folder, _, _ = tiny_sweep
    summarize([str(folder)], out=str(tmp_path))
    image = Image.open(tmp_path / "curves_all.png").convert("RGB")
    assert image.size == PLOT_SIZE
    for left, top, right, bottom in panel_boxes(image.size):
        inside = image.crop((left + 2, top + 2, right - 1, bottom - 1))
        colours = {c for _, c in inside.getcolors(maxcolors=1 << 16) if len(set(c)) > 1}  # not white or grey
        assert len(colours) >= 2, "the runs' curves should show in distinct colours"


def test_summary_groups_by_a_setting(tiny_sweep, tmp_path):
    folder, _, _ = tiny_sweep
    summarize([str(folder)], out=str(tmp_path), group_by=["SOLVER.BASE_LR"])
    text = (tmp_path / "summary.md").read_text()
    assert "## SOLVER.BASE_LR = 0.001" in text and "## SOLVER.BASE_LR = 0.01" in text
    assert sorted(p.name for p in tmp_path.glob("curves_*.png")) == ["curves_base_lr=0.001.png",
                                                                      "curves_base_lr=0.01.png"]
    with pytest.raises(ValueError, match="--group-by SOLVER.NOPE: no run has this setting"):
        summarize([str(folder)], out=str(tmp_path), group_by=["SOLVER.NOPE"])


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(synthetic_root, tmp_path):
    # -1 passes the config's type check but the optimizer refuses it: a failure at run time.
    proc = tool(str(REPO / "tools" / "sweep.py"), BASE, "--grid", "SOLVER.BASE_LR=-1.0,1e-3", "--name", "bad",
                "--output-root", str(tmp_path), *tiny_overrides(synthetic_root, str(tmp_path / "x"), epochs=1),
                check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    folder = tmp_path / "bad"
    failed, done = manifest(folder)["runs"]
    assert failed["name"] == "base_lr=-1.0" and failed["status"] == "failed"
    assert failed["exit_code"] == 2 and failed["failed_stage"] == "train"
    assert "Invalid learning rate: -1.0" in failed["error"]
    assert "Invalid learning rate: -1.0" in (folder / "base_lr=-1.0" / "sweep.log").read_text()
    assert not (folder / "base_lr=-1.0" / "test.json").exists()
    assert done["status"] == "done" and (folder / "base_lr=0.001" / "test.json").is_file()
    assert "FAILED in train (exit 2)" in proc.stdout and "1 done, 1 failed" in proc.stdout
    summarize([str(folder)], out=str(tmp_path / "summary"))
    text = (tmp_path / "summary" / "summary.md").read_text()
    assert "## Unfinished runs" in text and "**base_lr=-1.0**: failed: `segkit: error: Invalid learning rate" in text
    assert "| 0.001 | " in text and "| -1 | " not in text  # only the finished run has a table row
