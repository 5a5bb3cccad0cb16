"""`availability explain SKU LOCATION`: how a figure comes about, asked of a running engine."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys

from google.protobuf import json_format

from engine.security_options import add_client_options


def add_parser(commands, env) -> None:
    parser = commands.add_parser(
        "explain", help="break a SKU-location's available-to-sell down into its terms and "
                        "the latest changes behind it")
    parser.add_argument("sku")
    parser.add_argument("location")
    parser.add_argument("--channel", default="", help="the channel whose view to explain")
    parser.add_argument("--address", default=env("ADDRESS", "127.0.0.1:50051"),
                        help="the gateway (default 127.0.0.1:50051)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_client_options(parser, env)


def run(args: argparse.Namespace, connection: dict | None = None) -> int:
    """`connection`: the client's `tls` and `token` (explaining needs an admin token)."""
    from gateway.client import AvailabilityClient, AvailabilityError

    async def ask():
        async with AvailabilityClient(args.address, **(connection or {})) as client:
            return (await client.get_availability([(args.sku, args.location)],
                                                  channel=args.channel, explain=True,
                                                  timeout=10))[0]

    try:
        item = asyncio.run(ask())
    except AvailabilityError as error:
        print(f"availability explain: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(json_format.MessageToDict(item, preserving_proto_field_name=True)))
    else:
        print(render(item))
    return 0 if item.known else 1


def render(item) -> str:
    """The explanation as a terminal reads it: a sum, then the changes behind it."""
    if not item.known:
        return f"{item.sku} at {item.location}: the engine has never seen this SKU-location"
    explanation = item.explanation
    lines = [f"{item.sku} at {item.location}"]
    lines += [f"  {'' if n == 0 else ('-' if t.quantity < 0 else '+')}"
              f" {t.name:<16} {abs(t.quantity):>10}" for n, t in enumerate(explanation.terms)]
    lines.append(f"  = {'available_to_sell':<16} {item.available_to_sell:>10}")
    if explanation.earliest_hold_expires_at_unix_ms:
        lines.append(f"  sold out; the earliest hold lapses at "
                     f"{_when(explanation.earliest_hold_expires_at_unix_ms)}")
    if explanation.recent:
        lines.append("  latest changes, newest first:")
        lines += [f"    seq {e.seq:<8} {_when(e.at_unix_ms)}  {e.what:<22} {e.quantity:>6}  "
                  f"{e.key}  {e.source or '-'}  {e.correlation_id or '-'}"
                  for e in explanation.recent]
    return "\n".join(lines)


def _when(unix_ms: int) -> str:
    return datetime.datetime.fromtimestamp(unix_ms / 1000, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
