"""
The twistd plugin's options and service: ``twistd -n netproto ...``.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, MultiService
from twisted.logger import Logger
from twisted.python import usage

__all__ = ["Options", "makeService"]

log = Logger()


class Options(usage.Options):
    """The ``twistd netproto`` command line."""

    synopsis = "[options]"
    longdesc = (
        "Serve the classic Internet services (RFC 867 daytime, RFC 862 echo) over TCP "
        "and UDP, IPv4 and IPv6."
    )


def makeService(config: Options, reactor: Any = None) -> IService:
    """Build, without binding any socket, the services *config* asks for."""
    service = MultiService()
    log.info("netproto: no service options given; nothing to serve")
    return service
