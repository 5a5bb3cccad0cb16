"""A grpc.aio server interceptor in front of every handler: who calls, how often, and what.

Per call, before the request is even read: the bearer token (a SHA-256 and a dict lookup),
the token's rate limit, and whether its role may call the method. After decoding, the
role's check of the request (a channel token's channel, a source token's sources). A
request that does not decode is answered INVALID_ARGUMENT, where gRPC would answer UNKNOWN.
"""

from __future__ import annotations

import inspect
import logging

import grpc

from gateway.metrics import GatewayMetrics
from gateway.permissions import OPEN_PREFIXES, SERVICE_PREFIX, Check, check_of, unchecked
from gateway.rate_limit import RateLimiter
from gateway.tokens import Identity, Tokens

AUTHORIZATION = "authorization"
StatusCode = grpc.StatusCode
# A refusal names the method it refused; a hostile path is cut to this many characters.
_METHOD_CHARS_MAX = 120
log = logging.getLogger(__name__)


class _Undecodable:
    """What the guarded deserializer returns for bytes that are not the request type."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, rate-limits and authorizes each call; without tokens it only guards
    decoding (protected mode keeps such a gateway on loopback)."""

    def __init__(self, tokens: Tokens | None = None, limiter: RateLimiter | None = None,
                 metrics: GatewayMetrics | None = None) -> None:
        self._tokens = tokens
        self._limiter = limiter
        self._metrics = metrics
        # (method, token name) -> (the handler gRPC gave, its guarded twin): bounded by the
        # served RPCs times the tokens of the file (a path nothing serves is never kept).
        self._guarded: dict[tuple[str, str | None], tuple] = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            handler = await continuation(handler_call_details)
            # Open, yet still not a way to make gRPC log a trace per hostile request.
            return None if handler is None else self._guard(method, handler, None, None)
        identity, check = None, None
        if self._tokens is not None:
            token = bearer_token(handler_call_details.invocation_metadata)
            if token is None:
                return self._refusal(method, StatusCode.UNAUTHENTICATED,
                                     "authorization: send metadata `authorization: Bearer TOKEN`")
            identity = self._tokens.identify(token)
            if identity is None:
                return self._refusal(method, StatusCode.UNAUTHENTICATED,
                                     "authorization: unknown token")
            if self._limiter is not None and not self._limiter.allow(identity):
                return self._refusal(method, StatusCode.RESOURCE_EXHAUSTED,
                                     f"rate limit of token {identity.name!r} "
                                     f"({self._limiter.limit_of(identity)}): slow down")
            check = check_of(identity.role, method)
            if check is None:
                return self._refusal(method, StatusCode.PERMISSION_DENIED,
                                     f"role {identity.role!r} may not call "
                                     f"{method[:_METHOD_CHARS_MAX]}")
        handler = await continuation(handler_call_details)
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        return self._guard(method, handler, identity, check)

    def _guard(self, method: str, handler, identity: Identity | None, check: Check | None):
        key = (method, identity.name if identity is not None else None)
        known = self._guarded.get(key)
        if known is None or known[0] is not handler:
            refuse = None if check is None or unchecked(check) else check
            known = self._guarded[key] = (handler, guarded_handler(handler, identity, refuse))
        return known[1]

    def _refusal(self, method: str, code: StatusCode, message: str):
        if self._metrics is not None:
            name = method.removeprefix(SERVICE_PREFIX)
            # Label values are bounded: a hostile path counts as "other".
            known = method.startswith(SERVICE_PREFIX) and name.isidentifier() and len(name) < 40
            self._metrics.rpc_refusals.labels(name if known else "other", code.name).inc()
        return refusal_handler(code, message)


def bearer_token(metadata) -> str | None:
    """The token of an `authorization: Bearer TOKEN` entry, None when there is none."""
    for key, value in metadata or ():
        if key == AUTHORIZATION:
            if not isinstance(value, str):
                return None
            scheme, _, token = value.partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


def refusal_handler(code: StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler that refuses without reading the request (stream-unary reads lazily)."""

    async def refuse(request_iterator, context):
        await context.abort(code, message)

    return grpc.stream_unary_rpc_method_handler(refuse)


def guarded_handler(handler: grpc.RpcMethodHandler, identity: Identity | None,
                    refuse: Check | None) -> grpc.RpcMethodHandler:
    """`handler` with a deserializer that never raises and, when given, a check of the request."""
    deserialize = _guarded_deserializer(handler.request_deserializer)
    if handler.unary_unary is not None:
        behavior = handler.unary_unary

        async def guarded(request, context):
            await _admit(request, context, identity, refuse)
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=deserialize,
            response_serializer=handler.response_serializer)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _guarded_stream(handler.unary_stream, identity, refuse),
            request_deserializer=deserialize, response_serializer=handler.response_serializer)
    return handler  # no client-streaming RPC in the service


def _guarded_stream(behavior, identity: Identity | None, refuse: Check | None):
    # gRPC serves an async generator and a coroutine that writes to the context alike;
    # the twin must be the same kind.
    if inspect.isasyncgenfunction(behavior):
        async def guarded_generator(request, context):
            await _admit(request, context, identity, refuse)
            async for response in behavior(request, context):
                yield response

        return guarded_generator

    async def guarded(request, context):
        await _admit(request, context, identity, refuse)
        return await behavior(request, context)

    return guarded


async def _admit(request, context, identity: Identity | None, refuse: Check | None) -> None:
    if type(request) is _Undecodable:
        await context.abort(StatusCode.INVALID_ARGUMENT, request.message)
    if refuse is not None:
        denial = refuse(identity, request)
        if denial is not None:
            await context.abort(StatusCode.PERMISSION_DENIED, denial)


def _guarded_deserializer(parse):
    if parse is None:
        return None
    message_type = getattr(parse, "__self__", None)
    name = getattr(getattr(message_type, "DESCRIPTOR", None), "full_name", "the request type")
    refusal = f"request: not a valid {name}"

    def deserialize(raw: bytes):
        try:
            return parse(raw)
        except Exception:  # DecodeError, or whatever else hostile bytes provoke
            return _Undecodable(refusal)

    return deserialize
