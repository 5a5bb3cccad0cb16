"""Pickling of the batches and results that travel between gateways and partition actors.

The standard C pickler rebuilds a NamedTuple by calling its generated Python `__new__`,
about half a microsecond a record at each end, and a batch carries a thousand of them.
Here a batch's records go as runs of plain field tuples, one run per record type, and
are rebuilt with `tuple.__new__` in C; records nested in them (a Reserve's lines) are
pickled as `tuple.__new__(type, fields)` for the same reason. The bytes are ordinary
pickle: `pickle.loads` reads them.
"""

from __future__ import annotations

import copyreg
import functools
import io
import itertools
import pickle
from collections.abc import Sequence

from engine import model

_NEW_TUPLE = tuple.__new__


def _as_fields(record: tuple) -> tuple:
    return _NEW_TUPLE, (type(record), tuple(record))


# Every NamedTuple that engine/model.py defines; none defines its own __new__, so
# tuple.__new__ builds the same record. Other types pickle as usual.
_RECORD_TYPES = frozenset(kind for kind in vars(model).values()
                          if isinstance(kind, type) and issubclass(kind, tuple)
                          and hasattr(kind, "_fields") and kind.__module__ == model.__name__)
_DISPATCH = {**copyreg.dispatch_table, **dict.fromkeys(_RECORD_TYPES, _as_fields)}


def dumps(value: object) -> bytes:
    """`value` pickled with the highest protocol, the model's records in their cheap form."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    return buffer.getvalue()


def dumps_batch(header: tuple, records: Sequence[object]) -> bytes:
    """A header and a list of records (commands or results), the records as typed runs."""
    runs = [(kind, list(map(tuple, run))) if kind in _RECORD_TYPES else (None, list(run))
            for kind, run in itertools.groupby(records, type)]
    return dumps((header, runs))


def loads_batch(data: bytes) -> tuple[tuple, list]:
    """The header and the records that dumps_batch pickled, in their order."""
    header, runs = pickle.loads(data)
    records: list = []
    for kind, rows in runs:
        records += rows if kind is None else map(functools.partial(_NEW_TUPLE, kind), rows)
    return header, records
