"""Hostile and careless inputs: every bad value, path or name is one clear ``segkit: error:`` line
(exit 2) that names it, before anything runs or is written."""
import json
import os
import subprocess
import sys

import pytest
import torch

from segkit.config import ConfigError, load_config
from segkit.config.defaults import get_default_config
from segkit.config.validate import RULES, find

from .conftest import REPO, tiny_overrides

UNET = str(REPO / "configs" / "unet_noaug_cosine.yaml")


def one_error_line(res) -> str:
    """The run failed as a user error: exit 2, nothing on stdout, one ``segkit: error:`` line."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("segkit: error: "), res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    return lines[0]


# (overrides after the tiny run's, fragments the error line must hold: the key, the value, the range)
BAD_VALUES = [
    (["INPUT.MEAN", "[0.5, 0.5]"], ["INPUT.MEAN has 2 values", "MODEL.IN_CHANNELS is 3"]),
    (["INPUT.MEAN", "[123.7, 116.3, 103.5]"], ["INPUT.MEAN is [123.7", "[0, 1]", "not 0-255"]),
    (["INPUT.STD", "[0, 0, 0]"], ["INPUT.STD is [0, 0, 0]", "(0, 1]"]),
    (["INPUT.STD", "[0.2, 0.0, 0.2]"], ["INPUT.STD[1] is 0.0", "(0, 1]"]),
    (["SOLVER.BASE_LR", "inf"], ["SOLVER.BASE_LR is inf", "finite", "> 0"]),
    (["SOLVER.BASE_LR", "nan"], ["SOLVER.BASE_LR is nan", "> 0"]),
    (["SOLVER.BASE_LR", "0"], ["SOLVER.BASE_LR is 0.0", "> 0"]),
    (["SOLVER.BASE_LR", "-inf"], ["SOLVER.BASE_LR is -inf", "> 0"]),  # not an unknown option -inf
    (["SOLVER.BASE_LR", "1" + "0" * 400], ["SOLVER.BASE_LR", "too large for a float"]),
    (["SOLVER.EPOCHS", "0"], ["SOLVER.EPOCHS is 0", ">= 1"]),
    (["SOLVER.EPOCHS", "None"], ["SOLVER.EPOCHS expects int", "null"]),
    (["SOLVER.BATCH_SIZE", "0"], ["SOLVER.BATCH_SIZE is 0", ">= 1"]),
    (["TEST.BATCH_SIZE", "-4"], ["TEST.BATCH_SIZE is -4", ">= 1"]),
    (["SOLVER.ACCUM_STEPS", "0"], ["SOLVER.ACCUM_STEPS is 0", ">= 1"]),
    (["SOLVER.WEIGHT_DECAY", "-1e-4"], ["SOLVER.WEIGHT_DECAY is -0.0001", "[0, 1]"]),
    (["SOLVER.CLIP_GRAD_NORM", "-1"], ["SOLVER.CLIP_GRAD_NORM is -1.0", ">= 0"]),
    (["SOLVER.WARMUP_EPOCHS", "2"], ["SOLVER.WARMUP_EPOCHS is 2.0", "SOLVER.EPOCHS is 2"]),
    (["SOLVER.WARMUP_FACTOR", "0"], ["SOLVER.WARMUP_FACTOR is 0.0", "(0, 1]"]),
    (["SOLVER.NONFINITE_LOSS", "ignore"], ["SOLVER.NONFINITE_LOSS is 'ignore'", "'stop', 'skip'"]),
    (["SOLVER.SCHEDULE_UNIT", "batch"], ["SOLVER.SCHEDULE_UNIT is 'batch'", "'epoch', 'step'"]),
    (["SOLVER.AMP.DTYPE", "int8"], ["SOLVER.AMP.DTYPE is 'int8'", "'bfloat16'"]),
    (["SOLVER.SCHEDULER.ETA_MIN", "0.5"], ["SOLVER.SCHEDULER.ETA_MIN is 0.5", "SOLVER.BASE_LR is 0.001"]),
    (["SOLVER.OPTIMIZER.NAME", "sgd", "SOLVER.OPTIMIZER.MOMENTUM", "1.5"], ["SOLVER.OPTIMIZER.MOMENTUM is 1.5", "[0, 1)"]),
    (["DATA.VAL_FRACTION", "1.0"], ["DATA.VAL_FRACTION is 1.0", "[0, 1)"]),
    (["DATA.VAL_FRACTION", "-0.1"], ["DATA.VAL_FRACTION is -0.1", "[0, 1)"]),
    (["DATA.NUM_WORKERS", "-1"], ["DATA.NUM_WORKERS is -1", "[0, 256]"]),
    (["DATA.IGNORE_INDEX", "1"], ["DATA.IGNORE_INDEX is 1", "class label", "[2, 255]"]),
    (["DATA.IGNORE_INDEX", "1000"], ["DATA.IGNORE_INDEX is 1000", "[0, 255]"]),
    (["DATA.CACHE", "ram"], ["DATA.CACHE is 'ram'", "'disk', 'memory', 'none'"]),
    (["DATA.DATASET.BOUNDARY", "class"], ["DATA.DATASET.BOUNDARY 'class'", "MODEL.NUM_CLASSES is 1"]),
    (["DATA.DATASET.BOUNDARY", "edge"], ["DATA.DATASET.BOUNDARY is 'edge'", "'foreground'"]),
    (["INPUT.SIZE", "5000"], ["INPUT.SIZE is 5000", "[16, 2048]"]),
    (["INPUT.SIZE", "0"], ["INPUT.SIZE is 0", "[16, 2048]"]),
    (["INPUT.TRAIN_TRANSFORMS", "[{'NAME': 'HorizontalFlip', 'P': 2}]"], ["INPUT.TRAIN_TRANSFORMS[0].P is 2", "[0, 1]"]),
    (["INPUT.TRAIN_TRANSFORMS", "['HorizontalFlip']"], ["INPUT.TRAIN_TRANSFORMS[0] is 'HorizontalFlip'", "NAME"]),
    (["MODEL.NUM_CLASSES", "0"], ["MODEL.NUM_CLASSES is 0", "[1, 255]"]),
    (["MODEL.IN_CHANNELS", "1", "INPUT.MEAN", "[0.5]", "INPUT.STD", "[0.5]"], ["MODEL.IN_CHANNELS is 1", "RGB"]),
    (["MODEL.BACKBONE.FREEZE_AT", "-1"], ["MODEL.BACKBONE.FREEZE_AT is -1", ">= 0"]),
    (["LOSS.TERMS", "[]"], ["LOSS.TERMS is []", "at least one term"]),
    (["LOSS.TERMS", "['bce']"], ["LOSS.TERMS[0] is 'bce'", "mapping with a NAME"]),
    (["LOSS.TERMS", "[{'NAME': 'bce', 'WEIGHT': -1}]"], ["LOSS.TERMS[0].WEIGHT is -1", ">= 0"]),
    (["TEST.THRESHOLD", "1.5"], ["TEST.THRESHOLD is 1.5", "[0, 1]"]),
    (["TEST.RESOLUTION", "full"], ["TEST.RESOLUTION is 'full'", "'network'"]),
    (["TEST.TTA.SCALES", "[]"], ["TEST.TTA.SCALES is []", "at least one scale"]),
    (["TEST.TTA.SCALES", "[0]"], ["TEST.TTA.SCALES[0] is 0", "[0.25, 4]"]),
    (["HOOKS", "[{'NAME': 'evaluation', 'PERIOD': 0}]"], ["HOOKS[0].PERIOD is 0", ">= 1"]),
    (["HOOKS", "[{'NAME': 'json_logger', 'FILENAME': '../../escape.jsonl'}]"], ["HOOKS[0].FILENAME", "inside OUTPUT_DIR"]),
    (["HOOKS", "[{'NAME': 'checkpoint', 'MODE': 'best'}]"], ["HOOKS[0].MODE is 'best'", "'max', 'min'"]),
    (["CUSTOM_HOOKS", "[{'NAME': 'ema', 'DECAY': 1.0}]"], ["CUSTOM_HOOKS[0].DECAY is 1.0", "[0, 1)"]),
    (["CUSTOM_IMPORTS", "[3]"], ["CUSTOM_IMPORTS[0] is 3", "module name"]),
    (["OUTPUT_DIR", "''"], ["OUTPUT_DIR is ''", "a folder path"]),
    (["DEVICE", "gpu"], ["DEVICE is 'gpu'", "'cpu'", "'cuda:N'"]),
    (["SEED", "-1"], ["SEED is -1", "[0, 9223372036854775807]"]),
    (["VERSION", "2"], ["VERSION is 2", "equal to 1"]),
    (["solver.epochs", "3"], ["unknown config key 'solver.epochs'", "Did you mean 'SOLVER.EPOCHS'?"]),
    (["SOLVER.EPOCHS=3"], ["'SOLVER.EPOCHS 3'", "not 'SOLVER.EPOCHS=3'"]),
]


@pytest.mark.parametrize("bad, expected", BAD_VALUES, ids=[" ".join(b)[:40] for b, _ in BAD_VALUES])
def test_a_bad_value_is_one_line_before_anything_runs(bad, expected, segkit_cli, tmp_path):
    out = tmp_path / "run"
    res = segkit_cli("train", UNET, *tiny_overrides(str(tmp_path / "data"), str(out)), *bad, check=False)
    line = one_error_line(res)
    for fragment in expected:
        assert fragment in line, (fragment, line)
    assert "command line" in line or "Did you mean" in line
    assert not out.exists()  # no OUTPUT_DIR, no config.yaml: nothing ran


def test_every_value_is_reported_at_once_and_test_checks_before_the_checkpoint(segkit_cli, tmp_path):
    res = segkit_cli("test", UNET, tmp_path / "missing.pth", "SOLVER.EPOCHS", "0", "TEST.THRESHOLD", "-1",
                     "INPUT.SIZE", "9999", check=False)
    line = one_error_line(res)
    assert "SOLVER.EPOCHS is 0" in line and "TEST.THRESHOLD is -1" in line and "INPUT.SIZE is 9999" in line
    assert "missing.pth" not in line  # the config is refused before the checkpoint is looked at


def test_values_in_a_file_name_the_file(segkit_cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"_BASE_: {UNET}\nSOLVER:\n  EPOCHS: 0\nINPUT:\n  STD: [0.2, 0.2]\n")
    line = one_error_line(segkit_cli("train", cfg, "OUTPUT_DIR", tmp_path / "run", check=False))
    assert f"config file '{cfg}': SOLVER.EPOCHS is 0" in line
    assert "INPUT.STD has 2 values" in line
    assert not (tmp_path / "run").exists()


def _config_file_cases(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    comments = tmp_path / "comments.yaml"
    comments.write_text("# nothing here yet\n\n")
    folder = tmp_path / "configs"
    folder.mkdir()
    base_int = tmp_path / "base_int.yaml"
    base_int.write_text("_BASE_: 3\n")
    base_map = tmp_path / "base_map.yaml"
    base_map.write_text("_BASE_: {path: a.yaml}\n")
    base_missing = tmp_path / "base_missing.yaml"
    base_missing.write_text("_BASE_: nowhere/base.yaml\n")
    nested_base = tmp_path / "nested_base.yaml"
    nested_base.write_text(f"SOLVER:\n  _BASE_: {UNET}\n")
    twice = tmp_path / "twice.yaml"
    twice.write_text("SOLVER:\n  EPOCHS: 3\nINPUT:\n  SIZE: 64\nSOLVER:\n  BASE_LR: 0.01\n")
    binary = tmp_path / "model.pth"
    torch.save({"model": {}}, binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("OUTPUT_DIR: caf\xe9\n".encode("latin-1"))
    null = tmp_path / "null.yaml"
    null.write_text("SOLVER:\n  EPOCHS:\n")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just some text\n")
    root_number = tmp_path / "root_number.yaml"
    root_number.write_text("DATA:\n  ROOT: 2024\n")
    return [
        (empty, ["empty config", str(empty)]),
        (comments, ["empty config"]),
        (folder, [str(folder), "is a folder"]),
        (base_int, ["_BASE_ must be a path or a list of paths", "int 3"]),
        (base_map, ["_BASE_ must be a path or a list of paths", "dict"]),
        (base_missing, ["_BASE_ 'nowhere/base.yaml'", str(base_missing), "does not exist"]),
        (nested_base, ["_BASE_ can only be used at the top level of a config file"]),
        (twice, ["'SOLVER' appears twice", "line 5"]),
        (binary, ["zip archive such as a torch checkpoint", "not a YAML config"]),
        (latin, ["not UTF-8"]),
        (null, ["SOLVER.EPOCHS expects int", "null"]),
        (scalar, ["must hold a mapping", "str"]),
        (root_number, ["DATA.ROOT expects str", "quote it"]),
    ]


def test_bad_config_files_are_one_line(segkit_cli, tmp_path):
    for path, expected in _config_file_cases(tmp_path):
        res = segkit_cli("train", path, "OUTPUT_DIR", tmp_path / "run", check=False)
        line = one_error_line(res)
        for fragment in expected:
            assert fragment in line, (path.name, fragment, line)
    assert not (tmp_path / "run").exists()


def test_text_keys_keep_what_was_typed_and_keys_are_checked():
    assert load_config(None, ["DATA.ROOT", "2024", "OUTPUT_DIR", "1e3"]).DATA.ROOT == "2024"
    assert load_config(None, ["OUTPUT_DIR", "1e3"]).OUTPUT_DIR == "1e3"
    assert load_config(None, ["SOLVER.AMP.DTYPE", "BF16"]).SOLVER.AMP.DTYPE == "BF16"  # precision reads any case
    with pytest.raises(ConfigError, match="'SOLVER..EPOCHS' is not a config key"):
        load_config(None, ["SOLVER..EPOCHS", "3"])


def test_the_rule_table_names_real_keys_and_the_defaults_pass():
    """Every RULES row reaches a key of defaults.py (a typo in the table would check nothing)."""
    defaults = get_default_config()
    for path, _ in RULES:
        head = path.split("[")[0]  # up to the first selector: plain keys of the defaults
        prefix, _, last = head.rpartition(".")
        for name in last.split("|"):
            assert find(defaults, f"{prefix}.{name}" if prefix else name), path
    load_config(None)  # the defaults themselves fit


# ---------------------------------------------------------------------------------- checkpoints
def _tiny_checkpoint(tmp_path, fill=None):
    from segkit.engine.checkpoint import atomic_save, make_checkpoint
    from segkit.models import build_model

    opts = tiny_overrides(str(tmp_path / "data"), str(tmp_path / "run"))
    cfg = load_config(UNET, opts)
    ckpt = make_checkpoint(build_model(cfg), cfg)
    if fill is not None:
        for value in ckpt["model"].values():
            if value.is_floating_point():
                value.fill_(fill)
    path = tmp_path / "tiny.pth"
    atomic_save(ckpt, str(path))
    return path, opts


def test_a_checkpoint_with_nan_weights_is_refused(segkit_cli, tmp_path):
    path, opts = _tiny_checkpoint(tmp_path, fill=float("nan"))
    line = one_error_line(segkit_cli("test", UNET, path, *opts, check=False))
    assert f"Checkpoint '{path}' holds non-finite weights" in line
    assert "'backbone." in line or "'decoder." in line  # some of the keys are named


def _bad_checkpoints(tmp_path):
    zero = tmp_path / "zero.pth"
    zero.write_bytes(b"")
    text = tmp_path / "notes.pth"
    text.write_text("MODEL:\n  NUM_CLASSES: 1\n")
    folder = tmp_path / "run.pth"
    folder.mkdir()
    image = tmp_path / "image.pth"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    good, _ = _tiny_checkpoint(tmp_path)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:2000])
    return [
        (zero, ["is an empty file (0 bytes)"]),
        (text, ["could not be read safely", "is a text file, not a torch checkpoint"]),
        (folder, ["is a folder, not a checkpoint file"]),
        (image, ["could not be read safely", "is not a torch checkpoint", "PNG"]),
        (truncated, ["could not be read safely", "damaged or truncated"]),
    ]


def test_unreadable_checkpoints_say_what_the_file_is(segkit_cli, tmp_path):
    opts = tiny_overrides(str(tmp_path / "data"), str(tmp_path / "run"))
    for path, expected in _bad_checkpoints(tmp_path):
        line = one_error_line(segkit_cli("test", UNET, path, *opts, check=False))
        assert str(path) in line
        for fragment in expected:
            assert fragment in line, (path.name, fragment, line)
        assert not line.rstrip().endswith(":")  # never an empty reason


def test_the_json_line_is_strict_json(segkit_cli, tmp_path, monkeypatch):
    """A metric with no value is null in the JSON line, never a bare NaN that parsers reject."""
    import segkit.engine
    from segkit.commands.jsonout import finite_or_none, to_json

    nan, inf = float("nan"), float("inf")
    monkeypatch.setattr(segkit.engine, "evaluate_checkpoint", lambda cfg, ckpt, split, **kwargs: {
        "split": split, "n": 0, "checkpoint": str(ckpt), "resolution": "network", "loss_mean": nan,
        "loss_std": nan, "dice_mean": 0.5, "dice_std": inf, "dice_micro": nan, "dice_per_class": [nan, 0.25]})
    res = segkit_cli("test", UNET, tmp_path / "any.pth", "DATA.ROOT", tmp_path / "data")

    def refuse(constant):
        raise AssertionError(f"non-JSON constant {constant} in the JSON line")

    result = json.loads(res.stdout.strip().splitlines()[-1], parse_constant=refuse)
    assert result["loss_mean"] is None and result["dice_std"] is None and result["dice_mean"] == 0.5
    assert result["dice_per_class"] == [None, 0.25]
    assert finite_or_none({"a": (1.0, -inf)}) == {"a": [1.0, None]}
    assert to_json({"x": nan}) == '{"x": null}'


# ------------------------------------------------------------------------------------ plugins
def test_plugin_errors_name_the_plugin_and_the_line(segkit_cli, tmp_path):
    syntax = tmp_path / "syntax_error.py"
    syntax.write_text("import os\n\ndef broken(:\n    pass\n")
    raises = tmp_path / "raises.py"
    raises.write_text("x = 1\nraise RuntimeError('the plugin is not configured')\n")
    clash = tmp_path / "clash.py"
    clash.write_text("import torch.nn as nn\nfrom segkit.registry import BACKBONES\n\n"
                     "@BACKBONES.register(name='unet')\nclass Mine(nn.Module):\n    pass\n")
    missing_dep = tmp_path / "missing_dep.py"
    missing_dep.write_text("import segkit_no_such_dependency\n")
    cases = [
        (syntax, ["syntax_error.py", "syntax error at line 3", "def broken(:"]),
        (raises, ["raises.py", "line 2", "RuntimeError: the plugin is not configured"]),
        (clash, ["clash.py", "line 4", "'unet' is already registered"]),
        (missing_dep, ["missing_dep.py", "line 1", "No module named 'segkit_no_such_dependency'"]),
        (tmp_path, ["is a folder", "give a .py file"]),
    ]
    for plugin, expected in cases:
        line = one_error_line(segkit_cli("list", "losses", "--plugin", plugin, check=False))
        for fragment in expected:
            assert fragment in line, (plugin.name, fragment, line)
    # the same from CUSTOM_IMPORTS, before OUTPUT_DIR is touched
    out = tmp_path / "run"
    res = segkit_cli("train", UNET, *tiny_overrides(str(tmp_path / "data"), str(out)),
                     "CUSTOM_IMPORTS", f"['{raises}']", check=False)
    assert "RuntimeError: the plugin is not configured" in one_error_line(res) and not out.exists()


def test_a_plugin_error_keeps_its_traceback_with_segkit_debug(segkit_cli, tmp_path, monkeypatch):
    from segkit.plugins import PluginError

    raises = tmp_path / "raises_debug.py"
    raises.write_text("raise ZeroDivisionError('in the plugin')\n")
    monkeypatch.setenv("SEGKIT_DEBUG", "1")
    with pytest.raises(PluginError) as err:
        segkit_cli("list", "losses", "--plugin", raises)
    assert isinstance(err.value.__cause__, ZeroDivisionError)


# ------------------------------------------------------------------------------ paths, devices
def test_a_synthetic_root_that_is_a_file_or_a_users_folder_is_refused(segkit_cli, tmp_path):
    a_file = tmp_path / "pets.txt"
    a_file.write_text("not a folder")
    users = tmp_path / "my_photos"
    users.mkdir()
    (users / "holiday.jpg").write_bytes(b"precious")
    # a folder with a synthetic.json of someone else's, and files of the user's beside it
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "synthetic.json").write_text('{"mine": true}')
    (lookalike / "notes.txt").write_text("keep me")
    for root, expected in ((a_file, "is a file"), (users, "non-empty folder"), (lookalike, "non-empty folder")):
        before = sorted(p.name for p in root.iterdir()) if root.is_dir() else None
        out = tmp_path / f"run_{root.name}"
        opts = tiny_overrides(str(root), str(out), dataset="synthetic") + ["DATA.DATASET.NUM_TRAINVAL", "4"]
        line = one_error_line(segkit_cli("train", UNET, *opts, check=False))
        assert f"DATA.ROOT '{root}'" in line and expected in line, line
        assert not out.exists()
        if before is not None:
            assert sorted(p.name for p in root.iterdir()) == before  # untouched
    assert (users / "holiday.jpg").read_bytes() == b"precious"


def test_device_names_the_valid_choices():
    from segkit.utils.device import resolve_device

    for name in ("gpu", "", "cuda:x"):
        with pytest.raises(ValueError, match=r"choose one of 'auto', 'cpu'"):
            resolve_device(name)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:3")
    assert resolve_device("cpu").type == "cpu"


# ------------------------------------------------------------------------------ broken pipe
def test_a_reader_that_closes_early_ends_the_command_quietly():
    """`segkit list backbones --filter '*' | head -1`: more output than a pipe holds, so the
    writer meets the closed pipe; CPython's recipe: no traceback, status 1."""
    proc = subprocess.Popen([sys.executable, "-m", "segkit", "list", "backbones", "--filter", "*"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 1, err
    assert first.startswith(b"backbones:")
    assert err == "", err
