"""
The errors of :mod:`netproto.lookup`: one base class, one subclass per kind
of failure, each message one line naming what was looked up and why.
"""

from __future__ import annotations

__all__ = [
    "CNAMELoopError",
    "InvalidLookupError",
    "LookupRefusedError",
    "LookupTimeoutError",
    "NameLookupError",
    "NameNotFoundError",
    "ServerFailureError",
    "ServiceNotFoundError",
]


class NameLookupError(Exception):
    """
    A lookup did not produce an answer. The message is one line that names
    what was looked up and why it failed; subclasses say which kind of failure.
    """


class InvalidLookupError(NameLookupError, ValueError):
    """
    The input cannot be looked up at all: not a host name, a malformed server
    specification, an unknown network, a port out of range. No query was sent.
    """


class NameNotFoundError(NameLookupError):
    """
    The name does not exist (NXDOMAIN, not in the hosts file), or it exists but
    has no address of the family asked for.
    """


class ServiceNotFoundError(NameNotFoundError):
    """The services database has no such service for that protocol."""


class LookupTimeoutError(NameLookupError):
    """No answer came within the time allowed."""


class LookupRefusedError(NameLookupError):
    """The DNS server refused the query (RCODE 5), or refused the connection."""


class ServerFailureError(NameLookupError):
    """
    The DNS server answered with an error other than "no such name"
    (SERVFAIL, FORMERR, NOTIMP, ...), or the system resolver failed.
    """


class CNAMELoopError(NameLookupError):
    """A CNAME chain loops, or is longer than the bound (:data:`MAX_CNAME_HOPS`)."""
