import re
from pathlib import Path

import pytest

from segkit.config import ConfigError, load_config
from segkit.config.defaults import get_default_config

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_base_chain_and_overrides(tmp_path):
    write(tmp_path / "base" / "a.yaml", "SOLVER:\n  EPOCHS: 7\n  BASE_LR: 1e-3\nINPUT:\n  SIZE: 64\n")
    write(tmp_path / "base" / "b.yaml", "_BASE_: a.yaml\nSOLVER:\n  EPOCHS: 9\n")
    path = write(tmp_path / "exp.yaml", "_BASE_: [base/b.yaml]\nSOLVER:\n  BATCH_SIZE: 2\n")
    cfg = load_config(path, ["INPUT.SIZE", "128", "OUTPUT_DIR", "work_dirs/x", "SOLVER.BASE_LR", "3e-4"])
    assert cfg.SOLVER.EPOCHS == 9            # the nearer file wins
    assert cfg.SOLVER.BATCH_SIZE == 2
    assert cfg.INPUT.SIZE == 128             # command line wins
    assert cfg.SOLVER.BASE_LR == pytest.approx(3e-4)
    assert cfg.OUTPUT_DIR == "work_dirs/x"
    assert cfg.is_frozen()


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    cfg = load_config(write(tmp_path / "c.yaml", "SOLVER:\n  BASE_LR: 1e-4\n"))
    assert isinstance(cfg.SOLVER.BASE_LR, float) and cfg.SOLVER.BASE_LR == pytest.approx(1e-4)


def test_unknown_key_suggests_nearest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'SOLVER.EPOCH'\. Did you mean 'SOLVER.EPOCHS'\?"):
        load_config(None, ["SOLVER.EPOCH", "3"])
    path = write(tmp_path / "bad.yaml", "INPUT:\n  SIZ: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*'INPUT.SIZ'.*'INPUT.SIZE'"):
        load_config(path)


def test_wrong_type_names_key_and_both_types():
    with pytest.raises(ConfigError, match=r"SOLVER.EPOCHS expects int .* got str 'ten'"):
        load_config(None, ["SOLVER.EPOCHS", "ten"])
    with pytest.raises(ConfigError, match=r"SOLVER is a section"):
        load_config(None, ["SOLVER", "3"])


def test_component_nodes_take_free_kwargs_and_reset_on_rename(tmp_path):
    cfg = load_config(None, ["MODEL.BACKBONE.NAME", "resnet34", "MODEL.BACKBONE.WIDTH", "2"])
    assert cfg.MODEL.BACKBONE == {"NAME": "resnet34", "WIDTH": 2}
    base = write(tmp_path / "base.yaml", "DATA:\n  DATASET:\n    NAME: oxford_pet\n    BOUNDARY: ignore\n")
    child = write(tmp_path / "child.yaml", f"_BASE_: {base}\nDATA:\n  DATASET:\n    NAME: synthetic\n    NUM_TEST: 3\n")
    cfg = load_config(child)
    assert dict(cfg.DATA.DATASET) == {"NAME": "synthetic", "NUM_TEST": 3}   # BOUNDARY did not leak
    same = write(tmp_path / "same.yaml", f"_BASE_: {base}\nDATA:\n  DATASET:\n    NAME: oxford_pet\n")
    assert load_config(same).DATA.DATASET.BOUNDARY == "ignore"


def test_base_only_in_files_and_cycles_reported(tmp_path):
    with pytest.raises(ConfigError, match="_BASE_ can only be used in config files"):
        load_config(None, ["_BASE_", "x.yaml"])
    a = tmp_path / "a.yaml"
    write(a, "_BASE_: b.yaml\n")
    write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(a))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))


def test_dump_round_trips(tmp_path):
    cfg = load_config(None, ["SOLVER.EPOCHS", "3", "MODEL.BACKBONE.NAME", "resnet34"])
    again = load_config(write(tmp_path / "dump.yaml", cfg.dump()))
    assert again == cfg


def test_every_shipped_config_loads():
    configs = sorted((REPO / "configs").rglob("*.yaml"))
    leaves = [c for c in configs if "_base_" not in c.parts and "report" not in c.parts]  # report/ holds sweeps
    assert len(leaves) >= 9
    for c in leaves:
        load_config(str(c))
    r34 = load_config(str(REPO / "configs" / "resnet34_unet_aug_cosine.yaml"))
    assert (r34.MODEL.BACKBONE.NAME, r34.SOLVER.BATCH_SIZE, r34.SOLVER.BASE_LR, r34.SOLVER.EPOCHS,
            r34.INPUT.SIZE, r34.SOLVER.SCHEDULER.NAME) == ("resnet34", 8, 1e-4, 50, 256, "cosine")
    assert len(r34.INPUT.TRAIN_TRANSFORMS) == 6


def test_every_default_is_commented():
    """Each leaf option in defaults.py has a comment above it (the catalogue promise)."""
    source = (REPO / "segkit" / "config" / "defaults.py").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(source):
        m = re.match(r"_C\.([A-Z_.]+) = (?!CN\()", line)
        if not m:
            continue
        j = i - 1
        while j >= 0 and source[j].startswith("_C.") and not source[j].strip().startswith("#"):
            j -= 1  # a run of related keys shares the comment above the run
        if j < 0 or not source[j].strip().startswith("#"):
            uncommented.append(m.group(1))
    assert not uncommented, f"options without a comment: {uncommented}"
    assert get_default_config().SOLVER.BASE_LR == 1e-4
