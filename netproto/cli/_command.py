"""
What every command module shares: the exit statuses, the parser class
(:class:`Parser`: one-line usage errors from the subcommand's own parser,
negative numbers read as numbers), :func:`add_command` (a subcommand with
the common ``--json`` and ``--debug`` options and its table of exit
statuses), :func:`seconds` (the argument type of every duration), and
:func:`finish` (waiting for a running ping or sweep, stopped on Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeAlias

from netproto.cli._output import CommandError
from netproto.util import positive_seconds

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "STANDARD_EXITS",
    "ExitTable",
    "Parser",
    "Run",
    "Subcommands",
    "UsageError",
    "add_command",
    "exit_help",
    "finish",
    "seconds",
    "usage_error",
]

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The type of what ``register(subcommands)`` is given (argparse names it privately)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Run = Callable[[Any, argparse.Namespace], Coroutine[Any, Any, int]]
"""A command: ``async def run(reactor, args) -> int`` (the exit status)."""

ExitTable: TypeAlias = "tuple[tuple[str, str], ...]"
"""
A command's exit statuses, ``(status, meaning)`` in order, as ``--help``,
``docs/cli.rst`` and the man page show them; *status* is text so that a row
may say ``1-3`` or ``130``.
"""

STANDARD_EXITS: ExitTable = (
    ("0", "success"),
    ("1", "the operation failed (invalid input, refused, unreachable, timeout)"),
    ("2", "usage error (unknown option, missing or malformed argument)"),
    ("130", "interrupted (Ctrl-C) before the command could report"),
)
"""The exit statuses of a command that replaces no classic tool."""


class UsageError(Exception):
    """A command line that cannot be parsed: exit with :attr:`status` (2 unless told)."""

    def __init__(self, message: str, prog: str, status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.prog = prog
        self.status = status

    def __str__(self) -> str:
        return f"{self.prog}: {self.message} (see '{self.prog} --help')"


class Parser(argparse.ArgumentParser):
    """
    The parser of ``netproto`` and of each subcommand: errors are one line
    (without the usage block) raised as :class:`UsageError`, with the usage
    status of the command (:attr:`usage_status`); an unknown option is
    reported by the subcommand that was given it; a negative number
    (``-1``, ``-0.5``) is an argument, not an option, wherever it stands,
    unless it is exactly one of the command's options (``-4``, ``-6``).
    """

    _intermixing = False

    def __init__(
        self,
        *args: Any,
        exits: ExitTable = STANDARD_EXITS,
        usage_status: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.exits = exits
        """The exit-status table of the command (:data:`STANDARD_EXITS` unless told)."""
        self.usage_status = usage_status
        """The exit status of a usage error of this command."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        # argparse reads every "-1" as an option once a parser has an option
        # that looks like a negative number (-4, -6): forget that, so that
        # "-c -1" is a count (and refused as such) and "-4" is still -4.
        negative = getattr(self, "_has_negative_number_optionals", None)
        if isinstance(negative, list):
            negative.clear()
        return action

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog, self.usage_status)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """
        A subcommand's arguments may come in any order (``echo HOST:PORT --udp
        MESSAGE``): options between operands are parsed as GNU tools do. After
        ``--`` everything is an operand, so a command line holding ``--`` is
        parsed in order (argparse's intermixed mode loses operands after it).
        What a subcommand cannot parse is its own usage error, not the
        top-level parser's.
        """
        arguments = list(sys.argv[1:] if args is None else args)
        if self._subparsers is not None or self._intermixing or "--" in arguments:
            parsed, extras = super().parse_known_args(arguments, namespace)
        else:
            self._intermixing = True
            try:
                parsed, extras = self.parse_known_intermixed_args(arguments, namespace)
            finally:
                self._intermixing = False
        if extras and self._subparsers is None and not self._intermixing:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def exit_help(exits: ExitTable) -> str:
    """The ``Exit status:`` block of ``--help``, one row a line."""
    width = max(len(status) for status, _ in exits)
    lines = ["Exit status:"]
    for status, meaning in exits:
        lines.append(f"  {status:>{width}}  {meaning}")
    return "\n".join(lines)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per line instead of text",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print a traceback on unexpected errors",
    )
    return common


_COMMON = _common_options()


def add_command(
    subcommands: Subcommands,
    name: str,
    run: Run,
    *,
    help: str,
    description: str | None = None,
    exits: ExitTable = STANDARD_EXITS,
    usage_status: int = EXIT_USAGE,
    tls: bool = True,
) -> argparse.ArgumentParser:
    """
    Add subcommand *name* running *run*, with the common ``--json`` and
    ``--debug`` options; return its parser for the command's own arguments.
    *exits* is its exit-status table (shown by ``--help``, the man page and
    ``docs/cli.rst``), *usage_status* the status of its usage errors.
    *tls* False says the command never uses TLS: run as a process of its
    own (``netproto NAME``), it then starts without pyOpenSSL.
    """
    parser: argparse.ArgumentParser = subcommands.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=exit_help(exits),
        parents=[_COMMON],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        exits=exits,
        usage_status=usage_status,
    )
    parser.set_defaults(run=run, command=name, usage_status=usage_status, tls=tls)
    return parser


def seconds(text: str) -> float:
    """The argument type of a duration: a positive number of seconds."""
    try:
        return positive_seconds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def usage_error(message: str) -> CommandError:
    """
    A :class:`CommandError` of kind ``usage``: the command exits with its own
    usage status (the *usage_status* of :func:`add_command`, 2 by default).
    """
    return CommandError(message, EXIT_USAGE)


async def finish(running: Any) -> Any:
    """
    Wait for a running ping or sweep to end and return its summary; on Ctrl-C
    (the command's Deferred cancelled) stop it and return the summary so far.
    """
    from twisted.internet.defer import CancelledError, Deferred

    waiter: Deferred[Any] = Deferred()
    running.done.addBoth(_relay, waiter)
    try:
        return await waiter
    except CancelledError:
        running.stop()
        return running.done.result


def _relay(result: Any, waiter: Any) -> Any:
    """
    Pass *result* on to *waiter* (unless it was cancelled): a summary is
    kept for later reads, a failure (the output went away) is handed over.
    """
    from twisted.python.failure import Failure

    if isinstance(result, Failure):
        if not waiter.called:
            waiter.errback(result)
        return None
    if not waiter.called:
        waiter.callback(result)
    return result
