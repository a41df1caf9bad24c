"""The docs site builds without a warning, its generated pages cover the code, the README stays a
landing page, and every command the docs show is one segkit accepts with a config that loads."""
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from segkit.commands import build_parsers
from segkit.commands.options import split_overrides
from segkit.config import flatten_config, get_default_config, load_config
from segkit.config.reference import key_docs, key_reference_markdown

from .conftest import REPO

DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]
README_MAX_LINES = 250
_BLOCK = re.compile(r"^```(?:bash|sh|shell)[ \t]*\n(.*?)^```", re.M | re.S)
_TOOL = re.compile(r"(?:^|/)tools/(\w+)\.py$")


_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def _commands(text: str) -> Iterator[List[str]]:
    """Each segkit invocation of the bash blocks, as argv after ``segkit``; shell variables set in
    the block (``C=configs/x.yaml``) are expanded."""
    for block in _BLOCK.finditer(text):
        variables = {}
        for line in block.group(1).replace("\\\n", " ").splitlines():
            assign = _ASSIGN.match(line)
            if assign:
                variables[assign.group(1)] = " ".join(shlex.split(assign.group(2), comments=True))
                continue
            line = _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), line)
            for part in re.split(r"&&|\|\||;|\|", line):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    continue
                argv = _segkit_argv(words)
                if argv:
                    yield argv


def _segkit_argv(words: List[str]) -> List[str]:
    words = words[: next((i for i, w in enumerate(words) if w[:1] in "<>" or w[:2] in ("1>", "2>")), len(words))]
    for i, word in enumerate(words):
        if word == "segkit" or word.endswith("/segkit"):
            return words[i + 1:]
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "segkit":
            return words[i + 2:]
        tool = _TOOL.search(word)
        if tool:
            return [tool.group(1).replace("_", "-"), *words[i + 1:]]
    return []


def documented_commands() -> List[Tuple[str, List[str]]]:
    return [(page.relative_to(REPO).as_posix(), argv) for page in PAGES for argv in _commands(page.read_text())]


def test_the_docs_show_commands_and_the_collector_finds_them():
    found = documented_commands()
    assert len(found) > 40
    assert ("README.md", ["train", "quickstart"]) in found
    assert _segkit_argv(shlex.split("torchrun --nproc_per_node 4 tools/train.py unet_aug_cosine SEED 1")) == \
        ["train", "unet_aug_cosine", "SEED", "1"]
    assert _segkit_argv(shlex.split("SEGKIT_DEBUG=1 python -m segkit list > out.txt")) == ["list"]


@pytest.mark.parametrize("page,argv", documented_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_documented_command_parses_and_its_config_loads(page, argv):
    """The real parser accepts it and its config loads with its overrides. Configs named my*.yaml
    stand for the reader's own file, and those under work_dirs/ for a run's config.yaml written by
    a command before it: both are parsed only."""
    parser, subparsers = build_parsers()
    if argv[0].startswith("-"):
        with pytest.raises(SystemExit) as exit:
            parser.parse_args(argv)
        assert exit.value.code == 0, f"{page}: segkit {' '.join(argv)}"
        return
    assert argv[0] in subparsers, f"{page}: unknown command in 'segkit {' '.join(argv)}'"
    try:
        args = subparsers[argv[0]].parse_intermixed_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{page}: 'segkit {' '.join(argv)}' does not parse")
    config = getattr(args, "config", None)
    if not config or Path(config).name.startswith("my") or config.startswith("work_dirs/") or "-h" in argv \
            or "--help" in argv:
        return
    opts = list(getattr(args, "opts", []))
    if argv[0] == "infer":
        opts = split_overrides(args.inputs)[1]
    if argv[0] == "sweep":
        from segkit.experiments.sweep import expand, load_sweep, validate

        sweep = load_sweep(config, args.grid, opts)
        validate(sweep, expand(sweep))
        return
    if argv[0] == "config" and args.action == "path":
        return
    load_config(config, opts)


def test_readme_is_a_landing_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for command in ('pip install -e ".[dev]" && segkit train quickstart', "python -m pytest -q"):
        assert command in text, command


def test_the_key_reference_covers_every_default():
    docs = key_docs()
    assert [d.key for d in docs] == list(flatten_config(get_default_config(), keep_empty=False))
    assert all(d.meaning for d in docs), [d.key for d in docs if not d.meaning]
    by_key = {d.key: d for d in docs}
    assert by_key["SOLVER.BASE_LR"].default == 1e-4 and by_key["SOLVER.BASE_LR"].meaning.startswith("Learning rate")
    assert by_key["SOLVER.WARMUP_FACTOR"].meaning == by_key["SOLVER.WARMUP_EPOCHS"].meaning  # one comment, two keys
    assert by_key["MODEL.BACKBONE.NAME"].meaning.startswith("Encoder:")
    table = key_reference_markdown()
    assert "| `SOLVER.BASE_LR` | `0.0001` | Learning rate" in table and "## SOLVER" in table


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """Broken links, missing pages, bad API references and docstring warnings fail the build."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    site = tmp_path / "site"
    keys = (site / "reference" / "config-keys" / "index.html").read_text()
    assert "SOLVER.BASE_LR" in keys and "MALLOC_KEEP_FREED" in keys
    commands = (site / "reference" / "commands" / "index.html").read_text()
    assert "usage: segkit train" in commands and "usage: segkit config" in commands
    assert "load_config" in (site / "reference" / "api" / "index.html").read_text()
