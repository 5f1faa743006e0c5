"""
The ``netproto`` command: one subcommand per capability, run on the reactor,
every outcome an exit status and at most one line on standard error.

Inside: ``_main`` (the parser and the run), ``_command`` (what command
modules share: exit statuses and each command's table of them, the parser
class, :func:`add_command`), ``_output`` (sanitised text, JSON lines,
one-line errors, the JSON error kinds), ``_names`` (reverse lookups of what a
command shows), and one module per group of commands: ``_address`` (ip,
mask, defaultmask), ``_lookup`` (resolve, lookup-host, -cname, -addr, -port),
``_records`` (lookup-mx, -txt, -srv, -ns, -soa), ``_services`` (daytime,
echo), ``_head`` (with ``_writeout`` for ``-w``), ``_ping`` (with
``_ping_host`` and ``_ping_sweep`` for its two outputs), ``_traceroute``.
"""

from netproto.cli._command import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_command,
)
from netproto.cli._main import build_parser, main, run_command
from netproto.cli._output import CommandError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "add_command",
    "build_parser",
    "main",
    "run_command",
]
