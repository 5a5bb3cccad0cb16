"""The AvailabilityService RPCs: protobuf in, the router's answer out, refusals as status codes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc

from engine.validation import ValidationError
from gateway import codec
from gateway.carts import CartAborted
from gateway.lanes import DeadlineExpired, LaneOverloaded
from gateway.partitions import PartitionUnavailable
from gateway.router import Router

StatusCode = grpc.StatusCode
log = logging.getLogger(__name__)
# Refusals raised on the way to a partition, and the status each is answered with.
_STATUS_OF_ERROR = (
    (ValidationError, StatusCode.INVALID_ARGUMENT),
    (LaneOverloaded, StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExpired, StatusCode.DEADLINE_EXCEEDED),
    (PartitionUnavailable, StatusCode.UNAVAILABLE),
    (CartAborted, StatusCode.ABORTED),
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


async def settle(work: Awaitable):
    """Await the router, turning the refusals it raises into Refused with their status."""
    try:
        return await work
    except Exception as error:
        for error_type, code in _STATUS_OF_ERROR:
            if isinstance(error, error_type):
                raise Refused(code, str(error)) from error
        log.exception("command failed")
        raise Refused(StatusCode.INTERNAL, f"internal error: {type(error).__name__}") from error


async def answer(work: Awaitable, to_response: Callable):
    """Await the router's result and encode it, or raise Refused with the status it earns."""
    result = await settle(work)
    code = codec.status_of(result.outcome)
    if code is not None:
        raise Refused(code, result.message)
    return to_response(result)


class AvailabilityServicer(pb_grpc.AvailabilityServiceServicer):
    """Small methods: decode, hand to the router, encode; every refusal is a status code."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def Reserve(self, request, context):
        return await self._unary(context, self._reserve(request, deadline_of(context)))

    async def Commit(self, request, context):
        return await self._unary(context, self._commit(request, deadline_of(context)))

    async def Release(self, request, context):
        return await self._unary(context, self._release(request, deadline_of(context)))

    async def GetAvailability(self, request, context):
        query = codec.availability_query(request)
        work = self.router.get_availability(query, deadline_of(context))
        return await self._unary(context, answer(work, codec.availability_response))

    async def ApplyMovements(self, request, context):
        work = self.router.apply_movements(codec.movement_commands(request),
                                           deadline_of(context))
        # Each movement's refusal is in its own result; only the request can fail the call.
        return codec.movements_response(await self._unary(context, settle(work)))

    async def WatchAvailability(self, request, context):
        await context.abort(StatusCode.UNIMPLEMENTED,
                            "WatchAvailability is not served yet: poll GetAvailability")

    async def Batch(self, request, context):
        limit = self.router.config.batch_commands_max
        if len(request.commands) > limit:
            await context.abort(StatusCode.INVALID_ARGUMENT,
                                f"commands: at most {limit} per batch")
        deadline = deadline_of(context)
        outcomes = await asyncio.gather(*(self._batch_command(command, deadline)
                                          for command in request.commands))
        return pb.BatchResponse(results=outcomes)

    async def _batch_command(self, command: pb.BatchCommand,
                             deadline: float | None) -> pb.BatchResult:
        kind = command.WhichOneof("command")
        if kind is None:
            return pb.BatchResult(status_code=StatusCode.INVALID_ARGUMENT.value[0],
                                  status_message="command: must be reserve, commit or release")
        run = {"reserve": self._reserve, "commit": self._commit, "release": self._release}[kind]
        try:
            response = await run(getattr(command, kind), deadline)
        except Refused as refusal:
            return pb.BatchResult(status_code=refusal.code.value[0],
                                  status_message=refusal.message)
        return pb.BatchResult(**{kind: response})

    def _reserve(self, request: pb.ReserveRequest, deadline: float | None) -> Awaitable:
        command = codec.reserve_command(request, reservation_id="")
        return answer(self.router.reserve(command, deadline), codec.reserve_response)

    def _commit(self, request: pb.CommitRequest, deadline: float | None) -> Awaitable:
        command = codec.commit_command(request)
        return answer(self.router.commit(command, deadline), codec.commit_response)

    def _release(self, request: pb.ReleaseRequest, deadline: float | None) -> Awaitable:
        command = codec.release_command(request)
        return answer(self.router.release(command, deadline), codec.release_response)

    @staticmethod
    async def _unary(context: grpc.aio.ServicerContext, work: Awaitable):
        try:
            return await work
        except Refused as refusal:
            await context.abort(refusal.code, refusal.message)

