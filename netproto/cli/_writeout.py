"""
``netproto head -w FORMAT``: curl's ``--write-out`` variables (``%{http_code}``,
``%{time_total}``, ``%{header{NAME}}``...), its escapes (``\\n``, ``\\t``,
``\\r``, ``\\\\``, ``%%``) and its units (seconds, six decimals).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from netproto.cli._command import usage_error
from netproto.cli._output import printable

__all__ = ["VARIABLES", "check_format", "expand", "write_out"]


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.6f}"


def _peer(response: Any, part: int) -> str:
    from netproto.util import split_host_port

    if response is None:
        return ""
    try:
        return str(split_host_port(response.peer, 0)[part])
    except ValueError:
        return ""


VARIABLES: dict[str, Callable[[Any, int, Any], str]] = {
    "http_code": lambda r, n, e: f"{r.status:03d}" if r else "000",
    "response_code": lambda r, n, e: f"{r.status:03d}" if r else "000",
    "http_version": lambda r, n, e: r.version.removeprefix("HTTP/") if r else "0",
    "time_namelookup": lambda r, n, e: _seconds(r.timing.name_lookup if r else 0),
    "time_connect": lambda r, n, e: _seconds(r.timing.connect if r else 0),
    "time_appconnect": lambda r, n, e: _seconds(r.timing.tls if r else 0),
    "time_pretransfer": lambda r, n, e: _seconds((r.timing.tls or r.timing.connect) if r else 0),
    "time_starttransfer": lambda r, n, e: _seconds(r.timing.first_byte if r else 0),
    "time_total": lambda r, n, e: _seconds(r.timing.total if r else 0),
    "remote_ip": lambda r, n, e: _peer(r, 0),
    "remote_port": lambda r, n, e: _peer(r, 1),
    "url_effective": lambda r, n, e: r.url if r else "",
    "redirect_url": lambda r, n, e: (r.redirect or "") if r else "",
    "num_redirects": lambda r, n, e: str(max(n - 1, 0)),
    "num_headers": lambda r, n, e: str(len(r.headers)) if r else "0",
    "content_type": lambda r, n, e: (r.get("Content-Type") or "") if r else "",
    "exitcode": lambda r, n, e: str(e.status) if e else "0",
    "errormsg": lambda r, n, e: str(e) if e else "",
}
"""The ``%{NAME}`` variables of ``-w``, as curl names and writes them."""

_TOKEN = re.compile(r"%\{header\{([^}]*)\}\}|%\{([a-z_]+)\}|%%|\\[ntr\\]")


def check_format(text: str) -> None:
    """Refuse a FORMAT naming a variable curl's ``-w`` has and we do not (usage error)."""
    for match in _TOKEN.finditer(text):
        name = match.group(2)
        if name is not None and name not in VARIABLES:
            raise usage_error(f"-w: unknown variable %{{{name}}}")


def expand(text: str, response: Any, responses: int, error: Any) -> str:
    """FORMAT with its variables replaced (values from a peer made printable)."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if match.group(1) is not None:
            value = response.get(match.group(1)) if response is not None else None
            return printable(value or "")
        if match.group(2) is not None:
            return printable(VARIABLES[match.group(2)](response, responses, error))
        return {"%%": "%", "\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\"}[token]

    return _TOKEN.sub(one, text)


def write_out(text: str, response: Any, responses: int, error: Any) -> None:
    """Print FORMAT, expanded, on standard output (after the head, as curl does)."""
    sys.stdout.write(expand(text, response, responses, error))
    sys.stdout.flush()
