"""The commands as a user runs them, called in-process; one subprocess test per entry point
(tools/*.py, python -m segkit) proves the shims start outside the test process."""
import json

import pytest

from segkit.commands import COMMANDS, build_parser

from .conftest import PET_ROOT, REPO, needs_pet_sample, run_subprocess, tiny_overrides

UNET = str(REPO / "configs" / "unet_aug_cosine.yaml")


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """One tiny run of the UNet config, trained in-process, for the tests that need a checkpoint."""
    from segkit.commands import main

    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", UNET, *tiny_overrides(synthetic_root, str(out))]) == 0
    return out


def test_train_writes_its_run_folder(trained):
    assert (trained / "config.yaml").is_file() and (trained / "last.pth").is_file() and (trained / "best.pth").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (trained / "tensorboard").iterdir())
    dumped = (trained / "config.yaml").read_text()
    assert "HorizontalFlip" in dumped and "SIZE: 32" in dumped


def test_test_prints_a_table_and_a_json_line(trained, segkit_cli, tmp_path):
    json_out = tmp_path / "deep" / "result.json"
    res = segkit_cli("test", trained / "config.yaml", trained / "best.pth", "--json-out", json_out)
    result = res.json()
    assert {"dice_mean", "dice_std", "loss_mean", "loss_std", "n"} <= set(result)
    assert result["n"] == 8 and 0.0 <= result["dice_mean"] <= 1.0 and result["loss_mean"] > 0
    assert "dice" in res.stdout and "±" in res.stdout
    assert json.loads(json_out.read_text()) == result


def test_train_then_test_through_the_tool_scripts(synthetic_root, tmp_path):
    """tools/train.py and tools/test.py as separate processes: the shims reach the command layer."""
    out = tmp_path / "run"
    run_subprocess(REPO / "tools" / "train.py", UNET, *tiny_overrides(synthetic_root, str(out), epochs=1))
    proc = run_subprocess(REPO / "tools" / "test.py", out / "config.yaml", out / "last.pth")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["n"] == 8


def test_python_dash_m_segkit_and_help():
    proc = run_subprocess("-m", "segkit", "--help")
    for name in COMMANDS:
        assert name in proc.stdout
    assert "SEGKIT_DEBUG" in proc.stdout


def test_every_command_has_help_and_the_shared_options(segkit_cli):
    for name in COMMANDS:
        res = segkit_cli(name, "--help")
        assert res.stdout.startswith(f"usage: segkit {name}")
    parser = build_parser()
    with_config = [n for n in COMMANDS if n not in ("list", "summarize")]  # summarize reads run folders
    for name in with_config:
        text = segkit_cli(name, "--help").stdout
        # config only reads files: it builds nothing a plugin could register
        assert ("--plugin" in text or name == "config") and "KEY VALUE" in text, name
    for name in ("test", "export", "infer", "benchmark", "check-data"):
        assert "--json-out" in segkit_cli(name, "--help").stdout, name
    assert parser.prog == "segkit"


def test_the_parser_is_built_without_torch_and_matches_the_library():
    """`segkit --help` and every command's start build the whole parser tree: it must stay light."""
    proc = run_subprocess("-c", "import sys; from segkit.commands import build_parser; build_parser(); "
                          "print('torch' in sys.modules)")
    assert proc.stdout.strip() == "False"
    from segkit import export
    from segkit.commands import export as export_command

    assert (export_command.FORMATS, export_command.EXPORTERS) == (export.FORMATS, export.EXPORTERS)


def test_unknown_command_and_no_command(segkit_cli):
    res = segkit_cli("trian", check=False)
    assert res.returncode == 2 and "unknown command 'trian'. Did you mean 'train'?" in res.stderr
    assert segkit_cli(check=False).returncode == 2


def test_bad_inputs_give_one_clear_line(synthetic_root, tmp_path, segkit_cli):
    res = segkit_cli("train", UNET, "SOLVER.EPOCH", "3", check=False)
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["segkit: error: command line: unknown config key 'SOLVER.EPOCH'. Did you mean 'SOLVER.EPOCHS'?"]

    opts = tiny_overrides(synthetic_root, str(tmp_path / "x")) + ["MODEL.BACKBONE.NAME", "resnet35"]
    res = segkit_cli("train", UNET, *opts, check=False)
    assert res.returncode == 2 and "Did you mean 'resnet34'?" in res.stderr

    res = segkit_cli("train", UNET, *tiny_overrides(str(tmp_path / "nowhere"), str(tmp_path / "y")), check=False)
    assert res.returncode == 2 and "nowhere" in res.stderr

    res = segkit_cli("test", UNET, tmp_path / "missing.pth", check=False)
    assert res.returncode == 2 and "missing.pth" in res.stderr


def test_a_user_error_in_a_subprocess_has_no_traceback_unless_asked(tmp_path):
    proc = run_subprocess("-m", "segkit", "test", UNET, tmp_path / "missing.pth", check=False)
    assert proc.returncode == 2 and "missing.pth" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("segkit: error:")


def test_segkit_debug_lets_the_traceback_through(tmp_path, segkit_cli, monkeypatch):
    monkeypatch.setenv("SEGKIT_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        segkit_cli("test", UNET, tmp_path / "missing.pth")


def test_a_bug_is_not_dressed_up_as_a_user_error(segkit_cli, monkeypatch):
    """Only the user's mistakes become one line; an unexpected exception keeps its traceback."""
    from segkit.commands import check_data

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(check_data, "run", broken)
    with pytest.raises(ZeroDivisionError):
        segkit_cli("check-data", UNET)


def test_resume_takes_an_optional_path_before_the_overrides():
    from segkit.commands.train import resume_and_overrides

    assert resume_and_overrides(None, ["A", "1"]) == (None, ["A", "1"])
    assert resume_and_overrides("", ["A", "1"]) == ("", ["A", "1"])
    assert resume_and_overrides("work/last.pth", ["A", "1"]) == ("work/last.pth", ["A", "1"])
    # `--resume SOLVER.EPOCHS 3`: argparse took the key as PATH; it goes back to the overrides
    assert resume_and_overrides("SOLVER.EPOCHS", ["3"]) == ("", ["SOLVER.EPOCHS", "3"])


def test_user_backbone_from_own_file(synthetic_root, tmp_path, segkit_cli):
    plugin = tmp_path / "my_backbone.py"
    plugin.write_text('''
import torch.nn as nn
from segkit.registry import BACKBONES

@BACKBONES.register(name="my_tiny_encoder")
class MyTinyEncoder(nn.Module):
    def __init__(self, in_channels=3, width=4):
        super().__init__()
        self.out_channels, self.strides = [width, 2 * width], [2, 4]
        self.a = nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU())

    def forward(self, x):
        a = self.a(x)
        return [a, self.b(a)]
''')
    config = tmp_path / "mine.yaml"
    config.write_text(f"_BASE_: {REPO / 'configs' / 'unet_noaug_cosine.yaml'}\n"
                      f"CUSTOM_IMPORTS: ['{plugin}']\nMODEL:\n  BACKBONE:\n    NAME: my_tiny_encoder\n    WIDTH: 6\n")
    out = tmp_path / "run"
    opts = tiny_overrides(synthetic_root, str(out), epochs=1)
    opts = [o for o in opts if o not in ("MODEL.BACKBONE.NAME", "unet", "MODEL.BACKBONE.CHANNELS", "[4, 8, 16, 32, 64]")]
    segkit_cli("train", config, *opts)
    assert segkit_cli("test", config, out / "last.pth", *opts).json()["n"] == 8
    # the same through --plugin instead of CUSTOM_IMPORTS
    plain = tmp_path / "plain.yaml"
    plain.write_text(config.read_text().replace(f"CUSTOM_IMPORTS: ['{plugin}']\n", ""))
    segkit_cli("test", "--plugin", plugin, plain, out / "last.pth", *opts)
    assert "my_tiny_encoder" in segkit_cli("list", "backbones", "--plugin", plugin).stdout


def test_quickstart_config_is_self_contained():
    from segkit.config import load_config

    cfg = load_config(str(REPO / "configs" / "quickstart.yaml"))
    assert cfg.DATA.DATASET.NAME == "synthetic"


@needs_pet_sample
def test_short_train_and_test_on_the_real_sample(tmp_path, segkit_cli):
    """One tiny epoch on the real Oxford sample (its GIF and RGBA files included)."""
    out = tmp_path / "pet"
    opts = tiny_overrides(PET_ROOT, str(out), epochs=1) + ["SOLVER.BATCH_SIZE", "16", "TEST.BATCH_SIZE", "32"]
    segkit_cli("train", REPO / "configs" / "resnet34_unet_aug_cosine.yaml", *opts)
    result = segkit_cli("test", out / "config.yaml", out / "best.pth").json()
    assert result["n"] == 198 and 0.0 <= result["dice_mean"] <= 1.0


def test_checkpoint_of_another_architecture_is_one_clear_error(trained, synthetic_root, segkit_cli):
    res = segkit_cli("test", REPO / "configs" / "resnet34_unet_noaug_cosine.yaml", trained / "last.pth",
                     "DATA.ROOT", synthetic_root, "INPUT.SIZE", "32", check=False)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1
    # Refused from the config the checkpoint carries, before any weights are loaded: each key, both values, the fix.
    assert "MODEL.BACKBONE.NAME is 'unet' in the checkpoint but 'resnet34' in the config" in res.stderr
    assert f"use the run's own config ({trained / 'config.yaml'})" in res.stderr
    assert "MODEL.BACKBONE.NAME unet" in res.stderr


def test_output_dir_not_writable(synthetic_root, tmp_path, segkit_cli):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    opts = tiny_overrides(synthetic_root, str(blocker / "run"), epochs=1)
    res = segkit_cli("train", REPO / "configs" / "unet_noaug_cosine.yaml", *opts, check=False)
    assert res.returncode == 2
    assert f"OUTPUT_DIR '{blocker / 'run'}' is not writable" in res.stderr


def test_segkit_list(segkit_cli):
    res = segkit_cli("list", "backbones")
    assert "resnet34" in res.stdout and "unet" in res.stdout and "ResNet34 encoder" in res.stdout
    res = segkit_cli("list", "transforms", "--filter", "*Flip*")
    assert "HorizontalFlip" in res.stdout and "Rotate" not in res.stdout
    res = segkit_cli("list", "backbones", "--filter", "resnet")
    assert "tu-resnet18" in res.stdout and "segnet" not in res.stdout


def test_segkit_list_in_a_subprocess():
    proc = run_subprocess("-m", "segkit", "list", "losses")
    assert "bce" in proc.stdout and "dice" in proc.stdout


def test_check_data(synthetic_root, segkit_cli, tmp_path):
    res = segkit_cli("check-data", UNET, "DATA.ROOT", synthetic_root, "--json-out", tmp_path / "check.json")
    assert "no problems in 32 samples" in res.stdout
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["ok"] is True and report["errors"] == [] and sum(report["counts"].values()) == 32


def test_check_data_in_a_subprocess_exits_1_on_bad_files(synthetic_root, tmp_path):
    import shutil

    root = tmp_path / "pets"
    shutil.copytree(synthetic_root, root)
    victim = sorted((root / "images").iterdir())[0]
    victim.write_bytes(b"")
    proc = run_subprocess("-m", "segkit", "check-data", UNET, "DATA.ROOT", root, check=False)
    assert proc.returncode == 1 and victim.name in proc.stdout and "empty" in proc.stdout.lower()
