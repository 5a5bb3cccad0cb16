"""What a gateway enforces (tokens, TLS) and protected mode: no tokens, no public address.

As Redis's protected mode does: a gateway without a tokens file answers anyone who can
reach it, so it may listen only on a loopback address unless the operator says
`--insecure`, and then it says so loudly.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass

from engine.config import TransportLimits
from gateway.guard import GuardInterceptor
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import RateLimiter
from gateway.tls import ServerTls, TlsConfigError
from gateway.tokens import TokenFileError, Tokens, load_tokens

log = logging.getLogger(__name__)


class SecurityConfigError(ValueError):
    """Security options that cannot be served with; the message names the option."""


@dataclass(frozen=True)
class Security:
    """What one gateway enforces: tokens (None: no authentication) and TLS (None: plaintext)."""

    tokens: Tokens | None = None
    tls: ServerTls | None = None

    def interceptor(self, limits: TransportLimits, metrics: GatewayMetrics | None = None,
                    clock=None) -> GuardInterceptor:
        limiter = None
        if self.tokens is not None:
            limiter = RateLimiter(self.tokens.identities, limits,
                                  **({"clock": clock} if clock is not None else {}))
        return GuardInterceptor(self.tokens, limiter, metrics)


@dataclass(frozen=True)
class SecurityOptions:
    """The security flags of `serve` and `gateway`, as given (file paths), for children too."""

    auth_tokens: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    insecure: bool = False

    def load(self) -> Security:
        """Read and check the files; SecurityConfigError names the option that is wrong."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SecurityConfigError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise SecurityConfigError("--tls-client-ca (mutual TLS) needs --tls-cert and "
                                      "--tls-key")
        try:
            tokens = load_tokens(self.auth_tokens) if self.auth_tokens else None
        except TokenFileError as error:
            raise SecurityConfigError(f"--auth-tokens: {error}") from None
        try:
            tls = (ServerTls.from_files(self.tls_cert, self.tls_key, self.tls_client_ca)
                   if self.tls_cert else None)
        except TlsConfigError as error:
            raise SecurityConfigError(str(error)) from None
        return Security(tokens, tls)

    def flags(self) -> list[str]:
        """The same options as command-line flags, for an extra gateway process."""
        given = (("--auth-tokens", self.auth_tokens), ("--tls-cert", self.tls_cert),
                 ("--tls-key", self.tls_key), ("--tls-client-ca", self.tls_client_ca))
        return [*(part for flag, value in given if value for part in (flag, value)),
                *(["--insecure"] if self.insecure else [])]


def secured(options: SecurityOptions, host: str) -> Security:
    """The loaded security of a gateway about to listen on `host`, after protected mode's
    check; SecurityConfigError when it must not start."""
    security = options.load()
    if security.tokens is None and not is_loopback(host):
        if not options.insecure:
            raise SecurityConfigError(
                f"protected mode: without --auth-tokens the gateway answers anyone, so it "
                f"listens only on a loopback address, not {host!r}. Give --auth-tokens FILE "
                f"(see `availability token new`), or --insecure to serve {host!r} "
                f"unauthenticated anyway")
        log.warning("*** INSECURE: serving %s WITHOUT AUTHENTICATION (--insecure). Anyone who "
                    "can reach this address can hold, release and move all stock. Give "
                    "--auth-tokens FILE. ***", host)
    return security


def is_loopback(host: str) -> bool:
    """True when every address `host` stands for is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:  # a name: every address it resolves to must be loopback ("localhost")
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback
                               for info in infos)
