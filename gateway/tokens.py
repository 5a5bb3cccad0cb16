"""Bearer tokens and who they stand for: the `--auth-tokens` TOML file, and new tokens.

The file holds only each token's SHA-256, so reading it never reveals a token. A call's
token is hashed and looked up in a dict of digests, then compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

ROLES = ("checkout", "channel", "source", "admin")
# The role that names what it acts for, and the key that names it.
SCOPE_KEY = MappingProxyType({"channel": "channel", "source": "source"})
TOKEN_PREFIX = "avl_"
NAME_BYTES_MAX = 128
_KEYS = frozenset({"name", "role", "sha256", "channel", "source", "calls_per_s", "burst_calls"})


class TokenFileError(ValueError):
    """A tokens file that cannot be used; the message names the file, table and key."""


@dataclass(frozen=True)
class Identity:
    """Who a token stands for: a name for logs, a role, and the channel or source it acts for."""

    name: str
    role: str
    digest: bytes
    channel: str = ""
    source: str = ""
    # None: the gateway's default rate limit (TransportLimits.token_calls_per_s).
    calls_per_s: float | None = None
    burst_calls: int | None = None


class Tokens:
    """The known tokens, by the SHA-256 of each."""

    def __init__(self, identities: Iterable[Identity]) -> None:
        by_digest: dict[bytes, Identity] = {}
        for identity in identities:
            if identity.digest in by_digest:
                raise TokenFileError(f"tokens {by_digest[identity.digest].name!r} and "
                                     f"{identity.name!r} have the same sha256")
            by_digest[identity.digest] = identity
        self._by_digest: Mapping[bytes, Identity] = MappingProxyType(by_digest)

    @property
    def identities(self) -> tuple[Identity, ...]:
        return tuple(self._by_digest.values())

    def identify(self, token: str) -> Identity | None:
        """The identity of `token`, None for an unknown one."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        identity = self._by_digest.get(digest)
        # The lookup is keyed by a digest the caller cannot steer without a preimage; the
        # constant-time comparison keeps even that lookup from being the only check.
        if identity is None or not hmac.compare_digest(identity.digest, digest):
            return None
        return identity


def load_tokens(path: str | Path) -> Tokens:
    """The tokens of a TOML file of `[[tokens]]` tables; TokenFileError names what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TokenFileError(f"{path}: cannot read: {error}") from None
    return parse_tokens(text, str(path))


def parse_tokens(text: str, origin: str = "tokens file") -> Tokens:
    """The tokens of a tokens file's text; `origin` prefixes every error."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TokenFileError(f"{origin}: not TOML: {error}") from None
    unknown = sorted(set(document) - {"tokens"})
    if unknown:
        raise TokenFileError(f"{origin}: unknown top-level key {unknown[0]!r} "
                             "(only [[tokens]] tables)")
    tables = document.get("tokens")
    if not isinstance(tables, list) or not tables:
        raise TokenFileError(f"{origin}: tokens: at least one [[tokens]] table is required")
    identities, names = [], set()
    for index, table in enumerate(tables):
        where = f"{origin}: tokens[{index}]"
        identity = _identity(where, table)
        if identity.name in names:
            raise TokenFileError(f"{where}.name: {identity.name!r} is used twice")
        names.add(identity.name)
        identities.append(identity)
    try:
        return Tokens(identities)
    except TokenFileError as error:
        raise TokenFileError(f"{origin}: {error}") from None


def _identity(where: str, table: object) -> Identity:
    if not isinstance(table, dict):
        raise TokenFileError(f"{where}: must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise TokenFileError(f"{where}.{unknown[0]}: unknown key "
                             f"(known: {', '.join(sorted(_KEYS))})")
    name = _text(where, table, "name")
    role = _text(where, table, "role")
    if role not in ROLES:
        raise TokenFileError(f"{where}.role: must be one of {', '.join(ROLES)}")
    digest_hex = _text(where, table, "sha256").lower()
    if len(digest_hex) != 64 or any(c not in "0123456789abcdef" for c in digest_hex):
        raise TokenFileError(f"{where}.sha256: must be 64 hex digits (the token's SHA-256)")
    scope = {}
    for scoped_role, key in SCOPE_KEY.items():
        if role == scoped_role:
            scope[key] = _text(where, table, key)
        elif key in table:
            raise TokenFileError(f"{where}.{key}: only a {scoped_role} token names a {key}")
    calls_per_s = table.get("calls_per_s")
    if calls_per_s is not None and (isinstance(calls_per_s, bool)
                                    or not isinstance(calls_per_s, int | float)
                                    or not 0 <= calls_per_s <= 1e9):
        raise TokenFileError(f"{where}.calls_per_s: must be a number from 0 (no limit) to 1e9")
    burst = table.get("burst_calls")
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int)
                              or not 1 <= burst <= 10**9):
        raise TokenFileError(f"{where}.burst_calls: must be an integer from 1 to 1e9")
    return Identity(name=name, role=role, digest=bytes.fromhex(digest_hex),
                    calls_per_s=None if calls_per_s is None else float(calls_per_s),
                    burst_calls=burst, **scope)


def _text(where: str, table: dict, key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value or not value.isprintable() \
            or len(value.encode("utf-8", "surrogatepass")) > NAME_BYTES_MAX:
        raise TokenFileError(f"{where}.{key}: must be 1 to {NAME_BYTES_MAX} bytes of "
                             "printable text")
    return value


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe, with a prefix that secret scanners can find."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest_of(token: str) -> str:
    """The hex SHA-256 the tokens file stores for `token`."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def toml_table(name: str, role: str, token: str, channel: str = "", source: str = "") -> str:
    """The `[[tokens]]` table to add to the tokens file for `token`."""
    lines = ["[[tokens]]", f"name = {_quoted(name)}", f"role = {_quoted(role)}"]
    if channel:
        lines.append(f"channel = {_quoted(channel)}")
    if source:
        lines.append(f"source = {_quoted(source)}")
    lines.append(f'sha256 = "{digest_of(token)}"')
    return "\n".join(lines)


def identity_for(token: str, name: str, role: str, channel: str = "",
                 source: str = "") -> Identity:
    """The identity a token minted in memory stands for (the demo's tokens)."""
    return Identity(name=name, role=role, digest=bytes.fromhex(digest_of(token)),
                    channel=channel, source=source)


def _quoted(value: str) -> str:
    # TOML basic strings share JSON's escapes for quotes, backslashes and control characters.
    return json.dumps(value, ensure_ascii=False)
