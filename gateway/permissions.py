"""Which role may make which AvailabilityService call, and with what in the request.

Default deny: a method missing from a role's table (a new RPC, an admin one) is the
admin's alone. A check reads the decoded request and returns why it is refused, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from inventory.v1 import availability_pb2 as pb

from engine.channels import DEFAULT as DEFAULT_CHANNEL
from gateway.tokens import Identity

SERVICE_PREFIX = "/" + pb.DESCRIPTOR.services_by_name["AvailabilityService"].full_name + "/"
# Reachable without a token: load balancers probe health, and reflection only describes
# the public contract.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")
Check = Callable[[Identity, object], str | None]


def _own_channel(identity: Identity, request) -> str | None:
    channel = request.channel or DEFAULT_CHANNEL
    if channel != identity.channel:
        return (f"channel: token {identity.name!r} acts for channel {identity.channel!r} "
                f"only, not {channel!r}")
    return None


def _own_channel_unexplained(identity: Identity, request) -> str | None:
    return _own_channel(identity, request) or _no_explain(identity, request)


def _no_explain(identity: Identity, request) -> str | None:
    # An explanation lists other callers' reservation ids, order refs and sources.
    if request.explain:
        return f"explain: needs an admin token, not role {identity.role!r}"
    return None


def _own_source(identity: Identity, request) -> str | None:
    for index, movement in enumerate(request.movements):
        if movement.source != identity.source:
            return (f"movements[{index}].source: token {identity.name!r} posts movements of "
                    f"source {identity.source!r} only, not {movement.source!r}")
    return None


def _allowed(identity: Identity, request) -> None:
    return None


# role -> {method: the check of its request}; admin may call anything, unchecked.
RULES: MappingProxyType[str, MappingProxyType[str, Check]] = MappingProxyType({
    "checkout": MappingProxyType({
        "Reserve": _allowed, "Commit": _allowed, "Release": _allowed,
        "GetAvailability": _no_explain,
        # Batch carries only reserve, commit and release: the checkout client's coalescing.
        "Batch": _allowed,
    }),
    # FenceChannel: a channel's publisher fences what it shows that channel, and no other's.
    "channel": MappingProxyType({"GetAvailability": _own_channel_unexplained,
                                 "WatchAvailability": _own_channel,
                                 "FenceChannel": _own_channel}),
    "source": MappingProxyType({"ApplyMovements": _own_source}),
    "admin": MappingProxyType({}),
})


def check_of(role: str, method: str) -> Check | None:
    """The check a `role`'s call of `method` (a full path) must pass; None when refused outright.

    The admin's calls need no check (`_allowed`).
    """
    if role == "admin":
        return _allowed
    return RULES[role].get(method.removeprefix(SERVICE_PREFIX)) \
        if method.startswith(SERVICE_PREFIX) else None


def unchecked(check: Check) -> bool:
    """True when `check` lets every request through, so the handler needs no wrapping."""
    return check is _allowed
