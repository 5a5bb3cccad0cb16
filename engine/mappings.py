"""Load and check the per-source mapping files that translate a source's vocabulary."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from engine.config import RequestLimits
from engine.model import QUANTITIES, MovementType

# The canonical unit: a quantity in it is already a count of each.
EACH = "EA"
TABLES = ("sku_aliases", "locations", "units", "statuses")
# Bounds on what one file may declare; a marketplace's listing table is the large one.
ENTRIES_PER_TABLE_MAX = 1_000_000
FILES_MAX = 1_000
# Quantities a source may put units into; reserved and committed belong to the engine alone.
_SOURCE_STATES = tuple(q for q in QUANTITIES if q not in ("reserved", "committed"))
# The quantities each movement changes (DESIGN section 4), so `state` can be checked.
STATES_OF_TYPE: Mapping[MovementType, frozenset[str]] = MappingProxyType({
    MovementType.RECEIPT: frozenset({"on_hand", "incoming"}),
    MovementType.INBOUND_EXPECTED: frozenset({"incoming"}),
    MovementType.ADJUSTMENT: frozenset({"on_hand"}),
    MovementType.CYCLE_COUNT: frozenset({"on_hand"}),
    MovementType.SALE: frozenset({"on_hand"}),
    MovementType.SHIPMENT: frozenset({"on_hand", "committed"}),
    MovementType.RETURN_RECEIVED: frozenset({"on_hand", "quality_control"}),
    MovementType.RETURN_RESTOCKED: frozenset({"quality_control"}),
    MovementType.RETURN_SCRAPPED: frozenset({"on_hand", "quality_control"}),
    MovementType.DAMAGE: frozenset({"damaged"}),
    MovementType.TRANSFER_OUT: frozenset({"on_hand", "incoming"}),
    MovementType.TRANSFER_IN: frozenset({"on_hand", "incoming"}),
    MovementType.SAFETY_STOCK_SET: frozenset({"safety_stock"}),
})
# The movement a status with only `state` means: units arriving into that state.
TYPE_OF_STATE: Mapping[str, MovementType] = MappingProxyType({
    "on_hand": MovementType.RECEIPT,
    "incoming": MovementType.INBOUND_EXPECTED,
    "quality_control": MovementType.RETURN_RECEIVED,
    "damaged": MovementType.DAMAGE,
    "safety_stock": MovementType.SAFETY_STOCK_SET,
})
_EMPTY: Mapping = MappingProxyType({})


class MappingError(ValueError):
    """A mapping file that breaks a rule; the message names the file, the table and the key."""

    def __init__(self, file: str, table: str, key: str, rule: str) -> None:
        where = f"[{table}] {key}" if table and key else (f"[{table}]" if table else key)
        super().__init__(f"{file}: {where}: {rule}" if where else f"{file}: {rule}")
        self.file = file
        self.table = table
        self.key = key
        self.rule = rule

    def __reduce__(self):
        return (type(self), (self.file, self.table, self.key, self.rule))


class StatusMapping(NamedTuple):
    """What a source's stock status code means: a movement type and the state it fills."""

    type: MovementType
    state: str = ""  # "" when the file gave only a type


@dataclass(frozen=True)
class SourceMapping:
    """One source's tables; a table set to None was not declared, so strict skips it."""

    source: str
    strict: bool = False
    sku_aliases: Mapping[str, str] | None = None
    locations: Mapping[str, str] | None = None
    units: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    statuses: Mapping[str, StatusMapping] | None = None

    @cached_property
    def canonical_skus(self) -> frozenset[str]:
        """The SKUs the alias table maps to: a strict source may also name these directly."""
        return frozenset((self.sku_aliases or _EMPTY).values())

    @cached_property
    def canonical_locations(self) -> frozenset[str]:
        """The location ids the location table maps to, known to a strict source as well."""
        return frozenset((self.locations or _EMPTY).values())

    @property
    def is_pass_through(self) -> bool:
        """True for a source without tables or strictness: its core Movements need no work."""
        return not (self.strict or self.sku_aliases or self.locations or self.units
                    or self.statuses)


class Mappings:
    """Every source's mapping; a source without a file passes through unchanged."""

    def __init__(self, sources: Mapping[str, SourceMapping] | None = None) -> None:
        self._sources = MappingProxyType(dict(sources or {}))

    @classmethod
    def load(cls, directory: str | Path, limits: RequestLimits | None = None) -> Mappings:
        """Load every `<source>.toml` of a directory; any broken file refuses the whole set."""
        folder = Path(directory)
        if not folder.is_dir():
            raise MappingError(str(folder), "", "", "is not a directory")
        paths = sorted(folder.glob("*.toml"))
        if len(paths) > FILES_MAX:
            raise MappingError(str(folder), "", "", f"holds more than {FILES_MAX} mapping files")
        return cls({path.stem: load_file(path, limits) for path in paths})

    @property
    def sources(self) -> Mapping[str, SourceMapping]:
        """The sources that have a mapping file, by name."""
        return self._sources

    def for_source(self, name: str) -> SourceMapping:
        """The source's mapping, or a pass-through one for a source without a file."""
        mapping = self._sources.get(name)
        return mapping if mapping is not None else SourceMapping(name)


def load_file(path: str | Path, limits: RequestLimits | None = None) -> SourceMapping:
    """Read and check one mapping file; the source is the file's name without `.toml`."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise MappingError(path.name, "", "", f"is not valid TOML: {e}") from None
    except OSError as e:
        raise MappingError(path.name, "", "", f"cannot be read: {e.strerror}") from None
    return parse(path.stem, data, file=path.name, limits=limits)


def parse(source: str, data: Mapping[str, object], file: str = "",
          limits: RequestLimits | None = None) -> SourceMapping:
    """Check a parsed mapping document and build the source's mapping from it."""
    file = file or f"{source}.toml"
    check = _Checker(file, (limits or RequestLimits()).identifier_bytes_max)
    check.identifier("", "source name", source)
    for key in data:
        if key != "strict" and key not in TABLES:
            rule = f"is not a mapping setting (expected strict or one of {', '.join(TABLES)})"
            check.fail("", key, rule)
    strict = data.get("strict", False)
    if not isinstance(strict, bool):
        check.fail("", "strict", "must be true or false")
    sku_aliases = check.renames("sku_aliases", data)
    locations = check.renames("locations", data)
    units = check.units(data)
    statuses = check.statuses(data)
    return SourceMapping(source, strict, sku_aliases, locations, units, statuses)


class _Checker:
    """Builds each table of one file, raising the first broken rule with file, table and key."""

    def __init__(self, file: str, identifier_bytes_max: int) -> None:
        self.file = file
        self.identifier_bytes_max = identifier_bytes_max

    def fail(self, table: str, key: str, rule: str):
        raise MappingError(self.file, table, key, rule)

    def identifier(self, table: str, key: str, value: object) -> str:
        size_max = self.identifier_bytes_max
        if (not isinstance(value, str) or not value.isprintable()
                or not 1 <= len(value.encode("utf-8")) <= size_max):
            self.fail(table, key, f"must be 1 to {size_max} bytes of printable UTF-8")
        return value

    def table(self, name: str, data: Mapping[str, object]) -> Mapping[str, object] | None:
        table = data.get(name)
        if table is None:
            return None
        if not isinstance(table, dict):
            self.fail("", name, "must be a table")
        if len(table) > ENTRIES_PER_TABLE_MAX:
            self.fail(name, "", f"has more than {ENTRIES_PER_TABLE_MAX} entries")
        for key in table:
            self.identifier(name, repr(key), key)
        return table

    def renames(self, name: str, data: Mapping[str, object]) -> Mapping[str, str] | None:
        """An alias table: each key becomes its value, which must not itself be a key."""
        table = self.table(name, data)
        if table is None:
            return None
        renames = {key: self.identifier(name, key, value) for key, value in table.items()}
        for key, value in renames.items():
            # A chain would make normalizing twice differ from normalizing once.
            if value in renames and renames[value] != value:
                self.fail(name, key, f"maps to {value!r}, which is itself mapped; "
                                     "aliases do not chain")
        return MappingProxyType(renames)

    def units(self, data: Mapping[str, object]) -> Mapping[str, int]:
        table = self.table("units", data)
        if table is None:
            return _EMPTY
        for key, value in table.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self.fail("units", key, f"multiplier must be a positive integer, not {value!r}")
            if key == EACH and value != 1:
                self.fail("units", key, f"{EACH} is the canonical each; its multiplier is 1")
        return MappingProxyType(dict(table))

    def statuses(self, data: Mapping[str, object]) -> Mapping[str, StatusMapping] | None:
        table = self.table("statuses", data)
        if table is None:
            return None
        return MappingProxyType({key: self.status(key, value) for key, value in table.items()})

    def status(self, key: str, value: object) -> StatusMapping:
        if not isinstance(value, dict) or not value:
            self.fail("statuses", key, 'must be a table such as { type = "RECEIPT" }')
        for name in value:
            if name not in ("type", "state"):
                self.fail("statuses", key, f"{name!r} is not type or state")
        kind = value.get("type")
        state = value.get("state", "")
        if kind is not None and (not isinstance(kind, str)
                                 or kind not in MovementType.__members__):
            names = ", ".join(MovementType.__members__)
            self.fail("statuses", key, f"type {kind!r} is not a movement type ({names})")
        if not isinstance(state, str) or (state and state not in _SOURCE_STATES):
            self.fail("statuses", key, f"state {state!r} is not one of "
                                       f"{', '.join(_SOURCE_STATES)}")
        if kind is None:
            if not state:
                self.fail("statuses", key, "needs a type or a state")
            return StatusMapping(TYPE_OF_STATE[state], state)
        movement_type = MovementType[kind]
        if state and state not in STATES_OF_TYPE[movement_type]:
            self.fail("statuses", key, f"state {state!r} is not changed by {kind}")
        return StatusMapping(movement_type, state)
