"""
``netproto head``: an HTTP HEAD request, printing the response head like
``curl -I``.
"""

from __future__ import annotations

import argparse
from typing import Any

from netproto.cli._command import EXIT_OK, Subcommands, add_command, seconds
from netproto.cli._output import CommandError, emit_json, printable

DESCRIPTION = """\
Send a HEAD request to TARGET and print the status line and the header fields of
the response, like 'curl -I'. TARGET is an http:// or https:// URL, or the
HOST:PORT form ([::1]:8080 for IPv6; no port means 80).

The request is HTTP/1.1 with one Host field, User-Agent and Connection: close; the
client stops at the end of the head, whatever Content-Length says. One deadline
(--timeout) covers name resolution, connect, TLS and every response. Redirects are
shown, not followed, unless -L is given (at most 5, HEAD all the way, http(s) only,
loops refused). Control characters from the server are printed escaped (\\x1b).

Exit status: 0 when a response head arrived, whatever its status code (as curl);
with --fail, 1 when the final status is 400 or more. 1 when the request failed
(bad target, unreachable, timeout, TLS, not HTTP, head too large, redirect loop).
2 on usage errors."""


def register(subcommands: Subcommands) -> None:
    """Add the ``head`` command."""
    parser = add_command(
        subcommands,
        "head",
        _run_head,
        help="send an HTTP HEAD request and print the response head",
        description=DESCRIPTION,
    )
    parser.add_argument("target", metavar="URL|HOST:PORT")
    parser.add_argument(
        "-L",
        "--location",
        action="store_true",
        help="follow redirects (at most 5), printing each hop",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=10.0,
        metavar="S",
        help="one deadline for the whole request, in seconds (default 10)",
    )
    parser.add_argument(
        "--http1.0",
        dest="http10",
        action="store_true",
        help="send the bare HTTP/1.0 request: 'HEAD / HTTP/1.0' and no fields",
    )
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    parser.add_argument(
        "--cacert",
        metavar="FILE",
        help="trust the certificate authorities in this PEM file instead of the system's",
    )
    parser.add_argument(
        "-f", "--fail", action="store_true", help="exit 1 when the final status code is 400 or more"
    )


def _trust_root(path: str) -> Any:
    from twisted.internet.ssl import Certificate, trustRootFromCertificates

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CommandError(f"--cacert {printable(path)}: {e.strerror}") from None
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in data.split(marker) if b"-----BEGIN" in block]
    try:
        certificates = [Certificate.loadPEM(block) for block in blocks]
    except Exception:
        certificates = []
    if not certificates:
        raise CommandError(f"--cacert {printable(path)}: no PEM certificate could be read")
    return trustRootFromCertificates(certificates)


def _head_record(head: Any) -> dict[str, Any]:
    return {
        "http_version": head.version,
        "status": head.status,
        "reason": head.reason,
        "headers": [[name, value] for name, value in head.headers],
    }


def _print_head(head: Any) -> None:
    lines = [head.status_line] + [f"{name}: {value}" for name, value in head.headers]
    print("\n".join(printable(line) for line in lines) + "\n", flush=True)


def _report(response: Any, as_json: bool) -> None:
    if as_json:
        record = {
            "url": response.url,
            "peer": response.peer,
            **_head_record(response),
            "interim": [_head_record(h) for h in response.interim],
            "redirect": response.redirect,
            "timing": {
                "connect": round(response.timing.connect, 6),
                "tls": None if response.timing.tls is None else round(response.timing.tls, 6),
                "first_byte": round(response.timing.first_byte, 6),
                "total": round(response.timing.total, 6),
            },
        }
        emit_json(record)
        return
    for interim in response.interim:
        _print_head(interim)
    _print_head(response)


async def _run_head(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.head import HeadError, TargetError, head

    trust = _trust_root(args.cacert) if args.cacert else None
    try:
        response = await head(
            reactor,
            args.target,
            timeout=args.timeout,
            follow=args.location,
            http10=args.http10,
            insecure=args.insecure,
            trust_root=trust,
            on_response=lambda r: _report(r, args.json),
        )
    except TargetError as e:
        raise CommandError(f"{printable(args.target)}: {e}") from None
    except HeadError as e:
        raise CommandError(str(e)) from None
    if args.fail and response.status >= 400:
        raise CommandError(f"the server answered {response.status_line}")
    return EXIT_OK
