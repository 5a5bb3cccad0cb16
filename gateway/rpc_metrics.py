"""A grpc.aio server interceptor that times every AvailabilityService RPC and counts its answer.

The servicer stays as it is: latency and status code come from the call's outcome,
reserve and movement result codes from the response, and hot SKUs from the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

import grpc
from inventory.v1 import availability_pb2 as pb

from gateway.metrics import GatewayMetrics

SERVICE_PREFIX = "/" + pb.DESCRIPTOR.services_by_name["AvailabilityService"].full_name + "/"
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
log = logging.getLogger(__name__)


def _short_names(enum, prefix: str) -> dict[int, str]:
    return {value.number: value.name.removeprefix(prefix) for value in enum.DESCRIPTOR.values}


_RESERVATION_STATUS = _short_names(pb.ReservationStatus, "RESERVATION_STATUS_")
_LINE_CODES = _short_names(pb.LineCode, "LINE_CODE_")
_MOVEMENT_CODES = _short_names(pb.MovementCode, "MOVEMENT_CODE_")


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the unary AvailabilityService handlers; other services pass untouched."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        # method -> (the handler gRPC gave, its wrapped twin): one entry per RPC of the
        # service, so the table is bounded by the proto.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or \
                not method.startswith(SERVICE_PREFIX):
            return handler
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            wrapped = grpc.unary_unary_rpc_method_handler(
                self._observed(method.removeprefix(SERVICE_PREFIX), handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
            known = self._wrapped[method] = (handler, wrapped)
        return known[1]

    def _observed(self, name: str, behavior: Callable):
        metrics = self._metrics
        count_request = _REQUEST_COUNTERS.get(name)
        count_response = _RESPONSE_COUNTERS.get(name)
        # Per status code: the histogram child and refusal counter, resolved once each
        # (bounded by the 17 status codes).
        children: dict[str, tuple] = {}

        async def observed(request, context):
            started = time.perf_counter()
            code = "OK"
            try:
                if count_request is not None:
                    _safely(count_request, metrics, request)
                response = await behavior(request, context)
                if count_response is not None:
                    _safely(count_response, metrics, response)
                return response
            except grpc.aio.AbortError:
                code = _code_name(context.code())
                raise
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception:  # gRPC answers UNKNOWN for an exception out of a handler
                code = "UNKNOWN"
                raise
            finally:
                child = children.get(code)
                if child is None:
                    # No refusal series for OK: it would read as "0 refusals coded OK".
                    child = children[code] = (
                        metrics.rpc_duration.labels(name, code),
                        metrics.rpc_refusals.labels(name, code) if code != "OK" else None)
                child[0].observe(time.perf_counter() - started)
                if child[1] is not None:
                    child[1].inc()

        return observed


def _safely(count: Callable, metrics: GatewayMetrics, message) -> None:
    """Count what a message says; a failure to count must never fail the call."""
    try:
        count(metrics, message)
    except Exception:
        log.exception("counting an RPC for metrics failed")


def _code_name(code) -> str:
    if isinstance(code, grpc.StatusCode):
        return code.name
    return _CODE_NAMES.get(code, "UNKNOWN") if code is not None else "UNKNOWN"


def _count_reserve_request(metrics: GatewayMetrics, request: pb.ReserveRequest) -> None:
    add = metrics.hot_skus.add
    for line in request.lines:
        add(line.sku)


def _count_batch_request(metrics: GatewayMetrics, request: pb.BatchRequest) -> None:
    add = metrics.hot_skus.add
    for command in request.commands:
        if command.HasField("reserve"):
            for line in command.reserve.lines:
                add(line.sku)


def count_reserve_responses(metrics: GatewayMetrics, responses) -> None:
    """Reservation statuses and line codes of Reserve answers, one counter update per code."""
    statuses: Counter[int] = Counter()
    lines: Counter[int] = Counter()
    for response in responses:
        statuses[response.status] += 1
        lines.update(line.code for line in response.lines)
    for status, count in statuses.items():
        metrics.reservations.labels(_RESERVATION_STATUS.get(status, str(status))).inc(count)
    for code, count in lines.items():
        metrics.reserve_lines.labels(_LINE_CODES.get(code, str(code))).inc(count)


def _count_movements_response(metrics: GatewayMetrics,
                              response: pb.ApplyMovementsResponse) -> None:
    for code, count in Counter(result.code for result in response.results).items():
        metrics.movement_results.labels(_MOVEMENT_CODES.get(code, str(code))).inc(count)


def _count_batch_response(metrics: GatewayMetrics, response: pb.BatchResponse) -> None:
    """A Batch's commands as their own RPCs would count: refusals by code, holds by status."""
    refused: Counter[int] = Counter()
    reserved = []
    for result in response.results:
        if result.status_code:
            refused[result.status_code] += 1
        elif result.HasField("reserve"):
            reserved.append(result.reserve)
    for code, count in refused.items():
        metrics.rpc_refusals.labels("BatchCommand", _CODE_NAMES.get(code, "UNKNOWN")).inc(count)
    if reserved:
        count_reserve_responses(metrics, reserved)


_REQUEST_COUNTERS = {"Reserve": _count_reserve_request, "Batch": _count_batch_request}
_RESPONSE_COUNTERS = {
    "Reserve": lambda metrics, response: count_reserve_responses(metrics, (response,)),
    "ApplyMovements": _count_movements_response,
    "Batch": _count_batch_response,
}
