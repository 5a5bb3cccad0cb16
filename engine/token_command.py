"""`availability token new`: a fresh bearer token, and the `[[tokens]]` table for the file."""

from __future__ import annotations

import argparse

from gateway.tokens import NAME_BYTES_MAX, ROLES, new_token, toml_table


def add_parser(commands, env) -> None:
    parser = commands.add_parser("token", help="make bearer tokens for serve --auth-tokens")
    actions = parser.add_subparsers(dest="action", required=True)
    new = actions.add_parser(
        "new", help="print a new token, and the [[tokens]] table to add to the tokens file")
    new.add_argument("--role", required=True, choices=ROLES)
    new.add_argument("--channel", default="", help="the channel a channel token acts for")
    new.add_argument("--source", default="", help="the source a source token posts for")
    new.add_argument("--name", default="",
                     help="the token's name in logs and refusals (default: role and scope)")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Print the token (once: only its SHA-256 goes in the file) and its table."""
    for role, option in (("channel", "channel"), ("source", "source")):
        given = getattr(args, option)
        if args.role == role and not given:
            parser.error(f"token new: --role {role} needs --{option}")
        if args.role != role and given:
            parser.error(f"token new: --{option} is only for --role {role}")
    name = args.name or "-".join(part for part in (args.role, args.channel, args.source) if part)
    for option, value in (("--name", name), ("--channel", args.channel),
                          ("--source", args.source)):
        if value and (not value.isprintable() or len(value.encode()) > NAME_BYTES_MAX):
            parser.error(f"token new: {option} must be at most {NAME_BYTES_MAX} bytes of "
                         "printable text")
    token = new_token()
    print(f"token: {token}")
    print("Give the token to its caller (gRPC metadata `authorization: Bearer TOKEN`); it is "
          "not shown again.\nAdd this table to the --auth-tokens file:\n")
    print(toml_table(name, args.role, token, channel=args.channel, source=args.source))
    return 0
