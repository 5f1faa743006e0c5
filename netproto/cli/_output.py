"""
What every command writes: sanitised text, JSON lines, one-line errors.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

__all__ = [
    "ERROR_KINDS",
    "CommandError",
    "emit_json",
    "error_record",
    "failed",
    "format_ms",
    "ms",
    "printable",
    "say",
    "say_error",
]


ERROR_KINDS: dict[str, str] = {
    "usage": "the command line cannot be used: unknown option, missing or malformed argument",
    "invalid": "an argument is not what it must be: not an address, a mask, a host name, a URL",
    "not-found": "the name, address, record or service does not exist (NXDOMAIN, no record)",
    "refused": "the peer refused: connection refused, port unreachable, a DNS server's REFUSED",
    "timeout": "no answer in the time allowed",
    "unreachable": "no route or no way to the peer (network or host unreachable, ICMP errors)",
    "server-failure": "a DNS server or the system resolver failed (SERVFAIL, no server answer)",
    "tls": "the TLS handshake failed",
    "certificate": "the server's certificate could not be verified (untrusted, wrong name)",
    "protocol": "the peer answered, but not as the protocol says (not HTTP, a CNAME loop)",
    "http": "with --fail, an HTTP status of 400 or more",
    "redirect": "a redirect could not be followed: too many, a loop, not http(s)",
    "permission": "not allowed here: a raw socket without privilege, a file not readable",
    "interrupted": "interrupted (Ctrl-C, SIGTERM) before the command could report",
    "failed": "any other failure (an internal error, a mismatch, a system call)",
}
"""
The ``kind`` of a JSON error object, and what it means: a stable word a
script can branch on (new kinds may be added; none is renamed).
"""


class CommandError(Exception):
    """
    The operation failed for a reason the user can act on. The ``netproto``
    command prints ``netproto <command>: <message>`` on one line and exits with
    *status* (1 unless told otherwise); with ``--json`` it also writes
    :func:`error_record` of *kind* (one of :data:`ERROR_KINDS`; ``usage``
    for status 2, else ``failed`` unless told) and the *context* keys
    (``host``, ``port``...) on standard output.
    """

    def __init__(
        self,
        message: str,
        status: int = 1,
        *,
        kind: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind or ("usage" if status == 2 else "failed")
        if self.kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {self.kind!r}")
        self.context = dict(context or {})
        self.silent = False
        """Whether the line on standard error is left out (``head -s``, as curl's)."""


def error_record(kind: str, message: str, **context: Any) -> dict[str, Any]:
    """
    The JSON object of a failure: the *context* keys, then ``error`` holding
    ``kind`` (one of :data:`ERROR_KINDS`) and ``message`` (the one line shown
    on standard error, without the ``netproto COMMAND:`` prefix).
    """
    return {**context, "error": {"kind": kind, "message": message}}


def printable(text: str | bytes) -> str:
    """
    *text* with every control or otherwise unprintable character escaped
    (``\\x1b``, ``\\n``, ``\\u200b``), so that nothing a peer or an argument
    carries can move the cursor, recolour or rewrite the user's terminal.
    Bytes are decoded as UTF-8, invalid sequences shown as ``\\xNN``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    # The control characters first, in C (20 MB of NULs in a second, not 30);
    # what is left unprintable (U+200B, U+2028...) is rare.
    text = text.translate(_CONTROLS)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def emit_json(record: dict[str, Any]) -> None:
    """Write *record* as one line of JSON on standard output."""
    sys.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def say(line: str, stream: TextIO | None = None) -> None:
    """Write *line* (already made printable) and a newline, flushed: on stdout by default."""
    out = stream or sys.stdout
    out.write(line + "\n")
    out.flush()


def say_error(message: str) -> None:
    """Write the first line of *message*, sanitised, on standard error."""
    print(printable(message.splitlines()[0] if message else message), file=sys.stderr)


def failed(error: Exception, status: int = 1) -> CommandError:
    """The :class:`CommandError` reporting *error* (a library's one-line exception)."""
    return CommandError(printable(str(error)), status)


def format_ms(seconds: float) -> str:
    """A time in milliseconds with ping(8)'s precision: 0.045, 1.23, 12.3, 123."""
    value = seconds * 1000.0
    if value >= 99.95:
        return f"{value:.0f}"
    if value >= 9.995:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds rounded to the microsecond, for JSON (``None`` stays)."""
    return None if seconds is None else round(seconds * 1000.0, 3)
