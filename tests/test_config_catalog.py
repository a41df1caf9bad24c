"""Configs by name: every command's CONFIG is a path or a packaged name, listed by
``segkit list configs`` and printed whole by ``segkit config show``."""
import os
from pathlib import Path

import pytest

from segkit.config import UnknownConfigError, config_dir, config_names, load_config, resolve_config
from segkit.experiments.sweep import load_sweep

from .conftest import REPO

SWEEP_FILES = {"report/augment", "report/batch_size", "report/best", "report/lr"}


def test_names_are_the_repo_configs_without_fragments():
    names = config_names()
    on_disk = {p.relative_to(REPO / "configs").with_suffix("").as_posix()
               for p in (REPO / "configs").rglob("*.yaml") if "_base_" not in p.parts}
    assert set(names) == on_disk and names == sorted(names)
    assert {"quickstart", "unet_aug_cosine", "report/lr", "examples/folder_binary"} <= set(names)
    assert config_dir() == REPO / "configs"  # a checkout reads the folder beside the package
    assert config_names("report") == sorted(SWEEP_FILES)
    assert config_names("unet_*_cosine") == ["unet_aug_cosine", "unet_noaug_cosine"]


@pytest.mark.parametrize("name", [n for n in config_names() if n not in SWEEP_FILES])
def test_every_packaged_config_loads_by_name_as_by_path(name):
    by_name = load_config(name)
    by_path = load_config(str(REPO / "configs" / f"{name}.yaml"))
    assert by_name.dump() == by_path.dump()


def test_sweep_files_load_by_name():
    sweep = load_sweep("report/lr", overrides=["DATA.ROOT", "/data/pets"])
    assert sweep.name == "report_lr" and Path(sweep.base) == REPO / "configs" / "unet_noaug_cosine.yaml"


def test_a_path_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("quickstart").write_text("OUTPUT_DIR: mine\n")
    assert load_config("quickstart").OUTPUT_DIR == "mine"
    assert resolve_config("quickstart") == "quickstart"
    assert load_config("quickstart.yaml").OUTPUT_DIR == "work_dirs/quickstart"  # no such file here


def test_a_repo_path_outside_a_checkout_means_the_packaged_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path(resolve_config("configs/quickstart.yaml")) == REPO / "configs" / "quickstart.yaml"
    assert Path(resolve_config("report/lr.yaml")) == REPO / "configs" / "report" / "lr.yaml"


def test_an_unknown_name_names_the_closest_and_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownConfigError, match="'quickstrt' is neither a file nor the name of a packaged "
                                                 r"config. Did you mean 'quickstart'\?.*report/lr, "):
        load_config("quickstrt")
    with pytest.raises(FileNotFoundError, match="Config file 'my/unet.yaml' does not exist, and no packaged "
                                                "config is named 'my/unet'"):
        load_config("my/unet.yaml")
    with pytest.raises(UnknownConfigError):  # names stay inside the packaged folder
        resolve_config("../setup.py")
    with pytest.raises(UnknownConfigError):
        resolve_config("_base_/../../setup")


def test_base_chains_resolve_inside_the_package():
    cfg = load_config("quickstart")
    assert cfg.MODEL.BACKBONE.NAME == "resnet34" and len(cfg.INPUT.TRAIN_TRANSFORMS) > 0  # from _base_ files


def test_list_configs(segkit_cli):
    out = segkit_cli("list", "configs").stdout.splitlines()
    assert out[0] == "configs:" and len(out) == 1 + len(config_names())
    row = next(line for line in out if line.split()[0] == "report/lr")
    assert "Table 1 of the lab report" in row
    assert [line.split()[0] for line in segkit_cli("list", "configs", "--filter", "plateau").stdout.splitlines()[1:]] \
        == config_names("plateau")
    everything = segkit_cli("list").stdout
    assert "backbones:" in everything and "\nconfigs:\n" in everything


def test_config_show_prints_every_key_and_loads_back(segkit_cli, tmp_path):
    out = segkit_cli("config", "show", "unet_aug_cosine", "SOLVER.EPOCHS", "3").stdout
    copy = tmp_path / "my.yaml"
    copy.write_text(out)
    expected = load_config("unet_aug_cosine", ["SOLVER.EPOCHS", "3"])
    assert load_config(str(copy)).dump() == expected.dump()
    for key in ("MALLOC_KEEP_FREED:", "JPEG_DRAFT:", "TTA:", "SCHEDULE_UNIT:"):  # defaults, not in the file
        assert key in out


def test_config_path_and_its_errors(segkit_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path(segkit_cli("config", "path", "report/lr").stdout.strip()) == REPO / "configs" / "report" / "lr.yaml"
    res = segkit_cli("config", "show", "report/lr", check=False)
    assert res.returncode == 2 and "is a sweep file" in res.stderr and "segkit sweep report/lr" in res.stderr
    res = segkit_cli("config", "show", "unet_aug_cosin", check=False)
    assert res.returncode == 2 and "Did you mean 'unet_aug_cosine'" in res.stderr
    res = segkit_cli("config", "path", "quickstart", "SOLVER.EPOCHS", "3", check=False)
    assert res.returncode == 2 and "takes no overrides" in res.stderr


def test_config_show_in_a_subprocess_from_another_folder(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "segkit", "config", "show", "quickstart"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "NAME: synthetic" in proc.stdout and "OUTPUT_DIR: work_dirs/quickstart" in proc.stdout


def test_quickstart_data_goes_to_the_cache_folder(tmp_path, monkeypatch):
    from segkit.data import build_dataset

    monkeypatch.setenv("SEGKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    cfg = load_config("quickstart", ["DATA.DATASET.NUM_TRAINVAL", "4", "DATA.DATASET.NUM_TEST", "2",
                                     "DATA.DATASET.IMAGE_SIZE", "32"])
    assert cfg.DATA.ROOT == ""
    build_dataset(cfg, "test")
    generated = list((tmp_path / "cache" / "synthetic").iterdir())
    assert [p.name for p in generated] == ["pets-v1-4+2-32px-seed0"]
    assert len(list((generated[0] / "images").iterdir())) == 6
    assert sorted(os.listdir(tmp_path)) == ["cache"]  # nothing in the working folder
