"""Sphinx configuration for the netproto documentation."""

import os
import sys

import netproto

# docs/_ext: the extension that renders the command reference, the man page
# and the shell completions from the command's own parsers.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

project = "netproto"
author = "the netproto developers"
copyright = "2026, the netproto developers"
version = release = netproto.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "netproto_cli"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Links to Python's and Twisted's documentation, from inventories shipped in
# docs/_inventories/ (see its README): the build reads no network.
intersphinx_mapping: dict[str, tuple[str, str]] = {
    "python": ("https://docs.python.org/3", "_inventories/python.inv"),
    "twisted": ("https://docs.twisted.org/en/stable/api", "_inventories/twisted.inv"),
}
exclude_patterns = ["_build", "_inventories"]
# Furo: a maintained, readable theme (good contrast, a light and a dark mode,
# usable on a phone); docs/_static/netproto.css adds what it lacks for a
# manual of commands: wrapped long lines, plain console transcripts.
html_theme = "furo"
html_title = f"netproto {release}"
html_static_path = ["_static"]
html_css_files = ["netproto.css"]
pygments_style = "default"
pygments_dark_style = "native"


def setup(app: object) -> None:
    """Console blocks: only ``$ ``, ``# `` (and ``> `` continuing) start a prompt."""
    import re

    from pygments.lexers.shell import BashSessionLexer

    class Transcript(BashSessionLexer):
        """
        A shell transcript whose output is never taken for a prompt: Pygments'
        own lexer reads ``...UnixAppLogger#info]`` (a log line) and
        ``fe80::1%lo`` (an address) as prompts, and highlights them as commands.
        """

        name = "netproto transcript"
        aliases = ["console"]
        _ps1rgx = re.compile(r"^([$#] )(.*\n?)")
        _bare_continuation = True

    app.add_lexer("console", Transcript)  # type: ignore[attr-defined]
