"""Helpers shared by the tests: running the command, skipping without privileges."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

BIN = Path(sys.executable).parent


def run_cli(
    *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m netproto ARGS`` in a subprocess and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "netproto", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def installed_script(name: str) -> str | None:
    """The path of console script *name* installed beside this Python, if any."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def root_skip_reason() -> str | None:
    """Why a test that needs root (raw sockets, namespaces, ports < 1024) cannot run, or None."""
    if os.geteuid() != 0:
        return "needs root (raw sockets, network namespaces or privileged ports)"
    return None


def tool_skip_reason(tool: str) -> str | None:
    """Why a test that uses system tool *tool* as a peer cannot run, or None."""
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    return None


UNPRIVILEGED_RUN = "NETPROTO_TEST_UNPRIVILEGED"
"""
The environment variable CI sets for its run of the ping and command-line
tests as a user without privileges, in a network namespace whose
``net.ipv4.ping_group_range`` admits that user: there, not being able to open
a ping socket (or running as root) is an error, not a reason to skip.
"""


@cache
def icmp_mode() -> str | None:
    """
    The kind of ICMP socket the ping tests open here: ``raw`` (root or
    CAP_NET_RAW), ``dgram`` (a Linux ping socket, allowed for our group by
    ``net.ipv4.ping_group_range``), or None when neither may be opened.
    """
    mode = None
    for kind, name in ((socket.SOCK_RAW, "raw"), (socket.SOCK_DGRAM, "dgram")):
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
        except OSError:
            continue
        mode = name
        break
    if os.environ.get(UNPRIVILEGED_RUN) and (mode != "dgram" or os.geteuid() == 0):
        raise RuntimeError(
            f"{UNPRIVILEGED_RUN} is set, but this run is {'root' if os.geteuid() == 0 else 'not'}"
            f" and its ICMP socket is {mode}: run it as a non-root user whose group"
            " net.ipv4.ping_group_range admits"
        )
    return mode


def ping_skip_reason() -> str | None:
    """
    Why tests that ping loopback cannot run here (no raw socket and no ping
    socket allowed), or None: they run as root on raw sockets, and as any
    user whose group ``net.ipv4.ping_group_range`` admits on ping sockets.
    """
    if icmp_mode() is None:
        return (
            "needs root/CAP_NET_RAW, or unprivileged ping sockets "
            "(net.ipv4.ping_group_range admitting this user's group)"
        )
    return None


def raw_skip_reason() -> str | None:
    """Why a test of what only raw ICMP sockets do (kernel filters, own identifiers) cannot run."""
    if icmp_mode() != "raw":
        return "needs a raw ICMP socket (root or CAP_NET_RAW)"
    return None


def on_terminal(
    args: list[str], *, stream: str = "stdout", stdin: bytes = b"", timeout: float = 60
) -> tuple[int, bytes, bytes]:
    """
    Run ``python -m netproto ARGS`` with *stream* (``stdout`` or ``stderr``)
    on a pseudo-terminal; return the exit status, what the other stream
    printed, and every byte the terminal was shown.
    """
    import pty

    leader, follower = pty.openpty()
    try:
        tty = {stream: follower}
        process = subprocess.Popen(
            [sys.executable, "-m", "netproto", *args],
            stdin=subprocess.PIPE,
            stdout=tty.get("stdout", subprocess.PIPE),
            stderr=tty.get("stderr", subprocess.PIPE),
        )
        out, err = process.communicate(stdin, timeout=timeout)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    return process.returncode, (err if stream == "stdout" else out) or b"", shown


async def run_here(*argv: str, reactor: object = None) -> tuple[int, str, str]:
    """
    Run ``netproto ARGV`` in this process on the running reactor (or
    *reactor*), as the console script runs it but without a reactor of its
    own: the same parser, command and failure report. Returns the exit
    status and what it wrote on standard output and standard error.
    """
    import contextlib
    import io

    from netproto.cli._command import UsageError
    from netproto.cli._main import parse, report_failure
    from netproto.cli._output import CommandError

    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parse(argv)
        except UsageError as e:
            return e.status, out.getvalue(), err.getvalue()
        try:
            status: int = await args.run(reactor, args)
        except CommandError as e:
            status = report_failure(args, e)
    return status, out.getvalue(), err.getvalue()
