"""The `availability` command line."""

from __future__ import annotations

import argparse
import sys

from engine import demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="availability", description=(
        "Authoritative available-to-sell for every SKU-location."))
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="load a sample catalogue, play a short retail story, print availability")
    demo_parser.add_argument("--skus", type=int, default=10_000,
                             help="SKUs in the sample catalogue (default 10000)")
    demo_parser.add_argument("--partitions", type=int, default=4,
                             help="partitions the SKUs are spread over (default 4)")
    args = parser.parse_args(argv)
    if args.skus < 2 or args.partitions < 1:
        parser.error("--skus must be at least 2 and --partitions at least 1")
    demo.run(args.skus, args.partitions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
