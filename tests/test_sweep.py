"""Sweeps: grid parsing and run naming, the child commands and their bookkeeping (with stand-in
children that take milliseconds), the command in-process and once as ``python -m segkit``, and
one real end-to-end sweep of tiny runs (slow)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segkit.commands import build_parser, main
from segkit.config import load_config
from segkit.experiments.report import summarize
from segkit.experiments.sweep import (Manifest, SweepError, compose_config, expand, load_sweep, parse_grid_arg,
                                      read_manifest, run_name, run_overrides, short_keys, split_values, validate)
from segkit.experiments.sweep import runner

from .conftest import REPO, tiny_overrides

BASE = str(REPO / "configs" / "unet_noaug_cosine.yaml")
GRID = ["--grid", "SOLVER.BASE_LR=1e-3,1e-2", "--grid", "MODEL.BACKBONE.CHANNELS=[4,8,16,32,64],[2,4,8,16,32]"]
RUNS = ["base_lr=0.001__channels=4-8-16-32-64", "base_lr=0.001__channels=2-4-8-16-32",
        "base_lr=0.01__channels=4-8-16-32-64", "base_lr=0.01__channels=2-4-8-16-32"]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


def _sweep_and_runs(config, grid, overrides=(), **kw):
    sweep = load_sweep(config, grid, list(overrides), **kw)
    return sweep, expand(sweep)


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


def test_grid_is_the_cartesian_product_in_the_order_given():
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


# --------------------------------------------------------------------------- the child commands
def test_child_commands_are_segkit_train_and_test_in_the_order_their_parsers_need(tmp_path):
    sweep, (run,) = _sweep_and_runs(BASE, ["SOLVER.BASE_LR=1e-3"], ["DATA.ROOT", "/data"],
                                    output_root=str(tmp_path), plugins=["my_plugin.py"])
    last, best = os.path.join(run.output_dir, "last.pth"), os.path.join(run.output_dir, "best.pth")
    overrides = ["DATA.ROOT", "/data", "SOLVER.BASE_LR", "0.001", "OUTPUT_DIR", run.output_dir]
    fresh = runner.train_command(sweep, run, "run.yaml")
    assert fresh == [sys.executable, "-m", "segkit", "train", "--plugin", "my_plugin.py", "run.yaml", *overrides]
    os.makedirs(run.output_dir)
    Path(last).touch()
    resumed = runner.train_command(sweep, run, "run.yaml")
    assert resumed[:4] == [sys.executable, "-m", "segkit", "train"] and resumed[-7:] == ["run.yaml", *overrides]
    # The real parsers read them back as meant: --resume's PATH is last.pth, not the config.
    args = build_parser().parse_args(resumed[3:])
    assert (args.resume, args.config, args.opts, args.plugin) == (last, "run.yaml", overrides, ["my_plugin.py"])
    test = runner.test_command(sweep, run)
    assert test[:4] == [sys.executable, "-m", "segkit", "test"] and test[-1] == last  # no best.pth yet
    Path(best).touch()
    args = build_parser().parse_args(runner.test_command(sweep, run)[3:])
    assert args.checkpoint == best and args.config == os.path.join(run.output_dir, "config.yaml")
    assert args.json_out == os.path.join(run.output_dir, "test.json") and args.opts == []


# A stand-in for `python -m segkit train|test`: it behaves by the run's learning rate.
FAKE_CHILD = textwrap.dedent("""
    import json, os, sys
    stage, out, lr = sys.argv[1], sys.argv[2], float(sys.argv[3])
    print(f"fake {stage} of {out}")
    if stage == "train":
        if lr == 2:
            print("Traceback ...\\nValueError: boom", file=sys.stderr)
            sys.exit(2)
        if lr == 4:
            sys.exit(130)  # as if the user pressed Ctrl-C in the child
        open(os.path.join(out, "config.yaml"), "w").close()
    elif lr != 3:  # 3: the test exits 0 but writes nothing
        with open(os.path.join(out, "test.json"), "w") as f:
            json.dump({"dice_mean": 0.5, "dice_std": 0.1, "n": 8}, f)
""")


@pytest.fixture
def fake_children(tmp_path, monkeypatch):
    """Replace the child commands with FAKE_CHILD; returns the list of (stage, run name) started."""
    script = tmp_path / "child.py"
    script.write_text(FAKE_CHILD)
    started = []

    def command(stage):
        def make(sweep, run, *_):
            started.append((stage, run.name))
            return [sys.executable, str(script), stage, run.output_dir, str(run.settings["SOLVER.BASE_LR"])]
        return make

    monkeypatch.setattr(runner, "train_command", command("train"))
    monkeypatch.setattr(runner, "test_command", command("test"))
    return started


def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path, fake_children, capsys):
    argv = ["sweep", BASE, "--grid", "SOLVER.BASE_LR=1,2,3", "--name", "fake", "--output-root", str(tmp_path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    folder = tmp_path / "fake"
    ok, train_failed, test_failed = manifest(folder)["runs"]
    assert ok["status"] == "done" and ok["exit_code"] == 0 and ok["seconds"] > 0
    assert (train_failed["status"], train_failed["failed_stage"], train_failed["exit_code"]) == ("failed", "train", 2)
    assert train_failed["error"].endswith("ValueError: boom")
    assert (test_failed["status"], test_failed["failed_stage"], test_failed["exit_code"]) == ("failed", "test", 1)
    log = (folder / "base_lr=3" / "sweep.log").read_text()
    assert "test exited 0 but wrote no test.json" in log and "=== test failed with exit code 1" in log
    assert log.count("\n$ ") == 2  # both commands are in the log, so the run can be repeated by hand
    assert "[1/3] base_lr=1: done" in out and "test Dice 0.5000 ± 0.1000 on 8 images" in out
    assert "[2/3] base_lr=2: FAILED in train (exit 2): ValueError: boom" in out
    assert "1 done, 2 failed" in out
    # Again: the finished run is skipped (its time kept), the failed ones are tried again.
    fake_children.clear()
    assert main(argv) == 1
    assert fake_children == [("train", "base_lr=2"), ("train", "base_lr=3"), ("test", "base_lr=3")]
    data = manifest(folder)
    assert [r["status"] for r in data["runs"]] == ["skipped", "failed", "failed"]
    assert data["runs"][0]["seconds"] == ok["seconds"]
    assert data["command"] == ["segkit", "sweep", BASE, "--grid", "SOLVER.BASE_LR=1,2,3", "--name", "fake",
                               "--output-root", str(tmp_path)]


def test_an_interrupted_child_stops_the_sweep(tmp_path, fake_children, capsys):
    argv = ["sweep", BASE, "--grid", "SOLVER.BASE_LR=4,1", "--name", "stop", "--output-root", str(tmp_path)]
    assert main(argv) == 130
    assert fake_children == [("train", "base_lr=4")]  # base_lr=1 never started
    assert [r["status"] for r in manifest(tmp_path / "stop")["runs"]] == ["failed", "pending"]


def test_ctrl_c_says_how_to_resume(monkeypatch, capsys, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("segkit.experiments.sweep.run_sweep", interrupted)
    assert main(["sweep", BASE, "--output-root", str(tmp_path)]) == 130
    assert "segkit sweep: interrupted; run the same command again to resume" in capsys.readouterr().err


def test_the_manifest_is_written_whole_and_keeps_earlier_times(tmp_path):
    sweep, runs = _sweep_and_runs(BASE, ["SOLVER.BASE_LR=1e-3,1e-4"], output_root=str(tmp_path))
    os.makedirs(sweep.folder)
    first = Manifest(sweep, runs, ["segkit", "sweep"])
    first.write()
    first.update(runs[0].name, status="done", seconds=12.5)
    entry = read_manifest(sweep.folder)["runs"][0]
    assert (entry["name"], entry["status"], entry["seconds"]) == (runs[0].name, "done", 12.5)
    assert os.listdir(sweep.folder) == ["sweep.json"]  # no temporary file left behind
    again = Manifest(sweep, runs, ["segkit", "sweep"])
    assert [(r["status"], r["seconds"]) for r in again.data["runs"]] == [("pending", 12.5), ("pending", None)]
    assert again.counts() == {"pending": 2}
    assert read_manifest(str(tmp_path / "nowhere")) is None


# --------------------------------------------------------------------------- the command
def test_dry_run_lists_runs_and_writes_nothing(tmp_path, capsys):
    assert main(["sweep", BASE, *GRID, "--dry-run", "--output-root", str(tmp_path), "DATA.ROOT", "/data",
                 "AUGMENT", "lab"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name} (would run)" in out for name in RUNS) and "4 runs" in out
    assert f"config: {BASE} + _base_/augment/lab.yaml" in out  # AUGMENT picks a file, not a value
    assert f"overrides: DATA.ROOT /data SOLVER.BASE_LR 0.001 MODEL.BACKBONE.CHANNELS '[4, 8, 16, 32, 64]' " \
           f"OUTPUT_DIR {tmp_path}/unet_noaug_cosine/{RUNS[0]}" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--grid", "SOLVER.BASE_LR=1e-3,0.001"], "SOLVER.BASE_LR repeats the value"),
    (["--name", "two words"], "sweep name 'two words' must be one plain word"),
    (["SOLVER.EPOCHS"], "overrides come in KEY VALUE pairs"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert main(["sweep", BASE, "--output-root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segkit: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_python_m_segkit_sweep_dry_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "segkit", "sweep", str(REPO / "configs" / "report" / "lr.yaml"),
                           "--dry-run", "--output-root", str(tmp_path), "DATA.ROOT", "/data"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "sweep report_lr: 6 runs" in proc.stdout and "[6/6] model=resnet34_unet__base_lr=1e-05" in proc.stdout


# --------------------------------------------------------------------------- a real sweep (slow)
@pytest.mark.slow
def test_a_real_sweep_trains_tests_records_and_resumes(synthetic_root, tmp_path, monkeypatch, capsys):
    """Tiny one-epoch runs through real child processes: one good, one whose backbone does not
    exist (a valid config value, so it fails at run time, when the model is built), two at a time."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two children sharing the cores
    argv = ["sweep", BASE, "--grid", "MODEL.BACKBONE.NAME=nosuchnet,unet", "--name", "tiny", "--output-root",
            str(tmp_path), "--jobs", "2", *tiny_overrides(synthetic_root, str(tmp_path / "ignored"), epochs=1)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    folder = tmp_path / "tiny"
    failed, done = manifest(folder)["runs"]
    assert (failed["name"], failed["status"], failed["failed_stage"], failed["exit_code"]) == \
        ("name=nosuchnet", "failed", "train", 2)
    assert "No backbones named 'nosuchnet'" in failed["error"]
    assert not (folder / "name=nosuchnet" / "test.json").exists()
    run = folder / "name=unet"
    assert done["status"] == "done" and (run / "best.pth").is_file()
    cfg = load_config(str(run / "config.yaml"))
    assert cfg.OUTPUT_DIR == str(run) and cfg.SOLVER.EPOCHS == 1 and cfg.MODEL.BACKBONE.NAME == "unet"
    # test.json holds the JSON line `segkit test` printed last
    logged = [line for line in (run / "sweep.log").read_text().splitlines() if line.startswith("{")]
    assert json.loads(logged[-1]) == json.loads((run / "test.json").read_text())
    assert "MODEL.BACKBONE.NAME is replaced by the sweep's own value" in out and "1 done, 1 failed" in out
    assert "FAILED in train (exit 2)" in out

    before = (run / "test.json").stat().st_mtime_ns
    assert main(argv) == 1  # the finished run is skipped; the failed one fails again
    assert "1 skipped, 1 failed" in capsys.readouterr().out
    assert (run / "test.json").stat().st_mtime_ns == before

    summarize([str(folder)], out=str(tmp_path / "summary"))
    text = (tmp_path / "summary" / "summary.md").read_text()
    assert "**name=nosuchnet**: failed: `segkit: error: No backbones named 'nosuchnet'" in text
    assert "| unet | " in text and "| nosuchnet | " not in text  # only the finished run has a table row
    assert (tmp_path / "summary" / "curves_all.png").is_file()
