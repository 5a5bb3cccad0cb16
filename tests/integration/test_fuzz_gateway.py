"""Hostile bytes at a running gateway: random and mutated protobuf on raw method paths.

After every call the gateway still answers, a refused call changed no quantity, and no
answer carries a stack trace or an UNKNOWN/INTERNAL status. CI runs the `ci` hypothesis
profile; `pytest --hypothesis-profile long tests/integration/test_fuzz_gateway.py` runs
25 times as many examples.
"""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inventory.v1 import availability_pb2 as pb

from tests.integration.secured_gateway import (
    RPC_TIMEOUT_S,
    SERVICE,
    bearer,
    movement,
    raw_method,
    role_secured_gateway,
)

SKUS = tuple(f"fz-{n}" for n in range(4))
LOCATIONS = ("dc-1", "dc-2")
POOL = [pb.ItemRef(sku=sku, location=location) for sku in SKUS for location in LOCATIONS]
# A refusal the contract names; UNKNOWN and INTERNAL mean a handler raised: a bug.
EXPECTED_CODES = {grpc.StatusCode[name] for name in (
    "OK", "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND",
    "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNIMPLEMENTED", "RESOURCE_EXHAUSTED",
    "ABORTED")}
TRACE_MARKERS = ("Traceback", 'File "', ".py\", line", "Exception", "Error parsing")


@pytest.fixture(scope="module")
def target():
    """A gateway with a token per role and stock of every pooled SKU-location."""
    with role_secured_gateway() as (running, channel):
        receipts = [movement(f"stock-{item.sku}-{item.location}", item.sku, 50,
                             location=item.location, source="wms") for item in POOL]
        raw_method(channel, "ApplyMovements")(
            pb.ApplyMovementsRequest(movements=receipts).SerializeToString(),
            metadata=bearer(running.tokens["admin"]), timeout=RPC_TIMEOUT_S)
        yield running, channel


def _quantities(channel, admin: str) -> list[tuple]:
    answer = pb.GetAvailabilityResponse.FromString(raw_method(channel, "GetAvailability")(
        pb.GetAvailabilityRequest(items=POOL).SerializeToString(), metadata=bearer(admin),
        timeout=RPC_TIMEOUT_S))
    return [(i.on_hand, i.reserved, i.committed, i.safety_stock, i.damaged,
             i.quality_control, i.incoming) for i in answer.items]


# ---- strategies: messages of the service's request types, then their bytes mutated ------

_text = st.one_of(st.sampled_from(["", "default", "pos", "wms", "r0-none", "dc-1", *SKUS]),
                  st.text(max_size=140))
_quantity = st.one_of(st.integers(-3, 60), st.integers(-2**63, 2**63 - 1))
_lines = st.lists(st.builds(pb.ReserveLine, sku=st.sampled_from(SKUS),
                            location=st.sampled_from(LOCATIONS), quantity=_quantity),
                  max_size=4)
_movement = st.builds(pb.Movement, event_id=_text, source=_text,
                      type=st.integers(0, 16), sku=st.sampled_from(SKUS),
                      location=st.sampled_from(LOCATIONS), quantity=_quantity,
                      occurred_at_unix_ms=st.integers(0, 2**63 - 1),
                      destination_location=st.sampled_from(["", *LOCATIONS]))
_reserve = st.builds(pb.ReserveRequest, idempotency_key=_text, channel=_text, lines=_lines,
                     ttl_seconds=st.integers(0, 2**32 - 1), allow_partial=st.booleans())
_commit = st.builds(pb.CommitRequest, reservation_id=_text, idempotency_key=_text)
_release = st.builds(pb.ReleaseRequest, reservation_id=_text, idempotency_key=_text)
_REQUESTS = {
    "Reserve": _reserve, "Commit": _commit, "Release": _release,
    "GetAvailability": st.builds(pb.GetAvailabilityRequest, channel=_text,
                                 explain=st.booleans(),
                                 items=st.lists(st.sampled_from(POOL), max_size=4)),
    "ApplyMovements": st.builds(pb.ApplyMovementsRequest,
                                movements=st.lists(_movement, max_size=4)),
    "WatchAvailability": st.builds(pb.WatchAvailabilityRequest, channel=_text),
    "FenceChannel": st.builds(pb.FenceChannelRequest, channel=_text,
                              action=st.integers(0, 3),
                              publish_seq=st.integers(0, 2**64 - 1),
                              items=st.lists(st.builds(pb.FenceItem,
                                                       sku=st.sampled_from(SKUS),
                                                       location=st.sampled_from(LOCATIONS),
                                                       units=_quantity), max_size=4)),
    "Batch": st.builds(pb.BatchRequest, commands=st.lists(st.one_of(
        st.builds(pb.BatchCommand, reserve=_reserve), st.builds(pb.BatchCommand, commit=_commit),
        st.builds(pb.BatchCommand, release=_release), st.just(pb.BatchCommand())), max_size=4)),
}


@st.composite
def _mutated(draw, payload: bytes) -> bytes:
    """`payload` with a few flips, inserts, deletions, truncations or duplicated slices."""
    data = bytearray(payload)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "repeat")))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 16))] * draw(st.integers(1, 3))
    return bytes(data)


@st.composite
def _calls(draw) -> tuple[str, bytes, str]:
    """(method path, request bytes, which token) of one hostile call."""
    method = draw(st.sampled_from(sorted(SERVICE.methods_by_name)))
    source = draw(st.sampled_from(("message", "mutated", "random")))
    if source == "random":
        payload = draw(st.binary(max_size=512))
    else:
        payload = draw(_REQUESTS[method]).SerializeToString()
        if source == "mutated":
            payload = draw(_mutated(payload))
    token = draw(st.sampled_from(("admin", "checkout", "source", "channel", "none")))
    return method, payload, token


def _check_answer(error: grpc.RpcError | None) -> grpc.StatusCode:
    if error is None:
        return grpc.StatusCode.OK
    details = error.details() or ""
    assert error.code() in EXPECTED_CODES, (error.code(), details)
    assert not any(marker in details for marker in TRACE_MARKERS), details
    assert len(details) < 2_000, details[:200]
    return error.code()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(call=_calls())
def test_hostile_requests_are_refused_cleanly_and_change_nothing(target, call):
    """A random, structured or mutated request: an expected status, no trace, and a refused
    one leaves every quantity as it was."""
    running, channel = target
    method, payload, role = call
    admin = running.tokens["admin"]
    before = _quantities(channel, admin)
    metadata = bearer(running.tokens.get(role))
    streaming = SERVICE.methods_by_name[method].server_streaming
    error = None
    try:
        if streaming:
            # A served stream never ends: the first message or a short deadline is enough.
            next(iter(raw_method(channel, method, True)(payload, metadata=metadata,
                                                       timeout=0.5)), None)
        else:
            raw_method(channel, method)(payload, metadata=metadata, timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as refused:
        if not (streaming and refused.code() == grpc.StatusCode.DEADLINE_EXCEEDED):
            error = refused
    code = _check_answer(error)
    if code is not grpc.StatusCode.OK:
        assert _quantities(channel, admin) == before, (method, code, error.details())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.one_of(st.text(max_size=80).map(lambda text: "/" + text),
                      st.sampled_from(["/", "//", "/inventory.v1.AvailabilityService/",
                                       "/inventory.v1.AvailabilityService/Reserve/x",
                                       "/grpc.health.v1.Health/Watch"])),
       payload=st.binary(max_size=256), authorized=st.booleans())
def test_random_method_paths_are_refused_cleanly(target, path, payload, authorized):
    """Any path, any bytes: an expected status without a trace, and the gateway answers on."""
    running, channel = target
    if any(ord(c) < 0x20 or ord(c) > 0x7e for c in path):
        path = "/" + path.encode("unicode_escape").decode("ascii").replace("\\", "_")[:80]
    try:
        # Health's Watch streams forever: a unary call of it ends at this deadline.
        raw_method(channel, path)(payload, timeout=0.5,
                                  metadata=bearer(running.tokens["admin"] if authorized else None))
        error = None
    except grpc.RpcError as refused:
        error = refused
    if error is not None and error.code() is grpc.StatusCode.DEADLINE_EXCEEDED \
            and path == "/grpc.health.v1.Health/Watch":
        return
    _check_answer(error)


def test_gateway_answers_after_the_fuzzing(target):
    """Whatever the fuzz sent, an ordinary call still succeeds."""
    running, channel = target
    assert len(_quantities(channel, running.tokens["admin"])) == len(POOL)
