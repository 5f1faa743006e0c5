"""
The ``netproto`` command's reference, man page and shell completions, all
made from its argparse parsers (``netproto.cli.build_parser``) so that none
can drift from the command:

- ``.. netproto-command:: NAME`` renders a subcommand: its synopsis, its
  description, its options and its exit-status table;
- at the end of the build, ``man/netproto.1`` (argparse-manpage, with an
  EXIT STATUS section per command) and ``completion/netproto.bash`` and
  ``completion/_netproto`` (shtab, bash and zsh) are written into the
  output directory, from where the packager installs them.

:func:`products` makes the three files' text; the tests call it.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

__all__ = ["ErrorKindsDirective", "products", "setup", "subcommands"]


def _parser() -> argparse.ArgumentParser:
    from netproto.cli import build_parser

    return build_parser()


def subcommands(parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """The subcommand parsers of ``netproto``, by name, in ``--help`` order."""
    parser = parser or _parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise RuntimeError("netproto has no subcommands")


def _exit_rows(sub: Any) -> list[tuple[str, str]]:
    return list(getattr(sub, "exits", ()))


def _man_page(parser: argparse.ArgumentParser) -> str:
    from argparse_manpage.manpage import Manpage

    text = str(Manpage(parser))
    text = text.replace('"Generated Python Manual"', '"netproto manual"', 1)
    section = [".SH EXIT STATUS", "Each command exits as the classic tool it replaces."]
    for name, sub in subcommands(parser).items():
        section.append(f".SS netproto {name}")
        for status, meaning in _exit_rows(sub):
            section += [".TP", f"\\fB{status}\\fR", meaning.replace("-", "\\-")]
    return text.rstrip("\n") + "\n" + "\n".join(section) + "\n"


def products() -> dict[str, str]:
    """The man page and the bash and zsh completions: ``{relative path: text}``."""
    import shtab

    parser = _parser()
    return {
        os.path.join("man", "netproto.1"): _man_page(parser),
        os.path.join("completion", "netproto.bash"): shtab.complete(parser, shell="bash"),
        os.path.join("completion", "_netproto"): shtab.complete(parser, shell="zsh"),
    }


def _paragraphs(text: str) -> list[str]:
    """A description written for a terminal as reStructuredText: paragraphs and literals."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.split("\n")
        if all(line.startswith("    ") for line in lines):
            out += ["::", "", *lines, ""]
        else:
            joined = " ".join(line.strip() for line in lines)
            out += [_escape(joined), ""]
    return out


def _escape(text: str) -> str:
    """Text for reStructuredText, where ``*``, backquotes, ``|`` and ``_`` are markup."""
    return re.sub(r"([\\*`|_])", r"\\\1", text)


def _option_rows(sub: Any) -> list[tuple[str, str]]:
    rows = []
    for action in sub._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            metavar = ""
            if action.nargs != 0:
                metavar = " " + (action.metavar or action.dest.upper())
            names = ", ".join(f"{o}{metavar}" for o in action.option_strings)
        else:
            names = str(action.metavar or action.dest)
        rows.append((names, action.help or ""))
    return rows


class CommandDirective(Directive):
    """``.. netproto-command:: NAME``: one subcommand's reference, from its parser."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        sub = subcommands().get(name)
        if sub is None:
            raise self.error(f"netproto has no command {name!r}")
        usage = sub.format_usage().removeprefix("usage: ").strip()
        lines = [".. code-block:: text", "", *("   " + line for line in usage.split("\n")), ""]
        lines += _paragraphs(sub.description or "")
        lines += [".. list-table:: Options", "   :widths: 35 65", ""]
        for names, help_text in _option_rows(sub):
            lines += [f"   * - ``{names}``", f"     - {_escape(help_text)}"]
        lines += [
            "",
            f".. list-table:: Exit status of ``netproto {name}``",
            "   :widths: 10 90",
            "",
        ]
        for status, meaning in _exit_rows(sub):
            lines += [f"   * - {status}", f"     - {_escape(meaning)}"]
        lines.append("")
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset, container)
        return list(container.children)


class ErrorKindsDirective(Directive):
    """``.. netproto-error-kinds::``: the table of JSON error kinds, from ``ERROR_KINDS``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from netproto.cli._output import ERROR_KINDS

        lines = [".. list-table:: JSON error kinds", "   :widths: 20 80", ""]
        for kind, meaning in ERROR_KINDS.items():
            lines += [f"   * - ``{kind}``", f"     - {_escape(meaning)}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset, container)
        return list(container.children)


def _write_products(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for relative, text in products().items():
        path = os.path.join(app.outdir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def setup(app: Any) -> dict[str, Any]:
    """Register the directive and the writing of the man page and completions."""
    app.add_directive("netproto-command", CommandDirective)
    app.add_directive("netproto-error-kinds", ErrorKindsDirective)
    app.connect("build-finished", _write_products)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
