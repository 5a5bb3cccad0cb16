"""Regenerate the Python code of the wire contract, or check that the committed code is current."""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PROTOS = ("inventory/v1/availability.proto",)
GENERATED = tuple(
    proto.removesuffix(".proto") + suffix
    for proto in PROTOS
    for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
)


def generate(out_dir: Path) -> None:
    """Write the generated modules of every proto under `out_dir`."""
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(PROTO_ROOT / proto) for proto in PROTOS),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")


def stale_files() -> list[str]:
    """Return the committed generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in GENERATED
            if not (PROTO_ROOT / name).is_file()
            or not filecmp.cmp(Path(tmp) / name, PROTO_ROOT / name, shallow=False)
        ]


def main(argv: list[str] | None = None) -> int:
    """Regenerate in place, or with --check report stale files and return 1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args(argv)
    if not args.check:
        generate(PROTO_ROOT)
        return 0
    stale = stale_files()
    for name in stale:
        print(f"stale: protos/{name} (run python protos/generate.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
