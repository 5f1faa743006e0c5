"""
What every command module shares: the exit statuses, :func:`add_command`
(a subcommand with the common ``--json`` and ``--debug`` options),
:func:`seconds` (the argument type of every duration), and :func:`finish`
(waiting for a running ping or sweep, stopped on Ctrl-C).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any, TypeAlias

from netproto.cli._output import CommandError
from netproto.util import positive_seconds

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Run",
    "Subcommands",
    "add_command",
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
) -> argparse.ArgumentParser:
    """
    Add subcommand *name* running *run*, with the common ``--json`` and
    ``--debug`` options; return its parser for the command's own arguments.
    """
    parser: argparse.ArgumentParser = subcommands.add_parser(
        name,
        help=help,
        description=description or help,
        parents=[_COMMON],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, command=name)
    return parser


def seconds(text: str) -> float:
    """The argument type of a duration: a positive number of seconds."""
    try:
        return positive_seconds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def usage_error(message: str) -> CommandError:
    """A :class:`CommandError` with the usage status (2)."""
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
