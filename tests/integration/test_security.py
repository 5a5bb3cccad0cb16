"""Tokens, roles, rate limits, TLS and hostile messages against a real gRPC gateway."""

from __future__ import annotations

import uuid

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from inventory.v1 import availability_pb2 as pb

from engine.config import GatewayConfig, TransportLimits
from gateway.security import Security
from gateway.tls import ClientTls, ServerTls
from gateway.tokens import Tokens, identity_for, new_token, parse_tokens, toml_table
from tests.integration.secured_gateway import (
    RPC_TIMEOUT_S,
    SERVICE,
    bearer,
    movement,
    raw_method,
    role_secured_gateway,
    threaded_gateway,
)

DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def _key() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


# One request per RPC that an allowed caller gets past the guard with (channel "default",
# source "pos", as the tokens of secured_gateway.ROLE_SCOPES say).
REQUESTS = {
    "Reserve": lambda: pb.ReserveRequest(idempotency_key=_key(), lines=[
        pb.ReserveLine(sku="sku-a", location="dc-1", quantity=1)]),
    "Commit": lambda: pb.CommitRequest(reservation_id="r0-none", idempotency_key=_key()),
    "Release": lambda: pb.ReleaseRequest(reservation_id="r0-none", idempotency_key=_key()),
    "GetAvailability": lambda: pb.GetAvailabilityRequest(
        channel="default", items=[pb.ItemRef(sku="sku-a", location="dc-1")]),
    "ApplyMovements": lambda: pb.ApplyMovementsRequest(
        movements=[movement(_key(), "sku-table")]),
    "WatchAvailability": lambda: pb.WatchAvailabilityRequest(channel="default"),
    "Batch": lambda: pb.BatchRequest(commands=[pb.BatchCommand(
        commit=pb.CommitRequest(reservation_id="r0-none", idempotency_key=_key()))]),
    "FenceChannel": lambda: pb.FenceChannelRequest(channel="default",
                                                   action=pb.FENCE_ACTION_SETTLE),
}
PAST_THE_GUARD = {grpc.StatusCode[name] for name in (
    "OK", "NOT_FOUND", "UNIMPLEMENTED", "DEADLINE_EXCEEDED")}
# Past the guard, the servicer's own refusal of a request on its merits: this gateway's
# `default` channel is not ring-fenced.
REFUSED_ON_ITS_MERITS = {"FenceChannel": {grpc.StatusCode.INVALID_ARGUMENT}}
ALLOWED = {
    "checkout": {"Reserve", "Commit", "Release", "GetAvailability", "Batch"},
    "channel": {"GetAvailability", "WatchAvailability", "FenceChannel"},
    "source": {"ApplyMovements"},
    "admin": set(REQUESTS),
}


@pytest.fixture(scope="module")
def secured():
    """A gateway whose tokens are one per role, and a plaintext channel to it."""
    with role_secured_gateway() as (running, channel):
        yield running, channel


def _code_of(channel: grpc.Channel, method: str, request, token: str | None) -> grpc.StatusCode:
    """The status of one call; a stream is read until its first message or its end."""
    streaming = SERVICE.methods_by_name[method].server_streaming
    call = raw_method(channel, method, streaming)
    try:
        if streaming:
            responses = call(request.SerializeToString(), metadata=bearer(token), timeout=1.0)
            next(iter(responses), None)
        else:
            call(request.SerializeToString(), metadata=bearer(token), timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_table_covers_every_rpc_of_the_service():
    """The role table below names every RPC that AvailabilityService has."""
    assert set(REQUESTS) == set(SERVICE.methods_by_name)


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("method", sorted(REQUESTS))
def test_role_against_rpc(secured, role, method):
    """Each role reaches exactly its RPCs; every other one is PERMISSION_DENIED."""
    running, channel = secured
    code = _code_of(channel, method, REQUESTS[method](), running.tokens[role])
    if method in ALLOWED[role]:
        # Past the guard: the servicer's own answer (a business refusal at most).
        assert code in PAST_THE_GUARD | REFUSED_ON_ITS_MERITS.get(method, set()), (
            role, method, code)
    else:
        assert code == DENIED, (role, method, code)


@pytest.mark.parametrize("method", sorted(REQUESTS))
def test_every_rpc_without_or_with_an_unknown_token_is_unauthenticated(secured, method):
    """No token, a token nobody issued, or another scheme: UNAUTHENTICATED, every RPC."""
    running, channel = secured
    basic = (("authorization", f"Basic {running.tokens['admin']}"),)
    for metadata in ((), bearer(new_token()), basic):
        call = raw_method(channel, method, SERVICE.methods_by_name[method].server_streaming)
        with pytest.raises(grpc.RpcError) as refused:
            answer = call(REQUESTS[method]().SerializeToString(), metadata=metadata,
                          timeout=RPC_TIMEOUT_S)
            next(iter(answer)) if SERVICE.methods_by_name[method].server_streaming else None
        assert refused.value.code() == UNAUTHENTICATED, metadata
        assert running.tokens["admin"] not in (refused.value.details() or "")


def test_health_and_reflection_answer_without_a_token(secured):
    """Load balancers probe health with no token; reflection describes the public contract."""
    _, channel = secured
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT_S)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflected = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=RPC_TIMEOUT_S)
    names = {s.name for s in next(reflected).list_services_response.service}
    assert "inventory.v1.AvailabilityService" in names


def test_unknown_method_path_is_unauthenticated_without_a_token(secured):
    """A path no service serves reveals nothing to a caller without a token."""
    running, channel = secured
    for token, expected in ((None, UNAUTHENTICATED),
                            (running.tokens["checkout"], DENIED),
                            (running.tokens["admin"], grpc.StatusCode.UNIMPLEMENTED)):
        with pytest.raises(grpc.RpcError) as refused:
            raw_method(channel, "/inventory.v1.AdminService/Wipe")(
                b"", metadata=bearer(token), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == expected


def test_channel_token_reads_its_own_channel_only(secured):
    """A channel token of `default` reads it, named or left empty; never another channel."""
    running, channel = secured
    get = raw_method(channel, "GetAvailability")
    item = [pb.ItemRef(sku="sku-a", location="dc-1")]
    for asked in ("default", ""):
        get(pb.GetAvailabilityRequest(channel=asked, items=item).SerializeToString(),
            metadata=bearer(running.tokens["channel"]), timeout=RPC_TIMEOUT_S)
    for asked in ("other", "Default", "default "):
        with pytest.raises(grpc.RpcError) as refused:
            get(pb.GetAvailabilityRequest(channel=asked, items=item).SerializeToString(),
                metadata=bearer(running.tokens["channel"]), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == DENIED
        assert "channel" in refused.value.details()


def test_explain_needs_an_admin_token(secured):
    """Explanations list other callers' keys and sources: checkout and channel are refused."""
    running, channel = secured
    get = raw_method(channel, "GetAvailability")
    request = pb.GetAvailabilityRequest(channel="default", explain=True, items=[
        pb.ItemRef(sku="sku-a", location="dc-1")]).SerializeToString()
    for role in ("checkout", "channel"):
        with pytest.raises(grpc.RpcError) as refused:
            get(request, metadata=bearer(running.tokens[role]), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == DENIED and "explain" in refused.value.details()
    admin_request = pb.GetAvailabilityRequest(explain=True, items=[
        pb.ItemRef(sku="sku-a", location="dc-1")]).SerializeToString()
    get(admin_request, metadata=bearer(running.tokens["admin"]), timeout=RPC_TIMEOUT_S)


def test_source_token_with_another_source_changes_nothing(secured):
    """One movement of another source refuses the whole request; none of it is applied."""
    running, channel = secured
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    request = pb.ApplyMovementsRequest(movements=[
        movement(_key(), sku, source="pos"), movement(_key(), sku, source="wms")])
    with pytest.raises(grpc.RpcError) as refused:
        raw_method(channel, "ApplyMovements")(request.SerializeToString(),
                                              metadata=bearer(running.tokens["source"]),
                                              timeout=RPC_TIMEOUT_S)
    assert refused.value.code() == DENIED
    assert "movements[1].source" in refused.value.details()
    answer = pb.GetAvailabilityResponse.FromString(raw_method(channel, "GetAvailability")(
        pb.GetAvailabilityRequest(items=[pb.ItemRef(sku=sku, location="dc-1")])
        .SerializeToString(), metadata=bearer(running.tokens["admin"]), timeout=RPC_TIMEOUT_S))
    assert answer.items[0].on_hand == 0


def test_rate_limit_refuses_past_the_burst_with_resource_exhausted():
    """A token's bucket of 3 calls (refilled at 0.01/s) lets 3 through, then refuses."""
    token, other = new_token(), new_token()
    tokens = parse_tokens(toml_table("slow", "admin", token) + "\ncalls_per_s = 0.01\n"
                          "burst_calls = 3\n\n" + toml_table("other", "admin", other))
    with threaded_gateway(Security(tokens=tokens)) as running, \
            grpc.insecure_channel(running.target) as channel:
        get = raw_method(channel, "GetAvailability")
        request = REQUESTS["GetAvailability"]().SerializeToString()
        for _ in range(3):
            get(request, metadata=bearer(token), timeout=RPC_TIMEOUT_S)
        with pytest.raises(grpc.RpcError) as refused:
            get(request, metadata=bearer(token), timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "slow" in refused.value.details()
        get(request, metadata=bearer(other), timeout=RPC_TIMEOUT_S)  # its own bucket


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA with a server certificate for 127.0.0.1 and a client certificate, and a stranger
    CA with a client certificate of its own; PEM files in a folder."""
    folder = tmp_path_factory.mktemp("pki")
    ca, stranger = trustme.CA(), trustme.CA()
    for name, cert in (("server", ca.issue_cert("127.0.0.1", "localhost")),
                       ("client", ca.issue_cert("checkout.example")),
                       ("stranger", stranger.issue_cert("checkout.example"))):
        cert.cert_chain_pems[0].write_to_path(folder / f"{name}.pem")
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(folder / f"{name}.pem", append=True)
        cert.private_key_pem.write_to_path(folder / f"{name}.key")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    stranger.cert_pem.write_to_path(folder / "stranger-ca.pem")
    return {name: str(path) for name, path in
            ((p.stem if p.suffix == ".pem" else p.stem + "-key", p) for p in folder.iterdir())}


def _health(channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S).status


def test_tls_handshake_and_plaintext_refused(pki):
    """A TLS gateway answers a client trusting its CA; a plaintext or untrusting one fails."""
    tls = ServerTls.from_files(pki["server"], pki["server-key"])
    with threaded_gateway(Security(tls=tls)) as running:
        trusted = ClientTls.from_files(ca=pki["ca"])
        with grpc.secure_channel(running.target, trusted.credentials()) as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        for untrusted in (grpc.insecure_channel(running.target),
                          grpc.secure_channel(running.target, ClientTls.from_files(
                              ca=pki["stranger-ca"]).credentials())):
            with untrusted as channel, pytest.raises(grpc.RpcError) as failed:
                _health(channel)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_rejects_a_missing_or_foreign_client_certificate(pki):
    """Under mTLS a client certificate of the CA passes; none, or another CA's, is refused."""
    tls = ServerTls.from_files(pki["server"], pki["server-key"], client_ca=pki["ca"])
    with threaded_gateway(Security(tls=tls)) as running:
        good = ClientTls.from_files(ca=pki["ca"], cert=pki["client"], key=pki["client-key"])
        with grpc.secure_channel(running.target, good.credentials()) as channel:
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        for bad in (ClientTls.from_files(ca=pki["ca"]),
                    ClientTls.from_files(ca=pki["ca"], cert=pki["stranger"],
                                         key=pki["stranger-key"])):
            with grpc.secure_channel(running.target, bad.credentials()) as channel, \
                    pytest.raises(grpc.RpcError) as failed:
                _health(channel)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_with_tls_and_token_reaches_a_secured_gateway(pki):
    """AvailabilityClient's tls and token options: TLS, mTLS and a checkout token together."""
    from gateway.client import AvailabilityClient, AvailabilityError

    token = new_token()
    security = Security(tokens=Tokens([identity_for(token, "web", "checkout")]),
                        tls=ServerTls.from_files(pki["server"], pki["server-key"], pki["ca"]))
    tls = ClientTls.from_files(ca=pki["ca"], cert=pki["client"], key=pki["client-key"])
    with threaded_gateway(security) as running:
        async with AvailabilityClient(running.target, tls=tls, token=token) as client:
            answer = await client.reserve([("sku-a", "dc-1", 1)], idempotency_key=_key(),
                                          timeout=RPC_TIMEOUT_S)
            assert answer.status == pb.RESERVATION_STATUS_REJECTED  # unknown item: business
            with pytest.raises(AvailabilityError) as refused:
                await client.apply_movements([movement(_key(), "sku-a")], timeout=RPC_TIMEOUT_S)
            assert refused.value.code == DENIED


def test_oversized_request_is_refused_before_it_is_read():
    """A request past the message limit is RESOURCE_EXHAUSTED; the gateway answers after."""
    limits = TransportLimits(receive_message_bytes_max=64 * 1024)
    with threaded_gateway(config=GatewayConfig(transport=limits)) as running, \
            grpc.insecure_channel(running.target) as channel:
        call = raw_method(channel, "GetAvailability")
        with pytest.raises(grpc.RpcError) as refused:
            call(b"\x12" + b"\x80\x80\x04" + b"a" * 65_536, timeout=RPC_TIMEOUT_S)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_deeply_nested_and_undecodable_requests_are_invalid_argument():
    """Nested groups 100,000 deep, corrupt varints and truncated fields: INVALID_ARGUMENT with
    a one-line reason, and the gateway answers the next call."""
    with threaded_gateway() as running, grpc.insecure_channel(running.target) as channel:
        reserve = raw_method(channel, "Reserve")
        nested_group = b"\x0b" * 100_000 + b"\x0c" * 100_000  # field 1 start/end group
        nested_unknown = b"".join(b"\xfa\x3e" for _ in range(20)) + b"\x00"  # field 999
        for payload in (nested_group, nested_unknown, b"\xff" * 11, b"\x0a\x05ab",
                        b"\x0a\xff\xff\xff\xff\x0f"):
            with pytest.raises(grpc.RpcError) as refused:
                reserve(payload, timeout=RPC_TIMEOUT_S)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, payload[:8]
            assert "Traceback" not in refused.value.details()
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
