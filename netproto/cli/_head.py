"""
``netproto head``: an HTTP HEAD request, printing the response head like
``curl -I``, with curl's options and exit statuses (``-w`` in ``_writeout``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from netproto.cli._command import EXIT_OK, ExitTable, Subcommands, add_command, seconds
from netproto.cli._output import CommandError, emit_json, ms, printable, say
from netproto.cli._writeout import check_format, write_out

__all__ = ["HEAD_EXITS", "register"]

DESCRIPTION = """\
Send a HEAD request to TARGET and print the status line and the header fields of
the response as 'curl -I' does (lines end with CRLF, then an empty line). TARGET
is an http:// or https:// URL, or the HOST:PORT form ([::1]:8080 for IPv6; no
port means 80).

The request is HTTP/1.1 with one Host field, User-Agent, Accept and Connection:
close (-H and -A replace or remove them); the client stops at the end of the
head, whatever Content-Length says. One deadline (-m/--max-time) covers name
resolution, connect, TLS and every response. Redirects are shown, not followed,
unless -L is given (at most --max-redirs, HEAD all the way, http(s) only, loops
refused). Control characters from the server are printed escaped (\\x1b).

Proxies: -x, or as curl reads the environment: http_proxy for http:// URLs,
https_proxy or HTTPS_PROXY for https:// ones (through a CONNECT tunnel),
all_proxy or ALL_PROXY for both; no_proxy or NO_PROXY (or --noproxy) lists the
hosts, domains and CIDR ranges that go direct. Only HTTP proxies.

-w/--write-out prints curl's variables after the head: %{http_code},
%{time_namelookup}, %{time_connect}, %{time_appconnect}, %{time_starttransfer},
%{time_total} (seconds, as curl), %{remote_ip}, %{url_effective}, ... and
%{header{NAME}}; --json gives the same timing in milliseconds."""

HEAD_EXITS: ExitTable = (
    ("0", "a response head arrived, whatever its status code (as curl)"),
    ("1", "unsupported protocol: a scheme other than http and https, or a redirect to one"),
    ("2", "usage error (unknown option, missing or malformed argument)"),
    ("3", "malformed URL, or a host that is not a valid name or address"),
    ("5", "the proxy's host name does not resolve"),
    ("6", "the host name does not resolve"),
    ("7", "cannot connect: refused, unreachable"),
    ("8", "not an HTTP response: not HTTP, a malformed or oversized head"),
    ("22", "with -f/--fail, a final status code of 400 or more"),
    ("28", "timeout (-m/--max-time)"),
    ("35", "the TLS handshake failed"),
    ("47", "too many redirects, or a redirect loop (-L)"),
    ("52", "the server closed the connection without sending anything"),
    ("56", "the proxy did not open the tunnel (CONNECT refused)"),
    ("60", "the server's certificate could not be verified (untrusted, wrong name)"),
    ("77", "the --cacert file cannot be read or holds no certificate"),
    ("130", "interrupted (Ctrl-C)"),
)
"""curl's exit statuses, those that a HEAD request can meet."""


def register(subcommands: Subcommands) -> None:
    """Add the ``head`` command."""
    p = add_command(
        subcommands,
        "head",
        _run_head,
        help="send an HTTP HEAD request and print the response head",
        description=DESCRIPTION,
        exits=HEAD_EXITS,
    )
    p.add_argument("target", metavar="URL|HOST:PORT")
    p.add_argument("-I", "--head", action="store_true", help="accepted for curl: always HEAD")
    p.add_argument(
        "-L", "--location", action="store_true", help="follow redirects, printing each hop"
    )
    p.add_argument(
        "--max-redirs",
        type=int,
        default=5,
        metavar="N",
        help="with -L, follow at most N redirects (default 5)",
    )
    p.add_argument(
        "-m",
        "--max-time",
        "--timeout",
        dest="timeout",
        type=seconds,
        default=10.0,
        metavar="S",
        help="one deadline for the whole request, in seconds (default 10)",
    )
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a request field, or replace the client's own ('NAME:' removes it, "
        "'NAME;' sends it empty); repeatable",
    )
    p.add_argument("-A", "--user-agent", metavar="TEXT", help="the User-Agent to send")
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR",
        help="connect to ADDR for HOST:PORT instead of looking HOST up; repeatable",
    )
    family = p.add_mutually_exclusive_group()
    family.add_argument(
        "-4", "--ipv4", dest="family", action="store_const", const=4, help="IPv4 addresses only"
    )
    family.add_argument(
        "-6", "--ipv6", dest="family", action="store_const", const=6, help="IPv6 addresses only"
    )
    p.add_argument(
        "-x",
        "--proxy",
        metavar="[http://]HOST[:PORT]",
        help="use this HTTP proxy (port 1080 by default), whatever the environment",
    )
    p.add_argument(
        "--noproxy",
        metavar="LIST",
        help="hosts, domains and CIDR ranges that go direct (comma-separated, '*')",
    )
    p.add_argument(
        "--http1.0",
        dest="http10",
        action="store_true",
        help="send the bare HTTP/1.0 request: 'HEAD / HTTP/1.0' and no fields",
    )
    p.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    p.add_argument(
        "--cacert",
        metavar="FILE",
        help="trust the certificate authorities in this PEM file instead of the system's",
    )
    p.add_argument(
        "-f", "--fail", action="store_true", help="exit 22 when the final status code is 400+"
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the connection, the request (>) and the response (<) on stderr",
    )
    p.add_argument("-s", "--silent", action="store_true", help="no error line (unless -S)")
    p.add_argument("-S", "--show-error", action="store_true", help="with -s, still say errors")
    p.add_argument("-o", "--output", metavar="FILE", help="write the head to FILE ('-': stdout)")
    p.add_argument(
        "-w", "--write-out", metavar="FORMAT", help="print FORMAT after the head (curl's variables)"
    )


def _trust_root(path: str) -> Any:
    from twisted.internet.ssl import Certificate, trustRootFromCertificates

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CommandError(f"--cacert {printable(path)}: {e.strerror}", 77, kind="tls") from None
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in data.split(marker) if b"-----BEGIN" in block]
    try:
        certificates = [Certificate.loadPEM(block) for block in blocks]
    except Exception:
        certificates = []
    if not certificates:
        raise CommandError(
            f"--cacert {printable(path)}: no PEM certificate could be read", 77, kind="tls"
        )
    return trustRootFromCertificates(certificates)


def _resolve_entries(entries: list[str]) -> dict[tuple[str, int], str]:
    """``--resolve HOST:PORT:ADDR`` (ADDR of IPv6 bracketed or not), as head() takes them."""
    from netproto.cli._command import usage_error
    from netproto.util import AddressError, canonical, parse_ip, parse_port

    table: dict[tuple[str, int], str] = {}
    for entry in entries:
        host, _, rest = entry.partition(":")
        port_text, _, address = rest.partition(":")
        try:
            port = parse_port(port_text)
            parsed = parse_ip(address.removeprefix("[").removesuffix("]"))
        except AddressError as e:
            raise usage_error(f"--resolve {printable(entry)}: {e} (HOST:PORT:ADDR)") from None
        if not host:
            raise usage_error(f"--resolve {printable(entry)}: no HOST (HOST:PORT:ADDR)")
        table[(host.lower(), port)] = canonical(parsed)
    return table


def _head_record(head: Any) -> dict[str, Any]:
    return {
        "http_version": head.version,
        "status": head.status,
        "reason": head.reason,
        "headers": [[name, value] for name, value in head.headers],
    }


def _head_text(head: Any) -> str:
    """A head as curl -I writes it: each line ending CRLF, then an empty line."""
    lines = [head.status_line] + [f"{name}: {value}" for name, value in head.headers]
    return "".join(printable(line) + "\r\n" for line in lines) + "\r\n"


def _timing_record(timing: Any) -> dict[str, Any]:
    return {
        "name_lookup_ms": ms(timing.name_lookup),
        "connect_ms": ms(timing.connect),
        "tls_ms": ms(timing.tls),
        "first_byte_ms": ms(timing.first_byte),
        "total_ms": ms(timing.total),
    }


def _verbose_request(peer: str, request: bytes) -> None:
    say(f"* Connected to {peer}", sys.stderr)
    for line in request.decode("latin-1").split("\r\n")[:-1]:
        say(f"> {printable(line)}", sys.stderr)


def _verbose_response(response: Any) -> None:
    for head in (*response.interim, response):
        for line in _head_text(head).split("\r\n")[:-1]:
            say(f"< {line}", sys.stderr)


def _failure(error: Exception, target: str) -> CommandError:
    """The CommandError of a failed request: curl's exit status, and the JSON kind."""
    from netproto.head import (
        HeadCertificateError,
        HeadProtocolError,
        HeadProxyError,
        HeadResolveError,
        HeadTimeoutError,
        HeadTLSError,
        RedirectError,
        TargetError,
    )

    message = printable(str(error))
    status, kind = 7, "refused" if "refused" in message else "unreachable"
    if isinstance(error, TargetError):
        message = f"{printable(target)}: {message}"
        status, kind = (1, "invalid") if "unsupported scheme" in message else (3, "invalid")
    elif isinstance(error, HeadResolveError):
        status, kind = (5 if error.proxy else 6), "not-found"
    elif isinstance(error, HeadProxyError):
        status, kind = 56, "refused"
    elif isinstance(error, HeadTimeoutError):
        status, kind = 28, "timeout"
    elif isinstance(error, HeadCertificateError):
        status, kind = 60, "certificate"
    elif isinstance(error, HeadTLSError):
        status, kind = 35, "tls"
    elif isinstance(error, HeadProtocolError):
        status, kind = (52 if error.empty else 8), "protocol"
    elif isinstance(error, RedirectError):
        status, kind = (1 if "cannot follow" in message else 47), "redirect"
    elif "not a valid IPv" in message or "not a host name" in message or "a host name" in message:
        status, kind = 3, "invalid"
    return CommandError(message, status, kind=kind)


async def _run_head(reactor: Any, args: argparse.Namespace) -> int:
    from netproto.head import HeadError, TargetError, head

    if args.write_out is not None:
        check_format(args.write_out)
    if args.max_redirs < 0:
        from netproto.cli._command import usage_error

        raise usage_error(f"--max-redirs {args.max_redirs}: N must be 0 or more")
    headers = list(args.header)
    if args.user_agent is not None:
        headers.append(f"User-Agent: {args.user_agent}")
    environ = dict(os.environ)
    if args.noproxy is not None:
        environ["no_proxy"] = args.noproxy
        environ.pop("NO_PROXY", None)
    out: TextIO = sys.stdout
    if args.output not in (None, "-"):
        try:
            out = open(args.output, "w", newline="")
        except OSError as e:
            raise CommandError(f"-o {printable(args.output)}: {e.strerror}", 23) from None
    responses: list[Any] = []

    def on_response(response: Any) -> None:
        responses.append(response)
        if args.verbose:
            _verbose_response(response)
        if args.json:
            emit_json(
                {
                    "url": response.url,
                    "peer": response.peer,
                    **_head_record(response),
                    "interim": [_head_record(h) for h in response.interim],
                    "redirect": response.redirect,
                    "timing": _timing_record(response.timing),
                }
            )
            return
        out.write("".join(_head_text(h) for h in (*response.interim, response)))
        out.flush()

    try:
        trust = _trust_root(args.cacert) if args.cacert else None
        try:
            response = await head(
                reactor,
                args.target,
                timeout=args.timeout,
                follow=args.location,
                max_redirects=args.max_redirs,
                http10=args.http10,
                insecure=args.insecure,
                trust_root=trust,
                on_response=on_response,
                headers=headers,
                resolve=_resolve_entries(args.resolve),
                family=args.family,
                proxy=args.proxy,
                proxy_env=None if args.proxy else environ,
                on_request=_verbose_request if args.verbose else None,
            )
        except (TargetError, HeadError) as e:
            raise _failure(e, args.target) from None
        if args.fail and response.status >= 400:
            raise CommandError(
                f"the server answered {printable(response.status_line)}",
                22,
                kind="http",
                context={"status": response.status},
            )
    except CommandError as e:
        if args.write_out is not None:
            write_out(args.write_out, responses[-1] if responses else None, len(responses), e)
        if args.silent and not args.show_error:
            e.silent = True
        if not e.context.get("url"):
            e.context["url"] = args.target
        raise
    finally:
        if out is not sys.stdout:
            out.close()
    if args.write_out is not None:
        write_out(args.write_out, response, len(responses), None)
    return EXIT_OK
