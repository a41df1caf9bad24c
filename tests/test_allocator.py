"""MALLOC_KEEP_FREED: segkit asks glibc to keep freed memory (mallopt), unless the user decided otherwise."""
import sys

import pytest

from segkit.utils import process as allocator

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or allocator.platform.libc_ver()[0] != "glibc",
                                reason="the setting exists only for glibc's malloc")


class FakeLibc:
    def __init__(self, answer: int = 1):
        self.calls, self.answer = [], answer

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.answer


@pytest.fixture
def fresh(monkeypatch):
    """keep_freed_memory() as in a new process: no cached answer, no malloc settings in the environment."""
    for key in allocator.USER_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LD_PRELOAD", "")
    allocator.keep_freed_memory.cache_clear()
    yield
    allocator.keep_freed_memory.cache_clear()


@glibc_only
def test_mallopt_gets_glibcs_maximum_mmap_threshold_and_no_trimming(fresh, monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc if name == "libc.so.6" else None)
    assert allocator.keep_freed_memory() is True
    # M_MMAP_THRESHOLD (-3) to 32 MiB, glibc's 64-bit ceiling; M_TRIM_THRESHOLD (-1) out of reach
    assert libc.calls == [(-3, 32 * 2**20), (-1, 2**31 - 1)]
    assert allocator.keep_freed_memory() is True and len(libc.calls) == 2  # once per process


@glibc_only
def test_a_refused_setting_reports_off(fresh, monkeypatch):
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: FakeLibc(answer=0))
    assert allocator.keep_freed_memory() is False


@glibc_only
def test_the_real_libc_accepts_the_settings(fresh):
    assert allocator.keep_freed_memory() is True


@glibc_only
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "0"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
                                 {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}])
def test_a_users_own_allocator_choice_wins(fresh, monkeypatch, env):
    libc = FakeLibc()
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert allocator.keep_freed_memory() is False and libc.calls == []


def test_off_in_the_config_changes_nothing(monkeypatch):
    called = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: called.append(1) or True)
    cfg = type("Cfg", (), {"MALLOC_KEEP_FREED": False})()
    assert allocator.configure_allocator(cfg) is False and not called
