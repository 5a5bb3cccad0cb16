"""Tokens files, role rules, token buckets, protected mode and `availability token new`."""

from __future__ import annotations

import hashlib
import logging

import pytest
import trustme
from inventory.v1 import availability_pb2 as pb

from engine.cli import main
from engine.config import TransportLimits
from gateway.guard import bearer_token
from gateway.permissions import RULES, SERVICE_PREFIX, check_of
from gateway.rate_limit import RateLimiter, TokenBucket
from gateway.security import SecurityConfigError, SecurityOptions, is_loopback, secured
from gateway.tls import ClientTls, ServerTls, TlsConfigError
from gateway.tokens import (
    TokenFileError,
    Tokens,
    digest_of,
    identity_for,
    new_token,
    parse_tokens,
    toml_table,
)

SERVICE = pb.DESCRIPTOR.services_by_name["AvailabilityService"]


def test_tokens_file_round_trip_identifies_each_token_and_no_other():
    """A table printed for a token identifies it, with its role and scope; others are None."""
    checkout, amazon = new_token(), new_token()
    tokens = parse_tokens(toml_table("web", "checkout", checkout) + "\n\n"
                          + toml_table("amz", "channel", amazon, channel="amazon"))
    assert tokens.identify(checkout).role == "checkout"
    assert (tokens.identify(amazon).name, tokens.identify(amazon).channel) == ("amz", "amazon")
    assert tokens.identify(new_token()) is None
    assert tokens.identify(checkout[:-1]) is None
    assert tokens.identify("") is None
    assert digest_of(checkout) == hashlib.sha256(checkout.encode()).hexdigest()


@pytest.mark.parametrize("text, named", [
    ("", "at least one [[tokens]]"),
    ("tokens = 3", "at least one [[tokens]]"),
    ("[[tokens]]\nrole='admin'\nsha256='" + "a" * 64 + "'", "tokens[0].name"),
    ("[[tokens]]\nname='x'\nrole='root'\nsha256='" + "a" * 64 + "'", "tokens[0].role"),
    ("[[tokens]]\nname='x'\nrole='admin'\nsha256='abc'", "tokens[0].sha256"),
    ("[[tokens]]\nname='x'\nrole='channel'\nsha256='" + "a" * 64 + "'", "tokens[0].channel"),
    ("[[tokens]]\nname='x'\nrole='admin'\nsource='pos'\nsha256='" + "a" * 64 + "'",
     "tokens[0].source"),
    ("[[tokens]]\nname='x'\nrole='admin'\nsha265='" + "a" * 64 + "'", "tokens[0].sha265"),
    ("[[tokens]]\nname='x'\nrole='admin'\nsha256='" + "a" * 64 + "'\ncalls_per_s=-1",
     "tokens[0].calls_per_s"),
    ("[[tokens]]\nname='x'\nrole='admin'\nsha256='" + "a" * 64 + "'\n"
     "[[tokens]]\nname='x'\nrole='admin'\nsha256='" + "b" * 64 + "'", "tokens[1].name"),
    ("[[tokens]]\nname='x'\nrole='admin'\nsha256='" + "a" * 64 + "'\n"
     "[[tokens]]\nname='y'\nrole='admin'\nsha256='" + "A" * 64 + "'", "same sha256"),
    ("[[tokens]\n", "not TOML"),
    ("admins = []\n[[tokens]]\nname='x'\nrole='admin'\nsha256='" + "a" * 64 + "'", "admins"),
])
def test_tokens_file_errors_name_the_table_and_key(text, named):
    """Every broken tokens file is refused, naming what is wrong."""
    with pytest.raises(TokenFileError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_tokens(text, "tokens.toml")


def test_bearer_token_reads_only_the_bearer_scheme():
    """`authorization: Bearer T` gives T (any case of the scheme); other schemes give None."""
    assert bearer_token((("x-other", "1"), ("authorization", "Bearer abc"))) == "abc"
    assert bearer_token((("authorization", "bearer  abc "),)) == "abc"
    assert bearer_token((("authorization", "Basic abc"),)) is None
    assert bearer_token((("authorization", "Bearer"),)) is None
    assert bearer_token(()) is None and bearer_token(None) is None


def _identity(role: str, **scope):
    return identity_for(new_token(), f"{role}-token", role, **scope)


def test_roles_reach_exactly_their_rpcs_and_new_rpcs_are_admin_only():
    """checkout, channel and source each list their RPCs; anything else (a future admin RPC,
    another service) is refused to them and allowed to the admin."""
    for method in [*SERVICE.methods_by_name, "DrainEverything"]:
        path = SERVICE_PREFIX + method
        assert check_of("admin", path) is not None
        for role in ("checkout", "channel", "source"):
            assert (check_of(role, path) is not None) == (method in RULES[role]), (role, method)
    assert check_of("checkout", "/other.Service/Reserve") is None


def test_channel_check_maps_empty_to_default_and_refuses_explain():
    """A `default` channel token may leave the channel empty; a `web` one may not; explain is
    the admin's."""
    check = check_of("channel", SERVICE_PREFIX + "GetAvailability")
    web, default = _identity("channel", channel="web"), _identity("channel", channel="default")
    assert check(web, pb.GetAvailabilityRequest(channel="web")) is None
    assert "channel" in check(web, pb.GetAvailabilityRequest())
    assert check(default, pb.GetAvailabilityRequest()) is None
    assert "explain" in check(web, pb.GetAvailabilityRequest(channel="web", explain=True))
    watch = check_of("channel", SERVICE_PREFIX + "WatchAvailability")
    assert watch(web, pb.WatchAvailabilityRequest(channel="web")) is None
    assert watch(web, pb.WatchAvailabilityRequest(channel="other")) is not None


def test_source_check_names_the_first_foreign_movement():
    """A source token's movements must all carry its source; the refusal names the first other."""
    check = check_of("source", SERVICE_PREFIX + "ApplyMovements")
    pos = _identity("source", source="pos")
    request = pb.ApplyMovementsRequest(movements=[pb.Movement(source="pos"),
                                                  pb.Movement(source=""), pb.Movement(source="x")])
    assert check(pos, request).startswith("movements[1].source")
    assert check(pos, pb.ApplyMovementsRequest(movements=[pb.Movement(source="pos")])) is None


def test_token_bucket_spends_its_burst_then_refills_at_its_rate():
    """3 at once, then one per 0.5 s of the given clock; a clock stepping back refills nothing."""
    bucket = TokenBucket(calls_per_s=2.0, burst_calls=3, now_s=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.4) is False
    assert bucket.take(100.5) is True
    assert bucket.take(90.0) is False
    assert [bucket.take(200.0) for _ in range(4)] == [True, True, True, False]  # capped at 3


def test_rate_limiter_keeps_a_bucket_per_token_and_honours_the_file_s_own_limits():
    """Tokens do not share buckets; a token's calls_per_s of 0 means unlimited."""
    now = [0.0]
    tokens = parse_tokens(toml_table("a", "admin", new_token()) + "\nburst_calls = 2\n\n"
                          + toml_table("b", "admin", new_token()) + "\ncalls_per_s = 0\n")
    a, b = sorted(tokens.identities, key=lambda identity: identity.name)
    limiter = RateLimiter(tokens.identities, TransportLimits(token_calls_per_s=1.0),
                          clock=lambda: now[0])
    assert [limiter.allow(a) for _ in range(3)] == [True, True, False]
    assert all(limiter.allow(b) for _ in range(1_000))
    now[0] = 1.0
    assert limiter.allow(a) and not limiter.allow(a)
    assert limiter.limit_of(b) == "none"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
    ("", False)])
def test_loopback_addresses(host, loopback):
    """Only addresses that are all loopback count; a name is resolved, wildcards are not."""
    assert is_loopback(host) is loopback


def test_protected_mode_refuses_a_public_bind_without_tokens(tmp_path, caplog):
    """No tokens: loopback is served, 0.0.0.0 is refused, and --insecure serves it with a warning;
    with a tokens file, any address is served."""
    assert secured(SecurityOptions(), "127.0.0.1").tokens is None
    with pytest.raises(SecurityConfigError, match="protected mode.*--auth-tokens.*--insecure"):
        secured(SecurityOptions(), "0.0.0.0")
    with caplog.at_level(logging.WARNING):
        secured(SecurityOptions(insecure=True), "0.0.0.0")
    assert "INSECURE" in caplog.text and "WITHOUT AUTHENTICATION" in caplog.text
    path = tmp_path / "tokens.toml"
    path.write_text(toml_table("ops", "admin", new_token()))
    assert secured(SecurityOptions(auth_tokens=str(path)), "0.0.0.0").tokens is not None


def test_security_options_name_the_flag_that_is_wrong(tmp_path):
    """Half a TLS pair, mTLS without TLS, a missing or broken file: each names its flag."""
    cert = trustme.CA().issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    other_key = trustme.CA().issue_cert("localhost").private_key_pem
    other_key.write_to_path(tmp_path / "other.key")
    (tmp_path / "bad.toml").write_text("[[tokens]]\nname='x'\n")
    cases = [
        (SecurityOptions(tls_cert=str(tmp_path / "cert.pem")), "--tls-cert and --tls-key"),
        (SecurityOptions(tls_client_ca=str(tmp_path / "cert.pem")), "--tls-client-ca"),
        (SecurityOptions(tls_cert=str(tmp_path / "none.pem"), tls_key=str(tmp_path / "key.pem")),
         "--tls-cert: cannot read"),
        (SecurityOptions(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "other.key")),
         "--tls-key: .* is not the key"),
        (SecurityOptions(auth_tokens=str(tmp_path / "bad.toml")), "--auth-tokens: .*role"),
        (SecurityOptions(auth_tokens=str(tmp_path / "none.toml")), "--auth-tokens: .*cannot read"),
    ]
    for options, message in cases:
        with pytest.raises(SecurityConfigError, match=message):
            options.load()
    options = SecurityOptions(tls_cert=str(tmp_path / "cert.pem"),
                              tls_key=str(tmp_path / "key.pem"))
    assert options.load().tls == ServerTls.from_files(options.tls_cert, options.tls_key)
    assert options.flags() == ["--tls-cert", options.tls_cert, "--tls-key", options.tls_key]
    with pytest.raises(TlsConfigError, match="--tls-ca: .* holds no PEM"):
        ClientTls.from_files(ca=str(tmp_path / "bad.toml"))
    with pytest.raises(TlsConfigError, match="go together"):
        ClientTls.from_files(cert=str(tmp_path / "cert.pem"))


def test_token_new_prints_a_token_and_the_table_that_identifies_it(capsys):
    """`availability token new` prints a token once, and a table that parses and identifies it."""
    assert main(["token", "new", "--role", "source", "--source", "pos"]) == 0
    printed = capsys.readouterr().out
    token = printed.split("token: ", 1)[1].split()[0]
    table = printed[printed.index("[[tokens]]"):]
    identity = parse_tokens(table).identify(token)
    assert (identity.name, identity.role, identity.source) == ("source-pos", "source", "pos")
    assert token not in table


@pytest.mark.parametrize("argv, message", [
    (["--role", "channel"], "--role channel needs --channel"),
    (["--role", "checkout", "--source", "pos"], "--source is only for --role source"),
    (["--role", "root"], "invalid choice"),
])
def test_token_new_refuses_a_scope_that_does_not_fit_the_role(capsys, argv, message):
    """A channel token needs its channel; a scope on another role is refused."""
    with pytest.raises(SystemExit):
        main(["token", "new", *argv])
    assert message in capsys.readouterr().err


def test_tokens_with_equal_digests_are_refused():
    """Two identities of one token would make the role ambiguous."""
    token = new_token()
    with pytest.raises(TokenFileError, match="same sha256"):
        Tokens([identity_for(token, "a", "admin"), identity_for(token, "b", "checkout")])
