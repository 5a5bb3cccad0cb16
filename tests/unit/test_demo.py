"""`availability demo`, the README's first command, tells its story with the right numbers."""

import pytest

from engine import demo
from engine.cli import main


def test_demo_flash_sale_holds_exactly_the_stock_and_prints_the_table():
    """40 shoppers on 25 units: 25 held, 15 refused, and the final figures add up."""
    lines: list[str] = []
    demo.run(skus=50, partitions=2, out=lines.append)
    text = "\n".join(lines)
    assert "held 25, rejected 15: nothing oversold." in text
    assert "10 abandoned holds have expired" in text
    dc_east = next(line for line in lines if line.startswith("SKU-000001  dc-east"))
    # 25 counted - 4 shipped + 12 received = 33 on hand; 6 still committed: ATS 27.
    assert dc_east.split()[2:] == ["33", "0", "6", "0", "0", "0", "0", "27"]


def test_demo_command_refuses_a_bad_partition_count(capsys):
    """A nonsensical option is refused with a message naming it."""
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--partitions", "0"])
    assert exit_.value.code == 2
    assert "--partitions" in capsys.readouterr().err
