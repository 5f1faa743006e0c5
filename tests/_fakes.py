"""Test doubles for the daytime and echo servers: a UDP transport and a reactor with listenUDP."""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock


class FakeSocket:
    """A socket whose sendto records datagrams, or raises a chosen errno."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.fail: int | None = None

    def sendto(self, data: bytes, addr: Any) -> int:
        if self.fail is not None:
            raise OSError(self.fail, errno.errorcode.get(self.fail, "error"))
        self.sent.append((bytes(data), addr))
        return len(data)


class FakeUDPPort:
    """Enough of a ``udp.Port`` for a DatagramProtocol: a socket, write, stopListening."""

    def __init__(self, protocol: DatagramProtocol, port: int = 7, with_socket: bool = True) -> None:
        self.protocol = protocol
        self.port = port
        self.fake = FakeSocket()
        self.written: list[tuple[bytes, Any]] = []
        if with_socket:
            self.socket = self.fake
        protocol.makeConnection(self)  # type: ignore[arg-type]

    def write(self, data: bytes, addr: Any = None) -> None:
        if self.fake.fail is not None:
            raise OSError(self.fake.fail, "fake failure")
        self.written.append((data, addr))

    def stopListening(self) -> None:
        self.protocol.doStop()


class UDPMemoryReactor(MemoryReactorClock):
    """MemoryReactorClock with the listenUDP it lacks: records ports, starts protocols."""

    def __init__(self) -> None:
        super().__init__()
        self.udpPorts: dict[int, FakeUDPPort] = {}

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> FakeUDPPort:
        fake = FakeUDPPort(protocol, port)
        self.udpPorts[port] = fake
        return fake


def assert_refused(case: Any, factory: Any, peer: Any) -> None:
    """Assert that *factory* refuses a connection from *peer*: aborted at once, nothing written."""
    from twisted.internet.testing import StringTransport

    protocol = factory.buildProtocol(peer)
    case.assertIsNotNone(protocol)
    transport = StringTransport(peerAddress=peer)
    protocol.makeConnection(transport)
    case.assertTrue(transport.disconnected)
    case.assertEqual(transport.value(), b"")
