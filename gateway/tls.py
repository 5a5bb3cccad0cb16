"""TLS and mutual TLS credentials for the gateway and its clients, from PEM files.

Files are read and checked when the options are made, so a wrong path or a key that
does not match its certificate stops `serve` at once with the flag's name, not at the
first handshake.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc


class TlsConfigError(ValueError):
    """TLS options that cannot be used; the message names the option."""


@dataclass(frozen=True)
class ServerTls:
    """The gateway's certificate chain and key, and the CA its clients' certificates must
    chain to (mutual TLS) when given."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: str, key: str, client_ca: str | None = None) -> ServerTls:
        chain = read_pem(cert, "--tls-cert", "CERTIFICATE")
        private_key = read_pem(key, "--tls-key", "PRIVATE KEY")
        _check_pair(cert, key)
        ca = read_pem(client_ca, "--tls-client-ca", "CERTIFICATE") if client_ca else None
        return cls(chain, private_key, ca)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None)


@dataclass(frozen=True)
class ClientTls:
    """What a client trusts (None: the system's CAs), what it presents for mutual TLS,
    and the name it expects in the server's certificate when it differs from the address."""

    ca: bytes | None = None
    cert_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_files(cls, ca: str | None = None, cert: str | None = None, key: str | None = None,
                   server_name: str | None = None) -> ClientTls:
        if bool(cert) != bool(key):
            raise TlsConfigError("--tls-cert and --tls-key go together (a client certificate "
                                 "and its key, for mutual TLS)")
        if cert and key:
            _check_pair(cert, key)
        return cls(ca=read_pem(ca, "--tls-ca", "CERTIFICATE") if ca else None,
                   cert_chain=read_pem(cert, "--tls-cert", "CERTIFICATE") if cert else None,
                   private_key=read_pem(key, "--tls-key", "PRIVATE KEY") if key else None,
                   server_name=server_name or None)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca,
                                            private_key=self.private_key,
                                            certificate_chain=self.cert_chain)

    def channel_options(self) -> list[tuple[str, str]]:
        return ([("grpc.ssl_target_name_override", self.server_name)]
                if self.server_name else [])


def read_pem(path: str, option: str, kind: str) -> bytes:
    """The PEM file's bytes; TlsConfigError naming `option` if it is unreadable or not PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TlsConfigError(f"{option}: cannot read {path}: {error.strerror}") from None
    # "PRIVATE KEY" also matches "RSA PRIVATE KEY" and "EC PRIVATE KEY" headers.
    if b"-----BEGIN " not in data or kind.encode() not in data:
        raise TlsConfigError(f"{option}: {path} holds no PEM {kind}")
    return data


def _check_pair(cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise TlsConfigError(f"--tls-key: {key} is not the key of --tls-cert {cert} "
                             f"({error.reason or error})") from None
