"""Mapping files load into per-source tables; a broken one is refused naming file, table, key."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from engine.mappings import MappingError, Mappings, SourceMapping, StatusMapping, load_file, parse
from engine.model import MovementType

EXAMPLES = Path(__file__).resolve().parents[2] / "loadtest" / "mappings"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(data: dict, source: str = "erp") -> MappingError:
    with pytest.raises(MappingError) as caught:
        parse(source, data)
    return caught.value


def test_load_directory_one_mapping_per_toml_file(tmp_path):
    """Each `<source>.toml` becomes that source's mapping; other files are ignored."""
    write(tmp_path, "pos.toml", '[sku_aliases]\n"0123" = "SKU-1"\n[locations]\n"07" = "st-7"\n')
    write(tmp_path, "wms.toml", "strict = true\n[units]\nCS = 12\n")
    write(tmp_path, "notes.txt", "not a mapping")
    mappings = Mappings.load(tmp_path)
    assert set(mappings.sources) == {"pos", "wms"}
    pos = mappings.for_source("pos")
    assert pos.sku_aliases == {"0123": "SKU-1"} and pos.locations == {"07": "st-7"}
    assert not pos.strict
    assert mappings.for_source("wms").strict and mappings.for_source("wms").units == {"CS": 12}


def test_for_source_without_file_is_pass_through():
    """A source that has no file gets an empty, lenient mapping."""
    mapping = Mappings().for_source("returns-desk")
    assert mapping == SourceMapping("returns-desk")
    assert mapping.is_pass_through and not mapping.strict


def test_statuses_take_type_state_or_both():
    """A status names a movement type, a quantity state, or both when they agree."""
    mapping = parse("erp", {"statuses": {
        "UNRESTRICTED": {"type": "RECEIPT"},
        "QI": {"state": "quality_control"},
        "BLOCKED": {"type": "DAMAGE", "state": "damaged"},
        "IN_TRANSIT": {"state": "incoming"},
    }})
    assert mapping.statuses == {
        "UNRESTRICTED": StatusMapping(MovementType.RECEIPT),
        "QI": StatusMapping(MovementType.RETURN_RECEIVED, "quality_control"),
        "BLOCKED": StatusMapping(MovementType.DAMAGE, "damaged"),
        "IN_TRANSIT": StatusMapping(MovementType.INBOUND_EXPECTED, "incoming"),
    }


@pytest.mark.parametrize("multiplier", [0, -12, 1.5, "12", True])
def test_load_unit_multiplier_not_positive_integer_refused(multiplier):
    """A unit multiplier must be a positive integer."""
    error = refusal({"units": {"CS": multiplier}})
    assert (error.file, error.table, error.key) == ("erp.toml", "units", "CS")
    assert str(error).startswith("erp.toml: [units] CS: multiplier must be a positive integer")


def test_load_each_other_than_one_refused():
    """EA is the canonical unit, so it cannot be redefined."""
    assert "EA" in str(refusal({"units": {"EA": 6}}))


def test_load_unknown_movement_type_refused():
    """A status naming a type that is not a MovementType is refused, listing the real names."""
    error = refusal({"statuses": {"QI": {"type": "QUALITY_HOLD"}}})
    assert (error.table, error.key) == ("statuses", "QI")
    assert "'QUALITY_HOLD' is not a movement type" in str(error) and "RECEIPT" in str(error)


@pytest.mark.parametrize("entry, words", [
    ({"state": "reserved"}, "state 'reserved' is not one of"),
    ({"state": "sellable"}, "state 'sellable' is not one of"),
    ({"type": "RECEIPT", "state": "damaged"}, "state 'damaged' is not changed by RECEIPT"),
    ({}, "must be a table"),
    ({"kind": "RECEIPT"}, "'kind' is not type or state"),
    ("RECEIPT", "must be a table"),
])
def test_load_bad_status_entry_refused(entry, words):
    """A status entry with an unknown or inconsistent state, or a wrong shape, is refused."""
    error = refusal({"statuses": {"BLOCKED": entry}})
    assert (error.table, error.key) == ("statuses", "BLOCKED")
    assert words in str(error)


def test_load_alias_chain_refused():
    """An alias whose SKU is itself an alias is refused, so normalizing is idempotent."""
    error = refusal({"sku_aliases": {"A": "B", "B": "C"}})
    assert (error.table, error.key) == ("sku_aliases", "A")
    assert "do not chain" in str(error)


@pytest.mark.parametrize("data, table, key", [
    ({"sku_alias": {}}, "", "sku_alias"),
    ({"strict": "yes"}, "", "strict"),
    ({"locations": ["0101"]}, "", "locations"),
    ({"locations": {"0101": ""}}, "locations", "0101"),
    ({"locations": {"0101": 101}}, "locations", "0101"),
    ({"sku_aliases": {"U": "x" * 129}}, "sku_aliases", "U"),
])
def test_load_bad_shape_refused(data, table, key):
    """A misspelt table, a non-boolean strict, or an invalid identifier names where it is."""
    error = refusal(data)
    assert (error.file, error.table, error.key) == ("erp.toml", table, key)


def test_load_invalid_toml_names_file(tmp_path):
    """A file that is not TOML refuses the whole directory, naming the file."""
    write(tmp_path, "good.toml", "strict = false\n")
    write(tmp_path, "pos.toml", "[units\nCS = 12\n")
    with pytest.raises(MappingError, match=r"^pos\.toml: is not valid TOML"):
        Mappings.load(tmp_path)


def test_load_missing_directory_refused(tmp_path):
    """A mappings directory that does not exist is an error, not an empty set."""
    with pytest.raises(MappingError, match="is not a directory"):
        Mappings.load(tmp_path / "absent")


def test_load_file_uses_file_name_as_source(tmp_path):
    """The file's stem is the source name, and errors name the file itself."""
    path = write(tmp_path, "3pl-east.toml", "[units]\nCS = -1\n")
    with pytest.raises(MappingError, match=r"^3pl-east\.toml: \[units\] CS:"):
        load_file(path)
    path.write_text("[units]\nCS = 24\n", encoding="utf-8")
    assert load_file(path).source == "3pl-east"


def test_mapping_error_survives_pickling():
    """A MappingError crossing a process keeps its file, table and key."""
    error = pickle.loads(pickle.dumps(MappingError("a.toml", "units", "CS", "bad")))
    assert (error.file, error.table, error.key, error.rule) == ("a.toml", "units", "CS", "bad")
    assert str(error) == "a.toml: [units] CS: bad"


def test_example_mappings_load():
    """The example folder in loadtest/ loads: a lenient POS, a strict marketplace, a strict ERP."""
    mappings = Mappings.load(EXAMPLES)
    assert set(mappings.sources) == {"pos", "marketplace", "erp"}
    assert not mappings.for_source("pos").strict
    assert mappings.for_source("marketplace").strict
    erp = mappings.for_source("erp")
    assert erp.units["CS"] == 12
    assert erp.statuses["QUALITY_INSPECTION"].type is MovementType.RETURN_RECEIVED
