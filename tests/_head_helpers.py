"""Loopback peers for the HEAD tests: a Twisted web site, scripted raw servers, TLS, nginx."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

reactor: Any = _reactor


class Probe(Resource):
    """
    A test site. ``/`` echoes what it saw (Host count and value, User-Agent,
    Connection) and sends Set-Cookie twice; ``/big`` claims a huge body;
    ``/missing`` is 404; ``/r/N`` redirects to ``/r/N-1`` down to ``/r/0``;
    ``/loop/a`` and ``/loop/b`` redirect to each other; ``/to?URL``
    redirects to URL.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        path = request.path
        headers = request.requestHeaders
        if path == b"/":
            hosts = headers.getRawHeaders(b"host") or []
            request.setHeader(b"x-host-count", str(len(hosts)).encode())
            request.setHeader(b"x-seen-host", b",".join(hosts))
            request.setHeader(b"x-seen-ua", b",".join(headers.getRawHeaders(b"user-agent") or []))
            request.setHeader(
                b"x-seen-connection", b",".join(headers.getRawHeaders(b"connection") or [])
            )
            request.responseHeaders.addRawHeader(b"set-cookie", b"a=1")
            request.responseHeaders.addRawHeader(b"set-cookie", b"b=2")
            return b"hello"
        if path == b"/big":
            request.setHeader(b"content-length", b"1000000000000")
            return b""
        if path.startswith(b"/r/"):
            n = int(path[3:])
            if n == 0:
                return b"arrived"
            return self._redirect(request, b"/r/%d" % (n - 1), 302)
        if path == b"/loop/a":
            return self._redirect(request, b"/loop/b", 301)
        if path == b"/loop/b":
            return self._redirect(request, b"/loop/a", 308)
        if path == b"/to":
            return self._redirect(request, request.uri.partition(b"?")[2], 307)
        request.setResponseCode(404)
        return b"no such page"

    @staticmethod
    def _redirect(request: Request, location: bytes, code: int) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"location", location)
        return b""


class Scripted(Protocol):
    """
    A raw peer: *greeting* on connect, *reply* once the request's empty line
    arrives, then *drip* bytes one every *interval* seconds, or an *endless*
    stream of header lines (bounded at 4 MB); never closes on its own.
    """

    def __init__(self, factory: ScriptedFactory) -> None:
        self.f = factory
        self.request = b""
        self.sent = 0
        self.loop: LoopingCall | None = None
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.f.connections.append(self)
        if self.f.greeting:
            self.transport.write(self.f.greeting)

    def dataReceived(self, data: bytes) -> None:
        self.request += data
        if b"\r\n\r\n" not in self.request or self.loop is not None:
            return
        if self.f.reply:
            self.transport.write(self.f.reply)
        if self.f.drip:
            drip = iter(self.f.drip)

            def one() -> None:
                byte = next(drip, None)
                if byte is not None:
                    self.transport.write(bytes([byte]))

            self.loop = LoopingCall(one)
            self.loop.start(self.f.interval)
        elif self.f.endless:
            self.transport.write(b"HTTP/1.1 200 OK\r\n")

            def more() -> None:
                if self.sent < 4_000_000:
                    chunk = b"X-Endless: " + b"z" * 50 + b"\r\n"
                    self.transport.write(chunk * 100)
                    self.sent += len(chunk) * 100

            self.loop = LoopingCall(more)
            self.loop.start(0.001)
        if self.f.close_after_reply:
            self.transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.closed.callback(None)


class ScriptedFactory(Factory):
    """Builds :class:`Scripted` peers; remembers them so tests can wait for their close."""

    def __init__(
        self,
        *,
        greeting: bytes = b"",
        reply: bytes = b"",
        drip: bytes = b"",
        interval: float = 0.25,
        endless: bool = False,
        close_after_reply: bool = False,
    ) -> None:
        self.greeting, self.reply, self.drip = greeting, reply, drip
        self.interval, self.endless, self.close_after_reply = interval, endless, close_after_reply
        self.connections: list[Scripted] = []

    def buildProtocol(self, addr: object) -> Scripted:
        return Scripted(self)


def make_certificates(
    ip_sans: tuple[str, ...] = ("127.0.0.1", "::1"),
    dns_sans: tuple[str, ...] = (),
) -> tuple[bytes, bytes]:
    """A throwaway CA and a server certificate it signs: (CA cert PEM, server key+cert PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netproto test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_sans]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_sans]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netproto test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return (
        ca.public_bytes(serialization.Encoding.PEM),
        key_pem + cert.public_bytes(serialization.Encoding.PEM),
    )


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 and ::1 a moment ago."""
    for _ in range(20):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
            s6.bind(("::1", 0))
            port: int = s6.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
                try:
                    s4.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
error_log {prefix}/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_timeout 60;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {prefix}/www;
        location = /moved {{ return 301 /index.html; }}
    }}
}}
"""


def start_nginx(test: Any) -> int:
    """Start nginx on a loopback high port with a temporary prefix; stop it at cleanup."""
    prefix = tempfile.mkdtemp(prefix="netproto-nginx-")
    test.addCleanup(shutil.rmtree, prefix, True)
    os.makedirs(os.path.join(prefix, "www"))
    os.makedirs(os.path.join(prefix, "tmp"))
    with open(os.path.join(prefix, "www", "index.html"), "w") as f:
        f.write("<p>hello from nginx</p>\n" * 1000)
    port = free_port()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(prefix=prefix, port=port))
    process = subprocess.Popen(
        [shutil.which("nginx") or "nginx", "-p", prefix, "-c", conf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def stop() -> None:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()

    test.addCleanup(stop)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"nginx did not start: {error}") from None
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)


def direct_environ(**extra: str) -> dict[str, str]:
    """This process's environment without proxy variables (loopback goes direct), plus *extra*."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env.update(extra)
    return env


def run_netproto(
    *args: str, env: dict[str, str] | None = None
) -> Deferred[tuple[bytes, bytes, int]]:
    """Run ``python -m netproto ARGS`` without blocking the reactor (servers keep serving)."""
    return getProcessOutputAndValue(
        sys.executable,
        ["-m", "netproto", *args],
        env=env if env is not None else direct_environ(),
        reactor=reactor,
    )


def run_tool(
    tool: str, *args: str, env: dict[str, str] | None = None
) -> Deferred[tuple[bytes, bytes, int]]:
    """Run system tool *tool* (curl) without blocking the reactor."""
    return getProcessOutputAndValue(
        shutil.which(tool) or tool,
        list(args),
        env=env if env is not None else direct_environ(),
        reactor=reactor,
    )


class TrackingSite(Site):
    """The :class:`Probe` site, without access logging, that knows when its connections close."""

    def __init__(self) -> None:
        super().__init__(Probe())
        self.closed: list[Deferred[None]] = []

    def log(self, request: Request) -> None:
        pass

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        done: Deferred[None] = Deferred()
        self.closed.append(done)
        original: Callable[[Any], None] = channel.connectionLost

        def lost(reason: Any) -> None:
            original(reason)
            if not done.called:
                done.callback(None)

        channel.connectionLost = lost
        return channel


class _ProxyPeer(Protocol):
    """One proxied connection's far side: relays to the client's transport."""

    def __init__(self, client: Protocol) -> None:
        self.client = client

    def dataReceived(self, data: bytes) -> None:
        assert self.client.transport is not None
        self.client.transport.write(data)

    def connectionLost(self, reason: object = None) -> None:
        if self.client.transport is not None:
            self.client.transport.loseConnection()


class _Proxying(Protocol):
    """
    A client of :class:`ProxyFactory`: ``CONNECT host:port`` opens a tunnel
    (``200``), refused with ``403`` for hosts in ``refuse``; an absolute-form
    request is sent on to its host in origin form. Every request line is
    recorded in the factory's ``requests``.
    """

    def __init__(self, factory: ProxyFactory) -> None:
        self.f = factory
        self.buffer = b""
        self.peer: Any = None

    def dataReceived(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.transport.write(data)
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        line, _, fields = head.partition(b"\r\n")
        self.f.requests.append(line.decode("latin-1"))
        method, target, version = line.split(b" ")
        if method == b"CONNECT":
            host, _, port = target.rpartition(b":")
            host = host.strip(b"[]")
            if host.decode() in self.f.refuse:
                self.transport.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                self.transport.loseConnection()
                return
            first = b""
            reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
        else:
            url = target.decode()
            authority, _, path = url.partition("://")[2].partition("/")
            host_text, _, port_text = authority.rpartition(":")
            host, port = host_text.strip("[]").encode(), port_text.encode() or b"80"
            first = b" ".join([method, b"/" + path.encode(), version]) + b"\r\n" + fields
            first += b"\r\n\r\n" + rest
            reply = b""
        from twisted.internet.endpoints import HostnameEndpoint, connectProtocol

        self.buffer = b""
        peer = _ProxyPeer(self)
        endpoint = HostnameEndpoint(reactor, host, int(port))

        def connected(p: Any) -> None:
            self.peer = p
            if reply:
                self.transport.write(reply)
            if first:
                p.transport.write(first)

        d = connectProtocol(endpoint, peer)
        d.addCallbacks(connected, lambda f: self.transport.loseConnection())

    def connectionLost(self, reason: object = None) -> None:
        if self.peer is not None:
            self.peer.transport.loseConnection()


class ProxyFactory(Factory):
    """A small HTTP proxy for the tests (absolute-form requests and CONNECT), on loopback."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.requests: list[str] = []
        self.refuse = refuse

    def buildProtocol(self, addr: object) -> _Proxying:
        return _Proxying(self)
