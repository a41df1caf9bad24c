"""MkDocs hook: pages that describe the code are written from the code at build time.

``<!-- segkit:config-keys -->`` becomes the key tables of ``segkit.config.reference`` (read from
``defaults.py``) and ``<!-- segkit:commands -->`` the ``--help`` of every command, so neither
page can drift from what segkit accepts."""
import contextlib
import io

from segkit.commands import COMMANDS, build_parsers
from segkit.config.reference import key_reference_markdown


def _commands_markdown() -> str:
    parser, subparsers = build_parsers()
    parts = ["```text", parser.format_help().rstrip(), "```", ""]
    for name in COMMANDS:
        parts += [f"## segkit {name}", "", "```text", subparsers[name].format_help().rstrip(), "```", ""]
    return "\n".join(parts)


GENERATORS = {
    "<!-- segkit:config-keys -->": key_reference_markdown,
    "<!-- segkit:commands -->": _commands_markdown,
}


def on_page_markdown(markdown, page, config, files):
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            with contextlib.redirect_stdout(io.StringIO()):
                markdown = markdown.replace(marker, generate())
    return markdown
