"""
Benchmark netproto.head: the response-head parser, and whole HEAD requests.

Parser: heads per second for :class:`netproto.head.HeadParser` (fed in
one chunk, and in 1-byte chunks, the worst case of a drip), against the
standard library's ``http.client.parse_headers`` on the same head, and
``h11`` when it is installed (a test-only peer, not a dependency).

Requests: sequential HEAD requests per second to a loopback server (nginx,
started on a high port, when installed; otherwise Twisted web in the same
process) with netproto.head, Twisted's ``Agent`` (no body read, no
persistent connections), and the textbook way (blocking socket, ``HEAD /
HTTP/1.0``, read until EOF).

Contenders are interleaved (A B C A B C ...) so a noisy shared machine slows
them alike; the best round of each is reported, with its ratio to the first.

    python benchmarks/bench_head.py [--rounds N] [--requests N]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.client import parse_headers
from typing import Any

from netproto.head import HeadParser

HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.22.1\r\n"
    b"Date: Fri, 27 Nov 2026 00:29:12 GMT\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: 24000\r\n"
    b"Last-Modified: Fri, 27 Nov 2026 00:29:08 GMT\r\n"
    b"Connection: close\r\n"
    b'ETag: "6b08ced4-5dc0"\r\n'
    b"Accept-Ranges: bytes\r\n"
    b"Cache-Control: max-age=3600, public\r\n"
    b"Set-Cookie: session=0123456789abcdef; Path=/; HttpOnly\r\n"
    b"Set-Cookie: theme=dark; Path=/\r\n"
    b"Vary: Accept-Encoding\r\n"
    b"\r\n"
)


def ours() -> object:
    return HeadParser().feed(HEAD)


def ours_drip() -> object:
    parser = HeadParser()
    result = None
    for i in range(len(HEAD)):
        result = parser.feed(HEAD[i : i + 1])
    return result


def stdlib() -> object:
    stream = io.BytesIO(HEAD)
    status = stream.readline()
    version, code, reason = status.rstrip(b"\r\n").split(b" ", 2)
    return version, int(code), reason, parse_headers(stream)


def h11_parser() -> Callable[[], object] | None:
    try:
        import h11
    except ImportError:
        return None

    def run() -> object:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="HEAD", target="/", headers=[("Host", "x")]))
        conn.receive_data(HEAD)
        return conn.next_event()

    return run


def rate(fn: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        count += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def bench_parser(rounds: int) -> None:
    contenders: list[tuple[str, Callable[[], object]]] = [
        ("netproto HeadParser", ours),
        ("http.client.parse_headers", stdlib),
        ("netproto HeadParser, 1-byte feeds", ours_drip),
    ]
    h11_run = h11_parser()
    if h11_run is None:
        print("(h11 is not installed: skipped; pip install h11 to compare)")
    else:
        contenders.append(("h11", h11_run))
    best = {name: 0.0 for name, _ in contenders}
    for _ in range(rounds):
        for name, fn in contenders:
            best[name] = max(best[name], rate(fn, 0.3))
    base = best[contenders[0][0]]
    print(f"Parsing a {len(HEAD)}-byte, 12-field response head (best of {rounds} rounds):")
    for name, _ in contenders:
        print(f"  {name:36} {best[name]:>10,.0f} heads/s  x{best[name] / base:.2f}")


def start_nginx() -> tuple[int, Callable[[], None]] | None:
    nginx = shutil.which("nginx")
    if nginx is None:
        return None
    prefix = tempfile.mkdtemp(prefix="netproto-bench-nginx-")
    os.makedirs(os.path.join(prefix, "www"))
    with open(os.path.join(prefix, "www", "index.html"), "w") as f:
        f.write("hello\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"daemon off; master_process off; error_log {prefix}/error.log; "
            f"pid {prefix}/nginx.pid; events {{ worker_connections 256; }} "
            f"http {{ access_log off; client_body_temp_path {prefix}/body; "
            f"server {{ listen 127.0.0.1:{port}; root {prefix}/www; }} }}\n"
        )
    process = subprocess.Popen([nginx, "-p", prefix, "-c", conf])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)

    def stop() -> None:
        process.terminate()
        process.wait(10)
        shutil.rmtree(prefix, True)

    return port, stop


def textbook_style(port: int) -> None:
    """The textbook client: HEAD / HTTP/1.0, then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
        while s.recv(65536):
            pass


def bench_requests(rounds: int, requests: int) -> None:
    from twisted.internet import reactor as _reactor
    from twisted.internet import task, threads
    from twisted.internet.defer import Deferred
    from twisted.web.client import Agent, HTTPConnectionPool

    from netproto.head import head

    reactor: Any = _reactor
    started = start_nginx()
    if started is None:
        from twisted.web.server import Site
        from twisted.web.static import Data

        listening = reactor.listenTCP(
            0, Site(Data(b"hello\n", "text/plain")), interface="127.0.0.1"
        )
        port, peer = listening.getHost().port, "Twisted web (same process)"
        stop: Callable[[], object] = listening.stopListening
    else:
        port, stop = started
        peer = "nginx"
    url = f"http://127.0.0.1:{port}/"
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))

    async def with_netproto() -> None:
        for _ in range(requests):
            await head(reactor, url)

    async def with_agent() -> None:
        for _ in range(requests):
            response = await agent.request(b"HEAD", url.encode())
            assert response.code == 200

    async def with_textbook() -> None:
        def loop() -> None:
            for _ in range(requests):
                textbook_style(port)

        await threads.deferToThread(loop)

    contenders: list[tuple[str, Callable[[], Any]]] = [
        ("netproto.head", with_netproto),
        ("twisted.web.client.Agent", with_agent),
        ("textbook (blocking socket, read to EOF)", with_textbook),
    ]

    async def main(_: object) -> None:
        best = {name: 0.0 for name, _ in contenders}
        for _ in range(rounds):
            for name, run in contenders:
                start = time.perf_counter()
                await run()
                best[name] = max(best[name], requests / (time.perf_counter() - start))
        base = best[contenders[0][0]]
        print(
            f"Sequential HEAD requests to {peer} on loopback "
            f"({requests} a round, best of {rounds} rounds):"
        )
        for name, _ in contenders:
            print(f"  {name:36} {best[name]:>8,.0f} requests/s  x{best[name] / base:.2f}")

    try:
        task.react(lambda r: Deferred.fromCoroutine(main(r)))
    except SystemExit as e:
        if e.code:
            raise
    finally:
        if started is not None:
            stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    bench_parser(args.rounds)
    print()
    sys.stdout.flush()
    bench_requests(args.rounds, args.requests)


if __name__ == "__main__":
    main()
