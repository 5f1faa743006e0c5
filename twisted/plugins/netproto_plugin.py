"""twistd plugin: ``twistd netproto`` runs the netproto services."""

from twisted.application.service import ServiceMaker

netproto = ServiceMaker(
    "netproto",
    "netproto.tap",
    "The inetd small servers: daytime, echo, discard, chargen, time, qotd (TCP and UDP, "
    "IPv4 and IPv6) with abuse protection",
    "netproto",
)
