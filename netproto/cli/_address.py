"""
``netproto ip``, ``netproto mask`` and ``netproto defaultmask``: addresses
and masks as Go's ``net`` package reads them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netproto.cli._command import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subcommands, add_command
from netproto.cli._output import CommandError, emit_json, printable
from netproto.util import (
    Address,
    AddressError,
    Mask,
    MaskError,
    canonical,
    default_mask,
    host,
    ipv4_mapped,
    network,
    parse_ip,
)


def register(subcommands: Subcommands) -> None:
    """Add the address and mask commands."""
    ip = add_command(
        subcommands,
        "ip",
        _run_ip,
        help="check IP addresses and print their canonical form",
        description="Say for each ADDR whether it is a valid IPv4 or IPv6 address, and give "
        "its canonical (RFC 5952) form.\nExit status 1 if any ADDR is invalid.",
    )
    ip.add_argument("addresses", nargs="+", metavar="ADDR")

    mask = add_command(
        subcommands,
        "mask",
        _run_mask,
        help="apply a CIDR mask to an address",
        description="Print the mask of ONES leading one bits out of BITS (32 or 128), in hex, "
        "and the network and host parts of ADDR under it.\n"
        "ADDR/ONES and ADDR/MASK (ADDR/255.255.254.0) are accepted too; BITS defaults "
        "to the width of ADDR.",
    )
    mask.add_argument("address", metavar="ADDR")
    mask.add_argument("ones", nargs="?", type=int, metavar="ONES")
    mask.add_argument("bits", nargs="?", type=int, metavar="BITS")

    default = add_command(
        subcommands,
        "defaultmask",
        _run_defaultmask,
        help="the classful default mask of an IPv4 address",
        description="Print the classful (A, B, C) default mask of an IPv4 address and its "
        "network.\nClass D and E addresses and IPv6 have no default mask (exit status 1).",
    )
    default.add_argument("address", metavar="ADDR")


def _address_record(text: str) -> dict[str, Any]:
    try:
        address = parse_ip(text)
    except AddressError as e:
        return {
            "input": text,
            "valid": False,
            "address": None,
            "version": None,
            "ipv4_mapped": None,
            "error": {"kind": "invalid", "message": str(e)},
        }
    mapped = ipv4_mapped(address)
    return {
        "input": text,
        "valid": True,
        "address": canonical(address),
        "version": address.version,
        "ipv4_mapped": str(mapped) if mapped else None,
        "error": None,
    }


async def _run_ip(reactor: object, args: argparse.Namespace) -> int:
    status = EXIT_OK
    for text in args.addresses:
        record = _address_record(text)
        if not record["valid"]:
            status = EXIT_FAILED
        if args.json:
            emit_json(record)
        elif record["valid"]:
            extra = f", IPv4-mapped {record['ipv4_mapped']}" if record["ipv4_mapped"] else ""
            print(f"{printable(text)} -> {record['address']} (IPv{record['version']}{extra})")
        else:
            print(f"netproto ip: {printable(text)}: {record['error']['message']}", file=sys.stderr)
    return status


def _parse(text: str) -> Address:
    try:
        return parse_ip(text)
    except AddressError as e:
        raise CommandError(f"{printable(text)}: {e}", kind="invalid") from None


def _mask_of(address: Address, text: str) -> Mask:
    """The mask written after ``/``: a prefix length or a mask address."""
    try:
        if text.isascii() and text.isdigit():
            return Mask.cidr(int(text), address.max_prefixlen)
        return Mask.from_address(parse_ip(text))
    except (AddressError, MaskError) as e:
        raise CommandError(f"mask {printable(text)}: {e}", kind="invalid") from None


def _mask_record(address: Address, mask: Mask) -> dict[str, Any]:
    try:
        net, part = network(address, mask), host(address, mask)
    except MaskError as e:
        raise CommandError(str(e), kind="invalid") from None
    ones, bits = mask.size()
    return {
        "address": canonical(address),
        "ones": ones,
        "bits": bits,
        "mask": mask.hex(),
        "netmask": str(mask.as_address()),
        "network": canonical(net),
        "host": canonical(part),
        "prefix": f"{canonical(net)}/{ones}" if bits else None,
    }


def _print_mask(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(record)
        return
    canonical_mask = record["bits"] != 0
    lines = [
        ("address", record["address"]),
        ("mask", f"{record['mask']} ({record['netmask']})"),
        ("ones", f"{record['ones']}" + ("" if canonical_mask else " (not a canonical mask)")),
        ("bits", record["bits"]),
        ("network", record["network"]),
        ("host", record["host"]),
    ]
    if canonical_mask:
        lines.append(("prefix", record["prefix"]))
    for key, value in lines:
        print(f"{key + ':':9}{value}")


async def _run_mask(reactor: object, args: argparse.Namespace) -> int:
    text: str = args.address
    if "/" in text:
        if args.ones is not None:
            raise CommandError("give ADDR/ONES or ADDR ONES BITS, not both", EXIT_USAGE)
        address_text, _, mask_text = text.partition("/")
        address = _parse(address_text)
        mask = _mask_of(address, mask_text)
    else:
        if args.ones is None:
            raise CommandError("missing ONES (or write ADDR/ONES)", EXIT_USAGE)
        address = _parse(text)
        try:
            bits = address.max_prefixlen if args.bits is None else args.bits
            mask = Mask.cidr(args.ones, bits)
        except MaskError as e:
            raise CommandError(str(e), kind="invalid") from None
    _print_mask(_mask_record(address, mask), args.json)
    return EXIT_OK


async def _run_defaultmask(reactor: object, args: argparse.Namespace) -> int:
    address = _parse(args.address)
    try:
        mask = default_mask(address)
    except MaskError as e:
        raise CommandError(str(e), kind="invalid") from None
    _print_mask(_mask_record(address, mask), args.json)
    return EXIT_OK
