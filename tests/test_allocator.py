"""MALLOC_KEEP_FREED: freed tensor memory stays in the process, so re-allocating it faults no pages."""
import os
import platform
import subprocess
import sys

import pytest

from segkit.engine import allocator

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="the setting exists only for glibc's malloc")

# With the setting on, one "training step": 24 blocks of 4 MiB allocated, written (each page
# faults in if it is fresh from the kernel) and freed together, as activations are; minor page
# faults counted over steps 2-6.
_KEPT_STEPS = """
import resource, torch
from segkit.engine.allocator import keep_freed_memory
assert keep_freed_memory()
def step():
    blocks = [torch.ones(2**20) for _ in range(24)]
    del blocks
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _kept_faults() -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _KEPT_STEPS], capture_output=True, text=True, env=env,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_freed_blocks_are_reused_without_page_faults():
    # glibc's own default adapts its thresholds as it goes and faults anywhere from a fifth to
    # all of these pages (measured: 25,000-123,000), so only the kept side has a fixed bound.
    kept = _kept_faults()
    pages = 5 * 24 * (4 * 2**20) // 4096  # what five steps fault when nothing is reused
    assert kept < pages // 20, f"with the setting, steps should reuse freed memory; saw {kept} faults"


@glibc_only
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "0"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
                                 {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}])
def test_a_users_own_allocator_choice_wins(monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert "environment" in allocator._skip_reason() or "preloaded" in allocator._skip_reason()


def test_off_in_the_config_changes_nothing(monkeypatch):
    called = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: called.append(1) or True)
    cfg = type("Cfg", (), {"MALLOC_KEEP_FREED": False})()
    assert allocator.configure_allocator(cfg) is False and not called
