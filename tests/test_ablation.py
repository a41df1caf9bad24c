"""The plain reference loop and the paired ablation runner (segkit ablate)."""
import json
import random

import numpy as np
import pytest
from PIL import Image

from segkit.experiments import ablation
from segkit.experiments.plain_loop import ConfigAugment, LabAugment

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs" / "unet_aug_cosine.yaml")


def _pair(size=48):
    image = np.full((size, size, 3), 30, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    image[8:30, 12:40], mask[8:30, 12:40] = 220, 1
    return Image.fromarray(image), Image.fromarray(mask)


def _config_augment(mask_fill):
    from segkit.config import load_config

    return ConfigAugment(load_config(CONFIG).INPUT.TRAIN_TRANSFORMS, mask_fill)


@pytest.mark.parametrize("make", [lambda fill: LabAugment(mask_fill=fill), _config_augment],
                         ids=["torchvision", "albumentations"])
def test_plain_augment_keeps_pairs_aligned_and_fills_borders_as_asked(make):
    random.seed(0)
    for fill in (0, 255):
        aug = make(fill)
        for _ in range(40):
            image, mask = aug(*_pair())
            image, mask = np.asarray(image), np.asarray(mask)
            bright, pet = image.mean(2) > 120, mask == 1
            assert (bright & pet).sum() / max((bright | pet).sum(), 1) > 0.85
            assert set(np.unique(mask)) <= {0, 1, fill}


def test_config_augment_draws_from_the_loops_random_stream():
    """The plain loop's workers seed ``random``; the albumentations arm must follow it, so a
    seeded run repeats and successive items differ."""
    aug = _config_augment(0)
    random.seed(3)
    first = [np.asarray(aug(*_pair())[0]) for _ in range(6)]
    random.seed(3)
    again = [np.asarray(aug(*_pair())[0]) for _ in range(6)]
    assert all((a == b).all() for a, b in zip(first, again))
    assert len({a.tobytes() for a in first}) > 1


def _fired(monkeypatch, shared, n=600):
    """Which steps fire per call, recorded by wrapping the functional ops LabAugment calls."""
    from segkit.experiments import plain_loop

    calls = []
    for op in ("vflip", "gaussian_blur"):
        real = getattr(plain_loop.TF, op)
        monkeypatch.setattr(plain_loop.TF, op, lambda *a, _op=op, _real=real, **k: (calls.append(_op), _real(*a, **k))[1])
    aug, image, mask = LabAugment(shared_draw=shared), *_pair(16)
    random.seed(1)
    fired = []
    for _ in range(n):
        calls.clear()
        aug(image, mask)
        fired.append(("vflip" in calls, "gaussian_blur" in calls))
    return np.array(fired)


def test_shared_draw_nests_the_steps_independent_draws_do_not(monkeypatch):
    # vflip and blur both have p .2: with one draw they fire together, otherwise independently
    shared = _fired(monkeypatch, True)
    assert (shared[:, 0] == shared[:, 1]).all() and abs(shared[:, 0].mean() - 0.2) < 0.05
    independent = _fired(monkeypatch, False)
    assert abs(independent[:, 0].mean() - 0.2) < 0.05
    assert abs((independent[:, 0] & independent[:, 1]).mean() - 0.04) < 0.025


def test_breed_roots_split_by_breed(synthetic_root, tmp_path):
    roots = ablation.breed_roots(synthetic_root, str(tmp_path))
    assert set(roots) == {"Blobcat>blob_dog", "blob_dog>Blobcat"}
    root = roots["Blobcat>blob_dog"]
    train = (tmp_path / "Blobcat_to_blob_dog" / "annotations" / "trainval.txt").read_text().split("\n")
    test = (tmp_path / "Blobcat_to_blob_dog" / "annotations" / "test.txt").read_text().split("\n")
    assert train[0] and all(ln.startswith("Blobcat_") for ln in train if ln)
    assert all(ln.startswith("blob_dog_") for ln in test if ln)
    assert len([ln for ln in test if ln]) == 16  # every blob_dog image of the 24 + 8
    from segkit.config import load_config
    from segkit.data import build_dataset

    cfg = load_config(CONFIG, tiny_overrides(root, str(tmp_path / "out")))
    assert len(build_dataset(cfg, "test")) == 16


def test_summary_table_means_spreads_and_deltas():
    records = [{"arm": "plain", "seed": s, "task": "sample", "test_dice_best": d, "test_dice_last": d, "wall_s": 300}
               for s, d in ((1, 0.80), (2, 0.78))]
    records += [{"arm": "segkit", "seed": s, "task": t, "test_dice_best": d, "test_dice_last": d - 0.1, "wall_s": w}
                for s, t, d, w in ((1, "sample", 0.75, 100), (2, "sample", 0.79, 120), (1, "cross:a>b", 0.6, 50),
                                   (1, "cross:b>a", 0.7, 50))]
    table = ablation.summarize(records)
    plain_row = next(ln for ln in table.splitlines() if ln.startswith("| plain"))
    segkit_row = next(ln for ln in table.splitlines() if ln.startswith("| segkit"))
    assert "0.7900 ± 0.0100 (n=2)" in plain_row
    assert "0.7700 ± 0.0200 (n=2) | -0.0200" in segkit_row
    assert "0.6500 ± 0.0000 (n=1)" in segkit_row  # both directions of seed 1 averaged
    assert segkit_row.endswith("| 110 |") and plain_row.endswith("| 300 |")  # median wall of test-task runs
    shown = ablation.summarize(records, reference="segkit", arms=["segkit"]).splitlines()
    assert len(shown) == 4 and "| +0.0000 |" in shown[-1]
    assert "0.6700" in ablation.summarize(records, pick="last")


def test_paired_table_differences_per_seed_on_common_seeds():
    def rec(arm, seed, task, best, last):
        return {"arm": arm, "seed": seed, "task": task, "test_dice_best": best, "test_dice_last": last, "wall_s": 1}
    records = [rec("plain", 1, "sample", 0.80, 0.79), rec("plain", 2, "sample", 0.70, 0.72),
               rec("plain", 3, "sample", 0.9, 0.9), rec("segkit", 1, "sample", 0.81, 0.80),
               rec("segkit", 2, "sample", 0.73, 0.70),
               rec("plain", 1, "cross:a>b", 0.5, 0.5), rec("plain", 1, "cross:b>a", 0.7, 0.7),
               rec("segkit", 1, "cross:a>b", 0.4, 0.4), rec("segkit", 1, "cross:b>a", 0.6, 0.6),
               rec("plain", 2, "cross:a>b", 0.5, 0.5), rec("segkit", 2, "cross:a>b", 0.9, 0.9)]  # seed 2 unfinished
    row = ablation.paired_summary(records).splitlines()[-1]
    # best minus best on seeds 1 and 2 (seed 3 has no pair): +0.01, +0.03 -> +0.02 ± 0.01; cross -0.1 on one seed
    assert row == "| segkit | +0.0200 ± 0.0100 (n=2, worst +0.0100) | -0.1000 (n=1, worst -0.1000) |"
    # segkit's best.pth against the plain loop's last epoch: +0.02, +0.01
    row = ablation.paired_summary(records, pick="best", reference_pick="last").splitlines()[-1]
    assert row.startswith("| segkit | +0.0150 ± 0.0050 (n=2, worst +0.0100) |")
    assert "best.pth minus 'plain' last.pth" in ablation.paired_summary(records, reference_pick="last")


@pytest.mark.slow
def test_ablate_runs_both_sides_and_resumes(synthetic_root, tmp_path, capsys):
    from segkit.commands import main

    out = tmp_path / "abl"
    argv = ["ablate", CONFIG, "--arms", "plain", "segkit", "--seeds", "3", "--data-root", synthetic_root,
            "--output-root", str(out), *tiny_overrides(synthetic_root, "unused", epochs=1)[4:]]
    argv = [a for a in argv if a not in ("OUTPUT_DIR", "unused")]
    assert main(argv) == 0
    lines = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["arm"], r["task"]) for r in lines} == {
        (a, t) for a in ("plain", "segkit") for t in ("sample", "cross:Blobcat>blob_dog", "cross:blob_dog>Blobcat")}
    assert all(0.0 <= r["test_dice_best"] <= 1.0 and 0.0 <= r["test_dice_last"] <= 1.0 for r in lines)
    table = capsys.readouterr().out
    assert "| plain |" in table and "| segkit |" in table
    assert main(argv) == 0  # everything done: nothing is trained again
    assert len((out / "results.jsonl").read_text().splitlines()) == len(lines)


def test_shared_seed_arm_reproduces_the_old_seeding_and_restores_the_fix():
    from segkit.config import load_config
    from segkit.data import transforms
    from segkit.data.sampler import sample_seed

    cfg = load_config(str(REPO / "configs" / "resnet34_unet_aug_cosine.yaml"), ["INPUT.SIZE", "32"])

    def combinations():
        pipeline = transforms.build_transforms(cfg, train=True)
        seen = set()
        for i in range(400):
            transforms.seed_transforms(pipeline, sample_seed(42, 0, i))
            seen.add(tuple(t.py_random.random() < t.p for t in pipeline.transforms if 0 < t.p < 1))
        return len(seen)

    with ablation.ARMS["segkit_shared_seed"].patch():
        assert combinations() == 6  # nested sets: one draw against six probabilities
    assert combinations() > 40


def test_ablate_table_only_in_a_subprocess(tmp_path):
    """The command's entry point outside the test process: the table of stored results."""
    from .conftest import run_subprocess

    (tmp_path / "results.jsonl").write_text("".join(
        json.dumps({"arm": arm, "seed": 1, "task": "sample", "test_dice_best": best, "test_dice_last": 0.7,
                    "wall_s": 10}) + "\n" for arm, best in (("plain", 0.7), ("segkit", 0.75))))
    proc = run_subprocess("-m", "segkit", "ablate", CONFIG, "--table-only", "--output-root", tmp_path,
                          "--reference-checkpoint", "last")
    assert "| plain | 0.7000" in proc.stdout
    # the paired table: segkit's best.pth minus the plain loop's last epoch on seed 1
    assert "| segkit | +0.0500 (n=1, worst +0.0500) | – |" in proc.stdout


def test_unknown_arm_is_one_clear_error(tmp_path, segkit_cli):
    res = segkit_cli("ablate", CONFIG, "--arms", "plian", "--data-root", tmp_path, "--output-root", tmp_path,
                     check=False)
    assert res.returncode == 2 and "unknown arm(s) ['plian']" in res.stderr


def test_every_segkit_arm_builds_its_config_and_pipeline():
    """An arm's overrides are checked only when its run starts, minutes into an ablation."""
    from segkit.config import load_config
    from segkit.data.transforms import build_transforms

    for arm in ablation.ARMS.values():
        if arm.overrides:
            build_transforms(load_config(CONFIG, list(arm.overrides)), train=True)
    cfg = load_config(CONFIG, list(ablation.ARMS["segkit_lab_code_aug"].overrides))
    affine = next(t for t in build_transforms(cfg, train=True).transforms if type(t).__name__ == "Affine")
    # the report's code: one fixed transform, not a range
    assert affine.translate_px == {"x": (5, 5), "y": (5, 5)} and affine.shear == {"x": (2, 2), "y": (0, 0)}
    assert affine.interpolation == 0 and affine.fill_mask == 0
