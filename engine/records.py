"""Commands and results to and from msgpack-ready lists, for snapshots and the journal."""

from __future__ import annotations

import functools
import types
import typing
from enum import IntEnum

from engine import model

# Tags are stored in snapshots and journals: append new types, never reorder.
_TAGGED = (
    model.Reserve, model.Commit, model.Release, model.Expire, model.Movement,
    model.GetAvailability, model.ReserveResult, model.ReservationResult, model.ExpireResult,
    model.MovementResult, model.AvailabilityResult, model.ConfirmHold,
    model.SetChannelRules, model.RulesResult, model.WatchChanges, model.WatchSnapshot,
    model.ChannelFigure, model.WatchResult, model.FenceShown, model.SettleFences,
    model.FenceResult,
)
_TAG_OF = {record_type: tag for tag, record_type in enumerate(_TAGGED)}


def encode(record: tuple) -> list:
    """A tagged command or result as a list; nested records pack as msgpack arrays."""
    return [_TAG_OF[type(record)], *record]


def decode(data: list) -> tuple:
    record_type = _TAGGED[data[0]]
    return _decoder(record_type)(data[1:])


@functools.cache
def _decoder(record_type: type):
    """A function from a record's msgpack fields to the record, built once per type."""
    hints = typing.get_type_hints(record_type)
    converters = [_converter(hints[name]) for name in record_type._fields]

    def decode_fields(values, _new=record_type._make, _converters=converters):
        if len(values) < len(_converters):  # saved before trailing fields were added
            return record_type(*(convert(value) for convert, value in zip(_converters, values)))
        return _new(convert(value) for convert, value in zip(_converters, values, strict=True))

    return decode_fields


def _converter(hint):
    """A function turning the msgpack form of a field back into its declared type."""
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return hint
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        convert = _converter(inner)
        return lambda value: None if value is None else convert(value)
    if origin is tuple:
        element = _converter(typing.get_args(hint)[0])
        return lambda values: tuple(element(value) for value in values)
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        return _decoder(hint)
    return _identity


def _identity(value):
    return value
