"""
An incremental, bounded parser of HTTP/1.x response heads (RFC 9112), with
no transport and no clock: bytes in, a :class:`ResponseHead` or a
:class:`HeadParseError` out.

Decisions where RFC 9112 leaves the recipient a choice (all documented in
``docs/guides/head.rst``):

- Lines end with CRLF; a bare LF is accepted as a line end (section 2.2
  allows it); a bare CR anywhere is an error.
- The response must start with ``HTTP/``: the first byte that cannot begin
  ``HTTP/`` ends the parse at once (``SSH-2.0-...``), without waiting for a
  line end or a timeout.
- Status line: ``HTTP/D.D SP DDD [SP reason]``; only major version 1 is
  accepted; the status code must lie in 100..599; a missing reason (with or
  without its SP) is accepted and reported as empty.
- Field lines: a field name is a non-empty token directly followed by ``:``
  (white space before the colon is an error, as section 5.1 asks of
  servers); white space around the value is removed; NUL in a value is an
  error; other control bytes are kept (the command escapes them when it
  prints).
- Obsolete line folding (section 5.2): a line starting with SP or HTAB
  continues the previous field; as a user agent must, the fold is replaced
  by one SP. A folded line before the first field is an error (section 2.2
  allows the recipient to reject it).
- 1xx interim responses (100, 102, 103, ...) are collected and parsing
  goes on; ``101 Switching Protocols`` is an error, as a HEAD request never
  asks for an upgrade.
- Names and values are decoded as ISO-8859-1, which is lossless:
  ``value.encode("latin-1")`` gives back the bytes received.
- Whatever follows the final head (a stray body) is not looked at.

Caps (:class:`HeadLimits`) bound the bytes of all heads together, each line, the
field lines of one head and the count of interim responses, so that a hostile
peer cannot make the client buffer more than a fixed amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "HeadLimits",
    "HeadParseError",
    "HeadParser",
    "HeadTooLargeError",
    "NotHTTPError",
    "ResponseHead",
]

_PREFIX = b"HTTP/"
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?:( .*)?)\Z", re.DOTALL)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


class HeadParseError(ValueError):
    """The peer's response is not a valid HTTP/1.x response head."""


class NotHTTPError(HeadParseError):
    """The peer does not speak HTTP (its first bytes cannot start ``HTTP/``)."""


class HeadTooLargeError(HeadParseError):
    """The head passed one of the :class:`HeadLimits`."""


@dataclass(frozen=True)
class HeadLimits:
    """Caps on what a response may make the client buffer or count."""

    max_head: int = 64 * 1024
    """Bytes of all heads together (interim ones included)."""
    max_line: int = 8 * 1024
    """Bytes of one line (status or field line, line end included)."""
    max_fields: int = 100
    """Field lines in one head."""
    max_interim: int = 10
    """1xx interim responses before the final one."""


class HeadFields:
    """
    Reading the status line and the fields of a head; shared by
    :class:`ResponseHead` and :class:`netproto.head.HeadResponse`.
    """

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    def get_all(self, name: str) -> list[str]:
        """The values of every field called *name* (case-insensitive), in order."""
        lowered = name.lower()
        return [v for n, v in self.headers if n.lower() == lowered]

    def get(self, name: str) -> str | None:
        """The value of the first field called *name*, or None."""
        values = self.get_all(name)
        return values[0] if values else None

    @property
    def status_line(self) -> str:
        """The status line as received, without its line end."""
        return f"{self.version} {self.status} {self.reason}".rstrip(" ")


@dataclass(frozen=True)
class ResponseHead(HeadFields):
    """One parsed response head: status line and ordered field lines."""

    version: str
    """``HTTP/1.1`` or ``HTTP/1.0`` (any ``HTTP/1.x`` as received)."""
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    """Field lines in the order received, repeated names kept."""


def _show(data: bytes | bytearray, limit: int = 60) -> str:
    """A short quote of peer bytes for an error message (escaped by the caller)."""
    text = bytes(data[:limit]).decode("latin-1")
    return repr(text + ("..." if len(data) > limit else ""))


@dataclass
class HeadParser:
    """
    Feed it the peer's bytes with :meth:`feed` until it returns the final
    :class:`ResponseHead`; call :meth:`eof` if the connection ends first.
    Every problem raises a :class:`HeadParseError` (never anything else).
    """

    limits: HeadLimits = field(default_factory=HeadLimits)
    interim: list[ResponseHead] = field(default_factory=list)
    """The 1xx heads received before the final one."""

    def __post_init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0
        self._scanned = 0
        self._status: tuple[str, int, str] | None = None
        self._fields: list[tuple[bytes, bytes]] = []
        self._result: ResponseHead | None = None
        self._checked_prefix = 0

    @property
    def received(self) -> int:
        """Bytes of heads received so far (consumed or buffered)."""
        return self._consumed + len(self._buffer)

    @property
    def done(self) -> bool:
        """True once the final head has been parsed."""
        return self._result is not None

    def feed(self, data: bytes) -> ResponseHead | None:
        """
        Take the next bytes from the peer; return the final head once it is
        complete (later calls return it again and ignore their bytes).
        """
        if self._result is not None:
            return self._result
        buffer = self._buffer
        buffer += data
        self._check_prefix(0)
        max_line = self.limits.max_line
        pos, search = 0, self._scanned
        try:
            while self._result is None:
                end = buffer.find(b"\n", search)
                if end < 0:
                    pending = len(buffer) - pos
                    if pending > max_line:
                        raise HeadTooLargeError(
                            f"a line of the response head is longer than {max_line} bytes"
                        )
                    self._check_total(pending)
                    self._scanned = pending
                    return None
                length = end + 1 - pos
                if length > max_line:
                    raise HeadTooLargeError(
                        f"a line of the response head is longer than {max_line} bytes"
                    )
                self._check_total(length)
                line = bytes(buffer[pos:end])
                pos = search = end + 1
                self._consumed += length
                if line.endswith(b"\r"):
                    line = line[:-1]
                if b"\r" in line:
                    raise HeadParseError("bare CR in the response head")
                self._line(line)
                if self._status is None and self._result is None:
                    self._checked_prefix = 0
                    self._check_prefix(pos)
            self._scanned = 0
            return self._result
        finally:
            del buffer[:pos]

    def eof(self) -> None:
        """The connection ended: raise the error that describes how far the head got."""
        if self._result is not None:
            return
        total = self.received
        if total == 0:
            raise HeadParseError("the server closed the connection without a response")
        raise HeadParseError(
            f"the server closed the connection before the end of the response head "
            f"({total} bytes received)"
        )

    def _check_total(self, pending: int) -> None:
        if self._consumed + pending > self.limits.max_head:
            raise HeadTooLargeError(
                f"the response head is larger than {self.limits.max_head} bytes"
            )

    def _check_prefix(self, start: int) -> None:
        """Fail at the first byte that cannot start ``HTTP/`` (a status line)."""
        if self._status is not None:
            return
        upto = min(len(self._buffer) - start, len(_PREFIX))
        if upto <= self._checked_prefix:
            return
        if self._buffer[start : start + upto] != _PREFIX[:upto]:
            if self.interim:
                raise HeadParseError(
                    f"malformed status line after an interim response: "
                    f"{_show(self._buffer[start:])}"
                )
            raise NotHTTPError(f"not an HTTP server: it sent {_show(self._buffer[start:])}")
        self._checked_prefix = upto

    def _line(self, line: bytes) -> None:
        if self._status is None:
            self._status = self._status_line(line)
        elif line == b"":
            self._end_of_head()
        elif line[:1] in (b" ", b"\t"):
            if not self._fields:
                raise HeadParseError("white space before the first field line")
            name, previous = self._fields[-1]
            folded = line.strip(b" \t")
            self._check_value(folded)
            if folded:
                self._fields[-1] = (name, previous + b" " + folded if previous else folded)
        else:
            if len(self._fields) >= self.limits.max_fields:
                raise HeadTooLargeError(
                    f"the response head has more than {self.limits.max_fields} fields"
                )
            name, colon, value = line.partition(b":")
            if not colon:
                raise HeadParseError(f"field line without a colon: {_show(line)}")
            if not _TOKEN.match(name):
                if name.rstrip(b" \t") != name:
                    raise HeadParseError(f"white space before the colon in field {_show(name)}")
                raise HeadParseError(f"invalid field name {_show(name)}")
            stripped = value.strip(b" \t")
            self._check_value(stripped)
            self._fields.append((name, stripped))

    @staticmethod
    def _check_value(value: bytes) -> None:
        if b"\0" in value:
            raise HeadParseError("NUL byte in a field value")

    def _status_line(self, line: bytes) -> tuple[str, int, str]:
        match = _STATUS_LINE.match(line)
        if match is None:
            raise HeadParseError(f"malformed status line {_show(line)}")
        major, minor, code, reason = match.groups()
        if major != b"1":
            raise HeadParseError(
                f"unsupported HTTP version HTTP/{major.decode()}.{minor.decode()} "
                "(only HTTP/1.x is spoken here)"
            )
        status = int(code)
        if not 100 <= status <= 599:
            raise HeadParseError(f"status code {status} is outside 100..599")
        if reason and b"\0" in reason:
            raise HeadParseError("NUL byte in the reason phrase")
        text = reason[1:].decode("latin-1") if reason else ""
        return f"HTTP/{major.decode()}.{minor.decode()}", status, text

    def _end_of_head(self) -> None:
        assert self._status is not None
        version, status, reason = self._status
        head = ResponseHead(
            version,
            status,
            reason,
            tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in self._fields),
        )
        self._status = None
        self._fields = []
        if status == 101:
            raise HeadParseError("unexpected 101 Switching Protocols (no upgrade was asked for)")
        if status < 200:
            if len(self.interim) >= self.limits.max_interim:
                raise HeadTooLargeError(
                    f"more than {self.limits.max_interim} interim (1xx) responses"
                )
            self.interim.append(head)
            return
        self._result = head
