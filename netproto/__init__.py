"""
netproto: the classic Internet services and diagnostics on Twisted.

Modules: :mod:`netproto.util` (addresses, masks, checksum), the services and
clients, the ``netproto`` command (:mod:`netproto.cli`) and the twistd plugin
(:mod:`netproto.tap`).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
