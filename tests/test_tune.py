"""segkit tune: SPECs and tune files, the checks before anything trains, trials as runs with
pruning, studies shared and continued by workers, a dead worker's trial retried, and the study's
report."""
import json
import os
import subprocess
import sys
import time
import warnings

import pytest

optuna = pytest.importorskip("optuna")  # the dev extra installs it; CI runs these

from segkit.experiments import tune  # noqa: E402
from segkit.experiments.tune import Param, TuneError, load_tune, parse_space_arg, parse_spec  # noqa: E402
from segkit.experiments.tune import study as study_module  # noqa: E402

from .conftest import REPO, tiny_overrides  # noqa: E402

SPACE = ["SOLVER.BASE_LR=log:1e-4:1e-2", "SOLVER.BATCH_SIZE=choice:4,8"]


def tiny(root, folder, epochs=2):
    """Tiny-run overrides without OUTPUT_DIR (the study names each trial's folder) or the keys
    the tests search."""
    opts = tiny_overrides(root, str(folder), epochs=epochs)
    dropped = ("OUTPUT_DIR", "SOLVER.BASE_LR", "SOLVER.BATCH_SIZE")
    return [x for k, v in zip(opts[0::2], opts[1::2]) if k not in dropped for x in (k, v)]


def test_specs():
    assert parse_spec("SOLVER.BASE_LR", "log:1e-5:1e-3") == Param("SOLVER.BASE_LR", "log", 1e-5, 1e-3)
    assert parse_spec("SOLVER.EPOCHS", "int:2:10") == Param("SOLVER.EPOCHS", "int", 2, 10)
    assert parse_spec("SOLVER.WEIGHT_DECAY", "float:0:0.1").kind == "float"
    assert parse_space_arg("SOLVER.BATCH_SIZE=choice:4,8").choices == (4, 8)  # read as overrides are
    assert parse_space_arg("MODEL=choice:unet,resnet34_unet").is_group
    assert parse_spec("AUGMENT", ["lab", "none"]).choices == ("lab", "none")  # a tune file's YAML list
    bad = [("SOLVER.BASE_LR=log1e-5:1e-3", "is not a SPEC"), ("SOLVER.BASE_LR=log:1e-3:1e-5", "LOW 0.001 is greater"),
           ("SOLVER.BASE_LR=log:0:1e-3", "needs LOW > 0"), ("SOLVER.EPOCHS=int:2:2.5", "not an integer"),
           ("SOLVER.EPOCHS=int:2", "needs two bounds"), ("SOLVER.BATCH_SIZE=choice:4,4", "lists a value twice"),
           ("SOLVER.BATCH_SIZE=choice:", "at least one value"), ("X=choice:[1,2],[3]", "single numbers"),
           ("OUTPUT_DIR=choice:a,b", "OUTPUT_DIR cannot be searched"), ("SOLVER.BASE_LR", "expected KEY=SPEC"),
           ("SOLVER.BASE_LR=float:a:1", "'a' is not a finite number")]
    for text, message in bad:
        with pytest.raises(TuneError, match=message):
            parse_space_arg(text)


def test_tune_file_and_command_line(tmp_path):
    path = tmp_path / "my_tune.yaml"
    path.write_text("BASE: unet_noaug_cosine\nNAME: mine\nTRIALS: 7\nSPACE:\n  SOLVER.BASE_LR: log:1e-5:1e-3\n"
                    "  AUGMENT: [lab, none]\nOVERRIDES:\n  SOLVER.EPOCHS: 3\n  INPUT.SIZE: 64\n")
    s = load_tune(str(path), ["SOLVER.BASE_LR=log:1e-4:1e-2"], ["SEED", "3"], trials=None, pruner="hyperband")
    assert os.path.basename(s.base) == "unet_noaug_cosine.yaml" and s.name == "mine" and s.trials == 7
    assert [p.describe() for p in s.space] == ["AUGMENT=choice:lab,none", "SOLVER.BASE_LR=log:0.0001:0.01"]
    assert s.overrides == ["SOLVER.EPOCHS", "3", "INPUT.SIZE", "64", "SEED", "3"] and s.pruner == "hyperband"
    assert s.storage_url == "sqlite:///" + os.path.abspath(os.path.join("work_dirs", "studies", "mine", "study.db"))
    path.write_text("BASE: unet_noaug_cosine\nSPACE: {SOLVER.BASE_LR: 'log:1e-5:1e-3'}\nTRIAL: 3\n")
    with pytest.raises(TuneError, match="unknown key 'TRIAL'"):
        load_tune(str(path))
    cases = [((["SOLVER.BASE_LR=log:1e-5:1e-3"],), {"sampler": "grid"}, "--sampler grid needs every SPEC"),
             ((["SOLVER.BASE_LR=log:1e-5:1e-3"],), {"metric": "test/dice"}, "the test split never chooses"),
             ((["SOLVER.BASE_LR=log:1e-5:1e-3"], ["SOLVER.BASE_LR", "1e-3"]), {}, "both searched"),
             (([],), {}, "nothing to search"), ((SPACE,), {"trials": 0}, "--trials must be")]
    for args, options, message in cases:
        with pytest.raises(TuneError, match=message):
            load_tune("unet_noaug_cosine", *args, **options)


def test_the_space_is_checked_before_anything_trains(tmp_path):
    def settings(*space, output_root=str(tmp_path)):
        return load_tune("unet_noaug_cosine", list(space), output_root=output_root)

    with pytest.raises(TuneError, match="SOLVER.BASE_RL=.*unknown config key 'SOLVER.BASE_RL'. Did you mean "
                                        "'SOLVER.BASE_LR'"):
        tune.check_space(settings("SOLVER.BASE_RL=log:1e-5:1e-3"))
    with pytest.raises(TuneError, match="SOLVER.BATCH_SIZE=int:0:8.*SOLVER.BATCH_SIZE is 0"):
        tune.check_space(settings("SOLVER.BATCH_SIZE=int:0:8"))
    with pytest.raises(TuneError, match="MODEL: 'resnet35_unet' names no file.*choose from: .*resnet34_unet"):
        tune.check_space(settings("MODEL=choice:unet,resnet35_unet"))
    tune.check_space(settings("MODEL=choice:unet,resnet34_unet", "SOLVER.BASE_LR=log:1e-5:1e-3"))
    assert not os.listdir(tmp_path)  # nothing written


def test_storage_and_clashing_studies(tmp_path):
    s = load_tune("unet_noaug_cosine", SPACE, output_root=str(tmp_path), name="s1")
    for url, message in [("sqlite:///" + str(tmp_path / "nowhere" / "x.db"), "does not exist"),
                         ("nosuchdb://user@localhost/x", "cannot be opened")]:
        s.storage = url
        with pytest.raises(TuneError, match=message):
            tune.open_study(s, seed=0, epochs=2)
    s.storage = ""
    study = tune.open_study(s, seed=0, epochs=2)
    assert study.user_attrs["segkit"]["metric"] == "val/dice"
    tune.open_study(s, seed=0, epochs=2)  # the same space joins it
    other = load_tune("unet_noaug_cosine", ["SOLVER.BASE_LR=log:1e-5:1e-3"], output_root=str(tmp_path), name="s1")
    with pytest.raises(TuneError, match="study 's1' .* exists with another space.*Use another --study"):
        tune.open_study(other, seed=0, epochs=2)
    with sqlite3_journal(tmp_path / "s1" / "study.db") as mode:
        assert mode == "wal"


class sqlite3_journal:
    def __init__(self, path):
        import sqlite3

        self.db = sqlite3.connect(str(path))

    def __enter__(self):
        return self.db.execute("PRAGMA journal_mode").fetchone()[0]

    def __exit__(self, *exc):
        self.db.close()


def test_a_study_trains_prunes_tests_the_best_and_continues(synthetic_root, tmp_path, segkit_cli):
    spaces = [w for s in SPACE for w in ("--space", s)]
    base = ["tune", "unet_noaug_cosine", *tiny(synthetic_root, tmp_path, epochs=3), *spaces,
            "--study", "st", "--output-root", tmp_path, "--sampler", "random", "--json-out", tmp_path / "r.json"]
    result = segkit_cli(*base, "--trials", "4").json()
    folder = tmp_path / "st"
    assert sum(result["counts"].values()) == 4 and set(result["counts"]) <= {"complete", "pruned"}
    trials = sorted(p.name for p in folder.iterdir() if p.name.startswith("trial_"))
    assert trials == ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    for name in trials:  # every trial is a normal run folder, pruned ones included
        assert {"config.yaml", "metrics.jsonl", "last.pth", "best.pth"} <= set(os.listdir(folder / name))
    best = result["best"]
    assert json.loads((folder / f"trial_{best['trial']:04d}" / "test.json").read_text())["dice_mean"] == \
        best["test_dice_mean"]
    study = optuna.load_study(study_name="st", storage=result["storage"])
    assert study.best_trial.number == best["trial"] and set(best["params"]) == {"SOLVER.BASE_LR", "SOLVER.BATCH_SIZE"}
    epochs = [len((folder / n / "metrics.jsonl").read_text().splitlines()) for n in trials]
    assert all(e >= 1 for e in epochs)
    info = json.loads((folder / "study.json").read_text())
    assert info["storage"] == result["storage"] and info["command"][:3] == ["segkit", "tune", "unet_noaug_cosine"]
    # The same command with more trials continues the study: one more trial, numbered on.
    again = segkit_cli(*base, "--trials", "5").json()
    assert sum(again["counts"].values()) == 5 and (folder / "trial_0004").is_dir()
    # summarize reads the study: the sweep's tables and curves, and Optuna's plots.
    out = segkit_cli("summarize", folder).stdout
    assert "5 runs" in out and (folder / "optuna_history.png").is_file() and (folder / "summary.md").is_file()
    assert "# Study st: val/dice (maximize), random sampler, median pruner" in (folder / "summary.md").read_text()


def test_the_pruning_hook_stops_the_run_and_keeps_its_files(synthetic_root, tmp_path):
    from segkit.config import load_config
    from segkit.engine import Trainer
    from segkit.experiments.tune import PruningHook

    class Trial:
        reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return True

    cfg = load_config("unet_noaug_cosine", tiny_overrides(synthetic_root, str(tmp_path / "run"), epochs=3))
    trainer = Trainer(cfg)
    hook = PruningHook(trainer, Trial(), "val/dice", "maximize", "median")
    trainer.hooks.append(hook)
    trainer.train()
    assert hook.pruned_at == 1 and [s for s, _ in Trial.reports] == [1] and hook.best == Trial.reports[0][1]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1
    assert (tmp_path / "run" / "best.pth").is_file()
    trainer2 = Trainer(load_config("unet_noaug_cosine", tiny_overrides(synthetic_root, str(tmp_path / "r2"), epochs=1)))
    trainer2.hooks.append(PruningHook(trainer2, Trial(), "val/nope", "maximize", "median"))
    with pytest.raises(TuneError, match="--metric val/nope is not logged by the run; it logs .*val/dice"):
        trainer2.train()


def test_a_dead_workers_trial_is_failed_and_retried(synthetic_root, tmp_path, monkeypatch):
    """A trial left RUNNING with a stale heartbeat (its worker was killed) is marked failed by the
    next worker and its parameters run again as a new trial."""
    monkeypatch.setattr(study_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(study_module, "GRACE_S", 1)
    s = load_tune("unet_noaug_cosine", SPACE, tiny(synthetic_root, tmp_path, epochs=1), output_root=str(tmp_path),
                  name="dead", trials=2, pruner="none")
    study = tune.open_study(s, seed=0, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Optuna: heartbeats are meant for optimize(), as workers use
        dead = study.ask({"SOLVER.BASE_LR": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                          "SOLVER.BATCH_SIZE": optuna.distributions.CategoricalDistribution([4, 8])})
    study._storage.record_heartbeat(dead._trial_id)  # the worker started it, then died
    time.sleep(2.5)
    result = tune.run_tune(s)
    trials = optuna.load_study(study_name="dead", storage=s.storage_url).get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retried and retried[0].params == trials[0].params and retried[0].state.name == "COMPLETE"
    assert result["counts"]["fail"] == 1 and result["counts"]["complete"] == 2


def test_two_workers_share_the_study_in_a_subprocess(synthetic_root, tmp_path):
    args = ["-m", "segkit", "tune", "unet_noaug_cosine", *tiny(synthetic_root, tmp_path, epochs=1),
            "--space", SPACE[0], "--trials", "3", "--jobs", "2", "--study", "two", "--output-root", str(tmp_path)]
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="two", storage=tune.storage_url(str(tmp_path / "two")))
    numbers = [t.number for t in study.get_trials()]
    # Together they stop at --trials (one more when both start their last trial in the same instant);
    # no trial runs twice.
    assert numbers in ([0, 1, 2], [0, 1, 2, 3])
    folders = sorted(p.name for p in (tmp_path / "two").iterdir() if p.name.startswith("trial_"))
    assert folders == [f"trial_{n:04d}" for n in numbers]
    assert "best: trial" in proc.stdout


def test_the_command_knows_the_librarys_names():
    from segkit.commands import tune as command

    assert (command.SAMPLERS, command.PRUNERS, command.DIRECTIONS) == (tune.SAMPLERS, tune.PRUNERS, tune.DIRECTIONS)
