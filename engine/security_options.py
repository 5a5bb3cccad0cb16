"""The security and limit flags: of `serve`/`gateway` (TLS, tokens, protected mode,
transport limits) and of the commands that connect to a gateway (TLS, a token)."""

from __future__ import annotations

import argparse
import os

from engine.config import TransportLimits

TOKEN_VARIABLE = "AVAILABILITY_TOKEN"


def add_server_options(parser: argparse.ArgumentParser, env) -> None:
    """--tls-cert/--tls-key/--tls-client-ca, --auth-tokens, --insecure and the limits."""
    group = parser.add_argument_group("security and limits")
    group.add_argument("--tls-cert", default=env("TLS_CERT", None),
                       help="serve TLS with this PEM certificate chain (with --tls-key)")
    group.add_argument("--tls-key", default=env("TLS_KEY", None),
                       help="the PEM private key of --tls-cert")
    group.add_argument("--tls-client-ca", default=env("TLS_CLIENT_CA", None),
                       help="mutual TLS: clients must present a certificate this PEM CA signed")
    group.add_argument("--auth-tokens", default=env("AUTH_TOKENS", None),
                       help="TOML file of [[tokens]] (name, role, sha256, channel or source); "
                            "every call then needs `authorization: Bearer TOKEN`")
    group.add_argument("--insecure", action="store_true",
                       default=env("INSECURE", "") in ("1", "true", "yes"),
                       help="without --auth-tokens, serve a non-loopback --host anyway "
                            "(protected mode refuses it otherwise)")
    limits = TransportLimits()
    group.add_argument("--max-message-bytes", type=int,
                       default=env("MAX_MESSAGE_BYTES", limits.receive_message_bytes_max),
                       help="largest request accepted (default "
                            f"{limits.receive_message_bytes_max})")
    group.add_argument("--max-concurrent-streams", type=int,
                       default=env("MAX_CONCURRENT_STREAMS",
                                   limits.concurrent_streams_per_connection_max),
                       help="calls in flight per connection (default "
                            f"{limits.concurrent_streams_per_connection_max})")
    group.add_argument("--token-calls-per-s", type=float,
                       default=env("TOKEN_CALLS_PER_S", limits.token_calls_per_s),
                       help="each token's rate limit, 0 for none (default "
                            f"{limits.token_calls_per_s:g}; a token may set its own)")
    group.add_argument("--token-burst-calls", type=int,
                       default=env("TOKEN_BURST_CALLS", limits.token_burst_calls),
                       help=f"calls a token may make at once (default {limits.token_burst_calls})")


def transport_limits(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TransportLimits:
    """The limits the flags ask for; a bad value ends with a usage error naming the flag."""
    if not 1024 <= args.max_message_bytes <= 2**31 - 1:
        parser.error("--max-message-bytes must be between 1024 and 2147483647")
    if not 1 <= args.max_concurrent_streams <= 2**31 - 1:
        parser.error("--max-concurrent-streams must be at least 1")
    if not 0 <= args.token_calls_per_s <= 1e9 or args.token_burst_calls < 1:
        parser.error("--token-calls-per-s must be between 0 and 1e9 and "
                     "--token-burst-calls at least 1")
    return TransportLimits(receive_message_bytes_max=args.max_message_bytes,
                           concurrent_streams_per_connection_max=args.max_concurrent_streams,
                           token_calls_per_s=args.token_calls_per_s,
                           token_burst_calls=args.token_burst_calls)


def server_security(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The SecurityOptions of the flags, its files checked now (a usage error names the flag)."""
    from gateway.security import SecurityConfigError, SecurityOptions

    options = SecurityOptions(auth_tokens=args.auth_tokens, tls_cert=args.tls_cert,
                              tls_key=args.tls_key, tls_client_ca=args.tls_client_ca,
                              insecure=args.insecure)
    try:
        options.load()
    except SecurityConfigError as error:
        parser.error(str(error))
    return options


def add_client_options(parser: argparse.ArgumentParser, env) -> None:
    """--tls, --tls-ca, --tls-cert/--tls-key, --tls-server-name and --token."""
    group = parser.add_argument_group("connection security")
    group.add_argument("--tls", action="store_true",
                       help="connect with TLS, trusting the system's CAs (implied by --tls-ca)")
    group.add_argument("--tls-ca", default=env("TLS_CA", None),
                       help="connect with TLS, trusting this PEM CA")
    group.add_argument("--tls-cert", default=env("TLS_CLIENT_CERT", None),
                       help="mutual TLS: this client's PEM certificate (with --tls-key)")
    group.add_argument("--tls-key", default=env("TLS_CLIENT_KEY", None),
                       help="mutual TLS: the PEM key of --tls-cert")
    group.add_argument("--tls-server-name", default=env("TLS_SERVER_NAME", None),
                       help="the name the server's certificate must carry, when the address "
                            "differs")
    group.add_argument("--token", default=None,
                       help=f"bearer token (better: the {TOKEN_VARIABLE} variable, which "
                            "other users cannot read from the process list)")


def client_connection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """AvailabilityClient's `tls` and `token` arguments from the flags."""
    from gateway.tls import ClientTls, TlsConfigError

    tls = None
    if args.tls or args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name:
        try:
            tls = ClientTls.from_files(args.tls_ca, args.tls_cert, args.tls_key,
                                       args.tls_server_name)
        except TlsConfigError as error:
            parser.error(str(error))
    return {"tls": tls, "token": args.token or os.environ.get(TOKEN_VARIABLE) or None}
