"""The one atomic-write helper: temp file beside the target, fsync, rename; nothing left on failure."""
import json
import os

import pytest

from segkit.utils import files


def test_json_round_trip_and_replace(tmp_path):
    path = tmp_path / "deep" / "result.json"
    files.atomic_write_json(str(path), {"dice": 0.5, "path": tmp_path})
    assert json.loads(path.read_text()) == {"dice": 0.5, "path": str(tmp_path)}
    files.atomic_write_json(str(path), [1, 2])
    assert json.loads(path.read_text()) == [1, 2] and os.listdir(path.parent) == ["result.json"]


def test_data_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    files.atomic_write_text(str(tmp_path / "a.txt"), "hello")
    assert events == ["fsync", "replace"] and (tmp_path / "a.txt").read_text() == "hello"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "manifest.json"
    files.atomic_write_json(str(path), {"v": 1})

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(str(path), broken)
    assert json.loads(path.read_text()) == {"v": 1} and os.listdir(tmp_path) == ["manifest.json"]


def test_copy(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\x00\x01" * 1000)
    files.atomic_copy(str(tmp_path / "a.bin"), str(tmp_path / "b.bin"))
    assert (tmp_path / "b.bin").read_bytes() == (tmp_path / "a.bin").read_bytes()
