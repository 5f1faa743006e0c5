"""
The twistd plugin's sockets: what a ``--SERVICE=SPEC`` means (the listener
kinds), the table of services, the services that bind every socket in
``privilegedStartService``, the UDP port that checks each datagram's
destination, and the metrics endpoint. Private: :mod:`netproto.tap` is the
public face.
"""

from netproto._listen._bound import BindError, BoundService
from netproto._listen._listeners import UDP, AnyAddressTCP, EndpointTCP, Inherited, Listener
from netproto._listen._metrics import MetricsRegistry
from netproto._listen._root import NetprotoService, build_listeners
from netproto._listen._spec import parse_metrics_spec, parse_service_spec, parse_udp_spec
from netproto._listen._stream import AnyAddressTCPEndpoint, StreamService
from netproto._listen._supervisor import SupervisedService
from netproto._listen._table import SERVICES, ServiceRow
from netproto._listen._udp import MAX_DATAGRAM, DestinationCheckingPort, UDPService, UDPSpec
from netproto._listen._workers import check_workers

__all__ = [
    "MAX_DATAGRAM",
    "SERVICES",
    "UDP",
    "AnyAddressTCP",
    "AnyAddressTCPEndpoint",
    "BindError",
    "BoundService",
    "DestinationCheckingPort",
    "EndpointTCP",
    "Inherited",
    "Listener",
    "MetricsRegistry",
    "NetprotoService",
    "ServiceRow",
    "StreamService",
    "SupervisedService",
    "UDPService",
    "UDPSpec",
    "build_listeners",
    "check_workers",
    "parse_metrics_spec",
    "parse_service_spec",
    "parse_udp_spec",
]
