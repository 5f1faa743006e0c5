"""
The ``netproto`` command line: the parser, the reactor run, the exit status.

Each group of subcommands lives in a small module of this package, listed in
:data:`COMMAND_GROUPS`, whose ``register(subcommands)`` calls
:func:`~netproto.cli.add_command`; such modules import their libraries inside
the command, so that starting any command stays cheap. A command is an
``async def run(reactor, args) -> int``; this module parses the arguments,
runs the reactor until the command returns, and turns every outcome into an
exit status and at most one line on standard error (with ``--json``, also
one error object on standard output). Each command has its own table of exit
statuses, following the classic tool it replaces (:func:`add_command`'s
*exits*); a usage error before any command is named exits 2.

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

from netproto.cli import (
    _address,
    _fping,
    _head,
    _inetd,
    _lookup,
    _ping,
    _records,
    _services,
    _traceroute,
)
from netproto.cli._command import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    Run,
    UsageError,
)
from netproto.cli._output import CommandError, emit_json, error_record, say_error

__all__ = [
    "COMMAND_GROUPS",
    "build_parser",
    "main",
    "parse",
    "report_failure",
    "report_interrupted",
    "run_command",
    "without_tls",
]

COMMAND_GROUPS: tuple[ModuleType, ...] = (
    _address,
    _lookup,
    _records,
    _services,
    _inetd,
    _head,
    _ping,
    _fping,
    _traceroute,
)
"""The modules whose ``register(subcommands)`` add the commands, in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole ``netproto`` command line."""
    from netproto import __version__

    parser = Parser(
        prog="netproto",
        description="Internet services and diagnostics: addresses, masks, lookups, "
        "daytime, echo, HTTP HEAD and ping.",
        epilog="Exit status: each command's own, as the classic tool it replaces "
        "(see 'netproto COMMAND --help'); 2 for a usage error before the command.",
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


def _drive(run: Run, args: argparse.Namespace, cut: list[bool] | None = None) -> int:
    """
    Run one command on the global reactor and return its exit status (130,
    and True appended to *cut*, when it was cut short before it returned).

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
    cut = [] if cut is None else cut

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
        cut.append(True)
        return EXIT_INTERRUPTED
    result = outcome[0]
    if isinstance(result, Failure):
        if interrupted or result.check(CancelledError):
            cut.append(True)
            return EXIT_INTERRUPTED
        result.raiseException()
    assert isinstance(result, int), f"command returned {result!r}, not an exit status"
    return result


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> NoReturn:
    """
    Run the ``netproto`` command line and exit with its status. While the
    command runs, SIGINT and SIGTERM cancel it (see :func:`run_command`);
    a ``KeyboardInterrupt`` outside it (parsing) exits 130 with one line.
    *own_process*: this process exists only to run the command (the
    ``netproto`` script, ``python -m netproto``), so it may leave out what
    the command does not need.
    """
    try:
        status = run_command(sys.argv[1:] if argv is None else list(argv), own_process=own_process)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say_error("netproto: interrupted")
        status = EXIT_INTERRUPTED
    sys.exit(status)


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options of *argv* (before any ``--``)."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """
    The parsed command line *argv*; a usage error is reported (one line on
    standard error and, with ``--json``, the error object on standard
    output) and raised as :class:`UsageError` for its exit status.
    """
    try:
        return build_parser().parse_args(list(argv))
    except UsageError as e:
        say_error(str(e))
        if _wants_json(argv):
            emit_json(error_record("usage", e.message))
        raise


def report_failure(args: argparse.Namespace, error: CommandError) -> int:
    """Say *error* (stderr; and its JSON object with ``--json``); return its exit status."""
    if not error.silent:
        say_error(f"netproto {args.command}: {error}")
    if getattr(args, "json", False):
        emit_json(error_record(error.kind, str(error), **error.context))
    if error.kind == "usage" and error.status == EXIT_USAGE:
        # usage_error(): the command's own usage status (getent's 1 for lookups).
        return int(getattr(args, "usage_status", EXIT_USAGE))
    return error.status


def report_interrupted(args: argparse.Namespace) -> None:
    """Say that the command was interrupted before it could report (and its JSON object)."""
    say_error(f"netproto {args.command}: interrupted")
    if getattr(args, "json", False):
        emit_json(error_record("interrupted", "interrupted"))


def run_command(argv: list[str], *, own_process: bool = False) -> int:
    """
    Parse *argv*, run the command, report errors; return the exit status.
    With *own_process* (see :func:`main`), a command that never uses TLS
    runs without pyOpenSSL.
    """
    try:
        args = parse(argv)
    except UsageError as e:
        return e.status
    if own_process and not getattr(args, "tls", True):
        without_tls()
    cut: list[bool] = []
    try:
        status = _drive(args.run, args, cut)
    except CommandError as e:
        return report_failure(args, e)
    except KeyboardInterrupt:
        cut.append(True)
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``netproto ... | head -1``): nothing to report.
        _silence_stdout()
        return EXIT_FAILED
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        message = f"internal error: {type(e).__name__}: {e} (--debug shows the traceback)"
        say_error(f"netproto: {message}")
        if getattr(args, "json", False):
            emit_json(error_record("failed", message))
        return EXIT_FAILED
    if cut:
        report_interrupted(args)
    elif status == EXIT_INTERRUPTED:
        # The command reported what it had (traceroute's summary) and was cut short.
        say_error(f"netproto {args.command}: interrupted")
    return status


def without_tls() -> None:
    """
    Keep pyOpenSSL (and the cryptography package under it) out of this
    process, if Twisted's reactor is not imported yet: 40-50 ms and 12 MiB
    of a ping's start-up. The reactor imports them only to offer TLS
    (``twisted.internet.tcp`` through ``_newtls`` and ``protocols.tls``,
    ``posixbase`` through ``internet.ssl``), each import guarded so that
    without pyOpenSSL the reactor runs with no TLS. Nothing of netproto's
    own imports them on these paths: the chain is inside Twisted, so the
    only way to skip it is to make the import fail, the way Python's
    import system allows (``sys.modules[name] = None``). For a process that
    runs one TLS-free command (:func:`add_command`'s ``tls=False``) and
    then exits; ``tests/test_cli_startup.py`` checks that the reactor still
    starts so, and that the ping command's process never loads pyOpenSSL.
    """
    if "twisted.internet.tcp" not in sys.modules and "OpenSSL" not in sys.modules:
        sys.modules["OpenSSL"] = None  # type: ignore[assignment]


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
