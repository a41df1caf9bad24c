"""The tools as a user runs them: separate processes, real files."""
import json
import os
import subprocess
import sys

from .conftest import PET_ROOT, REPO, needs_pet_sample, tiny_overrides

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_train_then_test_through_the_tools(synthetic_root, tmp_path):
    out = tmp_path / "run"
    config = str(REPO / "configs" / "unet_aug_cosine.yaml")
    run("train", config, *tiny_overrides(synthetic_root, str(out)))
    assert (out / "config.yaml").is_file() and (out / "last.pth").is_file() and (out / "best.pth").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tensorboard").iterdir())
    dumped = (out / "config.yaml").read_text()
    assert "HorizontalFlip" in dumped and "SIZE: 32" in dumped

    proc = run("test", str(out / "config.yaml"), str(out / "best.pth"))
    result = last_json(proc.stdout)
    assert {"dice_mean", "dice_std", "loss_mean", "loss_std", "n"} <= set(result)
    assert result["n"] == 8 and 0.0 <= result["dice_mean"] <= 1.0 and result["loss_mean"] > 0
    assert "dice" in proc.stdout and "±" in proc.stdout


def test_bad_inputs_give_one_clear_line(synthetic_root, tmp_path):
    config = str(REPO / "configs" / "unet_aug_cosine.yaml")
    proc = run("train", config, "SOLVER.EPOCH", "3", check=False)
    assert proc.returncode == 2
    assert "unknown config key 'SOLVER.EPOCH'. Did you mean 'SOLVER.EPOCHS'?" in proc.stderr
    assert "Traceback" not in proc.stderr

    opts = tiny_overrides(synthetic_root, str(tmp_path / "x")) + ["MODEL.BACKBONE.NAME", "resnet35"]
    proc = run("train", config, *opts, check=False)
    assert proc.returncode == 2 and "Did you mean 'resnet34'?" in proc.stderr and "Traceback" not in proc.stderr

    proc = run("train", config, *tiny_overrides(str(tmp_path / "nowhere"), str(tmp_path / "y")), check=False)
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "Traceback" not in proc.stderr

    proc = run("test", config, str(tmp_path / "missing.pth"), check=False)
    assert proc.returncode == 2 and "missing.pth" in proc.stderr


def test_user_backbone_from_own_file(synthetic_root, tmp_path):
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
    run("train", str(config), *opts)
    result = last_json(run("test", str(config), str(out / "last.pth"), *opts).stdout)
    assert result["n"] == 8
    # the same through --plugin instead of CUSTOM_IMPORTS
    plain = tmp_path / "plain.yaml"
    plain.write_text(config.read_text().replace(f"CUSTOM_IMPORTS: ['{plugin}']\n", ""))
    run("test", "--plugin", str(plugin), str(plain), str(out / "last.pth"), *opts)


def test_quickstart_config_is_self_contained():
    from segkit.config import load_config

    cfg = load_config(str(REPO / "configs" / "quickstart.yaml"))
    assert cfg.DATA.DATASET.NAME == "synthetic"


@needs_pet_sample
def test_short_train_and_test_on_the_real_sample(tmp_path):
    """One tiny epoch on the real Oxford sample (its GIF and RGBA files included) through the tools."""
    out = tmp_path / "pet"
    opts = tiny_overrides(PET_ROOT, str(out), epochs=1) + ["SOLVER.BATCH_SIZE", "16", "TEST.BATCH_SIZE", "32"]
    run("train", str(REPO / "configs" / "resnet34_unet_aug_cosine.yaml"), *opts)
    result = last_json(run("test", str(out / "config.yaml"), str(out / "best.pth")).stdout)
    assert result["n"] == 198 and 0.0 <= result["dice_mean"] <= 1.0


def test_checkpoint_of_another_architecture_is_one_clear_error(synthetic_root, tmp_path):
    out = tmp_path / "unet"
    run("train", str(REPO / "configs" / "unet_noaug_cosine.yaml"), *tiny_overrides(synthetic_root, str(out), epochs=1))
    proc = run("test", str(REPO / "configs" / "resnet34_unet_noaug_cosine.yaml"), str(out / "last.pth"),
               "DATA.ROOT", synthetic_root, "INPUT.SIZE", "32", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'backbone': 'unet'" in proc.stderr and "'backbone': 'resnet34'" in proc.stderr
    assert "missing: ['backbone.conv1.weight'" in proc.stderr


def test_output_dir_not_writable(synthetic_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    opts = tiny_overrides(synthetic_root, str(blocker / "run"), epochs=1)
    proc = run("train", str(REPO / "configs" / "unet_noaug_cosine.yaml"), *opts, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"OUTPUT_DIR '{blocker / 'run'}' is not writable" in proc.stderr


def test_segkit_list_and_check_data(synthetic_root):
    proc = subprocess.run([sys.executable, "-m", "segkit.cli", "list", "backbones"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, check=True)
    assert "resnet34" in proc.stdout and "unet" in proc.stdout and "ResNet34 encoder" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "segkit.cli", "list", "transforms", "--filter", "*Flip*"],
                          cwd=REPO, env=ENV, capture_output=True, text=True, check=True)
    assert proc.stdout.split()[1:] and "HorizontalFlip" in proc.stdout and "Rotate" not in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "segkit.cli", "check-data", str(REPO / "configs" / "unet_aug_cosine.yaml"),
                           "DATA.ROOT", synthetic_root], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0 and "no problems in 32 samples" in proc.stdout
