"""
The ``netproto`` command line: the parser, the reactor run, the exit status.

Each group of subcommands lives in a small module of this package, listed in
:data:`COMMAND_GROUPS`, whose ``register(subcommands)`` calls
:func:`~netproto.cli.add_command`; such modules import their libraries inside
the command, so that starting any command stays cheap. A command is an
``async def run(reactor, args) -> int``; this module parses the arguments,
runs the reactor until the command returns, and turns every outcome into an
exit status and at most one line on standard error:

====  ==========================================================
 0    success
 1    the operation failed (invalid input, unreachable, timeout)
 2    usage error (unknown option, missing or malformed argument)
130   interrupted (Ctrl-C) before the command could finish
====  ==========================================================

No traceback is printed unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from netproto.cli import _address, _head, _lookup, _ping, _services, _traceroute
from netproto.cli._command import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, Run
from netproto.cli._output import CommandError, emit_json, error_record, say_error

__all__ = ["COMMAND_GROUPS", "build_parser", "main", "run_command"]

COMMAND_GROUPS: tuple[ModuleType, ...] = (_address, _lookup, _services, _head, _ping, _traceroute)
"""The modules whose ``register(subcommands)`` add the commands, in ``--help`` order."""


class _UsageError(Exception):
    """A command line that cannot be parsed; exit status 2."""


class _Parser(argparse.ArgumentParser):
    """
    An argument parser that reports errors in one line (without the usage
    block) and leaves the exit to :func:`main`.
    """

    _intermixing = False

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """
        A subcommand's arguments may come in any order (``echo HOST:PORT --udp
        MESSAGE``): options between operands are parsed as GNU tools do. After
        ``--`` everything is an operand, so a command line holding ``--`` is
        parsed in order (argparse's intermixed mode loses operands after it).
        """
        arguments = list(sys.argv[1:] if args is None else args)
        if self._subparsers is not None or self._intermixing or "--" in arguments:
            return super().parse_known_args(arguments, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(arguments, namespace)
        finally:
            self._intermixing = False


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole ``netproto`` command line."""
    from netproto import __version__

    parser = _Parser(
        prog="netproto",
        description="Internet services and diagnostics: addresses, masks, lookups, "
        "daytime, echo, HTTP HEAD and ping.",
        epilog="Exit status: 0 success, 1 operation failed, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"netproto {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print a traceback on unexpected errors",
    )
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(subcommands)
    return parser


def _drive(run: Run, args: argparse.Namespace) -> int:
    """
    Run one command on the global reactor and return its exit status.

    SIGINT and SIGTERM cancel the command's Deferred: a command that catches
    :class:`~twisted.internet.defer.CancelledError` can still report (ping
    prints its statistics) and choose its status; one that does not exits
    130, whatever the cancellation made of it (a connect cut short fails
    with its own error). A signal before the command started means it never
    starts; a second signal stops the reactor.
    """
    from twisted.internet import reactor as _reactor
    from twisted.internet.defer import CancelledError, Deferred
    from twisted.internet.error import ReactorNotRunning
    from twisted.python.failure import Failure

    reactor: Any = _reactor

    outcome: list[object] = []
    running: list[Deferred[int]] = []
    interrupted: list[int] = []
    stopping: list[bool] = []

    def start() -> None:
        if interrupted:
            return
        d = Deferred.fromCoroutine(run(reactor, args))
        running.append(d)
        d.addBoth(finish)

    def finish(result: object) -> None:
        outcome.append(result)
        stop()

    def stop() -> None:
        if stopping:
            return
        stopping.append(True)
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    def cancel() -> None:
        # On the reactor, after start() (which may have been importing the
        # command's modules when the signal came): cancel what it started.
        if running and not outcome:
            running[0].cancel()
        elif not running:
            stop()

    def interrupt(signum: int, frame: object) -> None:
        first = not interrupted
        interrupted.append(signum)
        reactor.callFromThread(cancel if first else stop)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        reactor.callWhenRunning(start)
        reactor.run(installSignalHandlers=False)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not outcome:
        return EXIT_INTERRUPTED
    result = outcome[0]
    if isinstance(result, Failure):
        if interrupted or result.check(CancelledError):
            return EXIT_INTERRUPTED
        result.raiseException()
    assert isinstance(result, int), f"command returned {result!r}, not an exit status"
    return result


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run the ``netproto`` command line and exit with its status. While the
    command runs, SIGINT and SIGTERM cancel it (see :func:`run_command`);
    a ``KeyboardInterrupt`` outside it (parsing) exits 130 with one line.
    """
    try:
        status = run_command(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say_error("netproto: interrupted")
        status = EXIT_INTERRUPTED
    sys.exit(status)


def run_command(argv: list[str]) -> int:
    """Parse *argv*, run the command, report errors; return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as e:
        say_error(str(e))
        return EXIT_USAGE
    try:
        status = _drive(args.run, args)
    except CommandError as e:
        say_error(f"netproto {args.command}: {e}")
        if getattr(args, "json", False):
            emit_json(error_record(e.kind, str(e), **e.context))
        return e.status
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``netproto ... | head -1``): nothing to report.
        _silence_stdout()
        return EXIT_FAILED
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        say_error(
            f"netproto: internal error: {type(e).__name__}: {e} (--debug shows the traceback)"
        )
        return EXIT_FAILED
    if status == EXIT_INTERRUPTED:
        say_error(f"netproto {args.command}: interrupted")
    return status


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
