"""The real `availability serve` with tokens and mutual TLS, and protected mode's refusal."""

from __future__ import annotations

import os
import subprocess

import pytest
import trustme
from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError
from gateway.tls import ClientTls
from gateway.tokens import new_token, toml_table
from tests.e2e.conftest import AVAILABILITY
from tests.integration.serving import RPC_TIMEOUT_S, unique

CLI_TIMEOUT_S = 120.0


def test_serve_refuses_a_public_address_without_tokens(tmp_path):
    """Protected mode: no --auth-tokens and --host 0.0.0.0 stops before anything starts."""
    run = subprocess.run([*AVAILABILITY, "serve", "--host", "0.0.0.0", "--port", "0",
                          "--data-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=CLI_TIMEOUT_S)
    assert run.returncode != 0
    assert "protected mode" in run.stderr and "--insecure" in run.stderr, run.stderr[-2_000:]
    assert not (tmp_path / "redis.sock").exists()  # refused before the embedded Redis


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate for 127.0.0.1, a client certificate; PEM paths by name."""
    ca = trustme.CA()
    paths = {"ca": tmp_path / "ca.pem"}
    ca.cert_pem.write_to_path(paths["ca"])
    for name, cert in (("server", ca.issue_cert("127.0.0.1")),
                       ("client", ca.issue_cert("checkout.example"))):
        paths[name], paths[f"{name}-key"] = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        for n, pem in enumerate(cert.cert_chain_pems):
            pem.write_to_path(paths[name], append=n > 0)
        cert.private_key_pem.write_to_path(paths[f"{name}-key"])
    return {name: str(path) for name, path in paths.items()}


async def test_serve_with_tokens_and_mutual_tls_end_to_end(spawn, pki, tmp_path):
    """serve --auth-tokens --tls-*: the client with certificate and token works, a call without
    a token is UNAUTHENTICATED, and `availability explain` connects with the same options."""
    tokens = {"admin": new_token(), "source": new_token(), "checkout": new_token()}
    path = tmp_path / "tokens.toml"
    path.write_text("\n\n".join([toml_table("ops", "admin", tokens["admin"]),
                                 toml_table("till", "source", tokens["source"], source="pos"),
                                 toml_table("web", "checkout", tokens["checkout"])]))
    served = spawn(2, args=("--auth-tokens", str(path), "--tls-cert", pki["server"],
                            "--tls-key", pki["server-key"], "--tls-client-ca", pki["ca"]))
    tls = ClientTls.from_files(ca=pki["ca"], cert=pki["client"], key=pki["client-key"])
    sku = unique("sec")
    receipt = pb.Movement(event_id=unique("receipt"), source="pos", sku=sku, location="dc-1",
                          type=pb.MOVEMENT_TYPE_RECEIPT, quantity=5)
    async with AvailabilityClient(served.target, tls=tls, token=tokens["source"]) as source:
        results = await source.apply_movements([receipt], timeout=RPC_TIMEOUT_S)
        assert [r.code for r in results] == [pb.MOVEMENT_CODE_APPLIED]
        with pytest.raises(AvailabilityError) as denied:
            await source.reserve([(sku, "dc-1", 1)], idempotency_key=unique("k"),
                                 timeout=RPC_TIMEOUT_S)
        assert denied.value.code.name == "PERMISSION_DENIED"
    async with AvailabilityClient(served.target, tls=tls, token=tokens["checkout"]) as checkout:
        held = await checkout.reserve([(sku, "dc-1", 2)], idempotency_key=unique("k"),
                                      timeout=RPC_TIMEOUT_S)
        assert held.status == pb.RESERVATION_STATUS_HELD
    async with AvailabilityClient(served.target, tls=tls) as anonymous:
        with pytest.raises(AvailabilityError) as refused:
            await anonymous.get_availability([(sku, "dc-1")], timeout=RPC_TIMEOUT_S)
        assert refused.value.code.name == "UNAUTHENTICATED"
    explain = subprocess.run(
        [*AVAILABILITY, "explain", sku, "dc-1", "--address", served.target, "--tls-ca",
         pki["ca"], "--tls-cert", pki["client"], "--tls-key", pki["client-key"], "--json"],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        env={**os.environ, "AVAILABILITY_TOKEN": tokens["admin"]})
    assert explain.returncode == 0, explain.stderr[-2_000:]
    assert '"available_to_sell": "3"' in explain.stdout
    no_certificate = subprocess.run(
        [*AVAILABILITY, "explain", sku, "dc-1", "--address", served.target, "--tls-ca",
         pki["ca"]], capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        env={**os.environ, "AVAILABILITY_TOKEN": tokens["admin"]})
    assert no_certificate.returncode == 1 and "UNAVAILABLE" in no_certificate.stderr
