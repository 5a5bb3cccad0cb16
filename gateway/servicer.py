"""The AvailabilityService RPCs: protobuf in, the router's answer out, refusals as status codes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc

from engine import logs
from engine.channels import DEFAULT
from engine.validation import ValidationError, validate_watch
from gateway import codec
from gateway.carts import CartAborted
from gateway.lanes import DeadlineExpired, LaneOverloaded
from gateway.partitions import PartitionUnavailable
from gateway.router import Router
from gateway.watch_hub import WatchEnded, WatchHub

StatusCode = grpc.StatusCode
log = logging.getLogger(__name__)
CORRELATION_HEADER = "x-correlation-id"
# Refusals raised on the way to a partition, and the status each is answered with.
_STATUS_OF_ERROR = (
    (ValidationError, StatusCode.INVALID_ARGUMENT),
    (LaneOverloaded, StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExpired, StatusCode.DEADLINE_EXCEEDED),
    (PartitionUnavailable, StatusCode.UNAVAILABLE),
    (CartAborted, StatusCode.ABORTED),
    # A lane torn down under a queued command (the gateway stopping): it was never sent.
    (asyncio.CancelledError, StatusCode.UNAVAILABLE),
)


class Refused(Exception):
    """A command answered with a status code other than OK."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline on time.monotonic()'s clock, or None when it has none."""
    remaining_s = context.time_remaining()
    return None if remaining_s is None else time.monotonic() + remaining_s


def refusal_of(error: BaseException) -> Refused:
    """The status a refusal raised on the way to a partition earns (INTERNAL for a bug)."""
    for error_type, code in _STATUS_OF_ERROR:
        if isinstance(error, error_type):
            return Refused(code, str(error))
    log.error("command failed", exc_info=error)
    return Refused(StatusCode.INTERNAL, f"internal error: {type(error).__name__}")


async def settle(work: Awaitable):
    """Await the router, turning the refusals it raises into Refused with their status."""
    try:
        return await work
    except Exception as error:
        raise refusal_of(error) from error


def encoded(result, to_response: Callable):
    """A result's response, or Refused with the status its outcome earns."""
    code = codec.status_of(result.outcome)
    if code is not None:
        raise Refused(code, result.message)
    return to_response(result)


# Each write a Batch may carry: request to command, the router's start, result to response.
_WRITES = {
    "reserve": (lambda request: codec.reserve_command(request, reservation_id=""),
                "start_reserve", codec.reserve_response),
    "commit": (codec.commit_command, "start_commit", codec.commit_response),
    "release": (codec.release_command, "start_release", codec.release_response),
}


class AvailabilityServicer(pb_grpc.AvailabilityServiceServicer):
    """Small methods: decode, hand to the router, encode; every refusal is a status code."""

    def __init__(self, router: Router, watch_hub: WatchHub) -> None:
        self.router = router
        self.watch_hub = watch_hub

    async def Reserve(self, request, context):
        # The hold carries the id into the journal, so `availability trace` finds it there.
        request.correlation_id = await _correlate(context, request.correlation_id)
        return await self._unary(context, self._write("reserve", request, deadline_of(context)))

    async def Commit(self, request, context):
        await _correlate(context)
        return await self._unary(context, self._write("commit", request, deadline_of(context)))

    async def Release(self, request, context):
        await _correlate(context)
        return await self._unary(context, self._write("release", request, deadline_of(context)))

    async def GetAvailability(self, request, context):
        await _correlate(context)
        limit = self.router.config.requests.explained_items_max
        if request.explain and len(request.items) > limit:
            await context.abort(StatusCode.INVALID_ARGUMENT,
                                f"items: at most {limit} when explain is set")
        query = codec.availability_query(request)
        work = self.router.get_availability(query, deadline_of(context))
        return await self._unary(context, self._encode_when_done(
            work, codec.availability_response))

    async def ApplyMovements(self, request, context):
        correlation = await _correlate(context)
        for movement in request.movements:
            if not movement.correlation_id:  # a movement's own id wins
                movement.correlation_id = correlation
        work = self.router.apply_movements(codec.movement_commands(request),
                                           deadline_of(context))
        # Each movement's refusal is in its own result; only the request can fail the call.
        return codec.movements_response(await self._unary(context, settle(work)))

    async def FenceChannel(self, request, context):
        await _correlate(context)
        try:
            command = codec.fence_command(request)
        except ValidationError as error:
            await context.abort(StatusCode.INVALID_ARGUMENT, str(error))
        work = self.router.fence_channel(command, deadline_of(context))
        return await self._unary(context, self._encode_when_done(work, codec.fence_response))

    async def WatchAvailability(self, request, context):
        await _correlate(context)
        try:
            self.router.check_channel(request.channel)
            validate_watch(request.skus, self.router.config.requests)
        except ValidationError as error:
            await context.abort(StatusCode.INVALID_ARGUMENT, str(error))
        channel = request.channel or DEFAULT
        watcher = self.watch_hub.watch(channel, frozenset(request.skus) or None,
                                       request.resume_stream_id, request.resume_after_sequence)
        stream_id = self.watch_hub.stream_id
        try:
            async for update in watcher.updates():
                yield pb.AvailabilityUpdate(
                    channel=channel, sku=update.sku, location=update.location,
                    available_to_sell=update.available_to_sell, sequence=update.sequence,
                    updated_at_unix_ms=update.updated_at_unix_ms, kind=update.kind,
                    stream_id=stream_id)
        except WatchEnded as ended:
            await context.abort(StatusCode.UNAVAILABLE, str(ended))
        finally:
            self.watch_hub.leave(watcher)

    async def Batch(self, request, context):
        limit = self.router.config.batch_commands_max
        if len(request.commands) > limit:
            await context.abort(StatusCode.INVALID_ARGUMENT,
                                f"commands: at most {limit} per batch")
        deadline = deadline_of(context)
        shared = _metadata_correlation(context)
        for command in request.commands:
            # Coalesced callers' holds: each its own id, unless the batch names one for all.
            if command.HasField("reserve") and not command.reserve.correlation_id:
                command.reserve.correlation_id = shared or logs.new_correlation_id()
        # A single-partition command is queued on its lane before any is awaited and its
        # answer is the lane's future: no task per command on the hot path. (Carts and
        # commands that span partitions start as tasks, which gather schedules together.)
        started = [self._start(command, deadline) for command in request.commands]
        awaited = [item[1] for item in started if type(item) is tuple]
        answers = iter(await asyncio.gather(*awaited, return_exceptions=True))
        return pb.BatchResponse(results=[
            item if type(item) is not tuple else _batch_result(item[0], next(answers))
            for item in started])

    def _start(self, command: pb.BatchCommand, deadline: float | None):
        """(kind, awaitable) for a command routed now, or the BatchResult refusing it."""
        kind = command.WhichOneof("command")
        if kind is None:
            return _refused(Refused(StatusCode.INVALID_ARGUMENT,
                                    "command: must be reserve, commit or release"))
        to_command, start, _ = _WRITES[kind]
        try:
            return kind, getattr(self.router, start)(to_command(getattr(command, kind)),
                                                     deadline)
        except Exception as error:
            return _refused(refusal_of(error))

    async def _write(self, kind: str, request, deadline: float | None):
        to_command, start, to_response = _WRITES[kind]
        try:
            work = getattr(self.router, start)(to_command(request), deadline)
        except Exception as error:
            raise refusal_of(error) from error
        return await self._encode_when_done(work, to_response)

    @staticmethod
    async def _encode_when_done(work: Awaitable, to_response: Callable):
        return encoded(await settle(work), to_response)

    @staticmethod
    async def _unary(context: grpc.aio.ServicerContext, work: Awaitable):
        try:
            return await work
        except Refused as refusal:
            await context.abort(refusal.code, refusal.message)


async def _correlate(context: grpc.aio.ServicerContext, from_request: str = "") -> str:
    """The call's correlation id: the request's, else the `x-correlation-id` metadata, else
    a new one. It is sent back as metadata and tagged on every log line of the call."""
    correlation = (from_request or _metadata_correlation(context)
                   or logs.new_correlation_id())
    logs.correlation_id.set(correlation)
    await context.send_initial_metadata(((CORRELATION_HEADER, correlation),))
    return correlation


def _metadata_correlation(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata() or ()).get(CORRELATION_HEADER, "")


def _batch_result(kind: str, answer) -> pb.BatchResult:
    """What a command's own RPC would have answered, as one result of a Batch."""
    try:
        if isinstance(answer, BaseException):
            raise refusal_of(answer)
        response = encoded(answer, _WRITES[kind][2])
    except Refused as refusal:
        return _refused(refusal)
    return pb.BatchResult(**{kind: response})


def _refused(refusal: Refused) -> pb.BatchResult:
    return pb.BatchResult(status_code=refusal.code.value[0], status_message=refusal.message)
