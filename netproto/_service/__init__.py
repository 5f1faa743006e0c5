"""
The machinery every inetd-style service shares: the TCP factory and protocol
base that apply the connection caps and deadlines, the UDP protocol base that
applies the source rules and reply budgets, and the clients' single-deadline
TCP and UDP exchanges with their errors. Private: :mod:`netproto.daytime` and
:mod:`netproto.echo` re-export what users need.
"""

from netproto._service._answer import AnswerFactory, AnswerProtocol
from netproto._service._budget import BufferBudget
from netproto._service._client import (
    MismatchError,
    ProtocolError,
    RefusedError,
    ServiceError,
    ServiceTimeoutError,
    UnreachableError,
    connect_reason,
    tcp_exchange,
    udp_exchange,
    udp_send,
)
from netproto._service._tcp import LimitedFactory, Refused, WatchedProtocol
from netproto._service._trim import Trimmer
from netproto._service._udp import Datagram, PolicedDatagramProtocol

__all__ = [
    "AnswerFactory",
    "AnswerProtocol",
    "BufferBudget",
    "Datagram",
    "LimitedFactory",
    "MismatchError",
    "PolicedDatagramProtocol",
    "ProtocolError",
    "Refused",
    "RefusedError",
    "ServiceError",
    "ServiceTimeoutError",
    "Trimmer",
    "UnreachableError",
    "WatchedProtocol",
    "connect_reason",
    "tcp_exchange",
    "udp_exchange",
    "udp_send",
]
