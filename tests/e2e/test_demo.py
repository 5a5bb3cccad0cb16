"""`availability demo`, the README's first command, tells its story over gRPC correctly."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import AVAILABILITY

DEMO_TIMEOUT_S = 180


def test_demo_flash_sale_holds_exactly_the_stock_and_prints_the_table(ray_address, tmp_path):
    """40 shoppers on 25 units: 25 held, 15 refused, 10 holds expire, and the figures add up."""
    run = subprocess.run(
        [*AVAILABILITY, "demo", "--skus", "50", "--partitions", "2",
         "--ray-address", ray_address, "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-5_000:]
    lines = run.stdout.splitlines()
    assert "  held 25, rejected 15: nothing oversold." in lines
    assert "Once their 2-second TTL passes, 10 abandoned holds expire by themselves." in lines
    dc_east = next(line for line in lines if line.startswith("SKU-000001  dc-east"))
    # 25 counted - 4 shipped + 12 received = 33 on hand; 6 still committed: ATS 27.
    assert dc_east.split()[2:] == ["33", "0", "6", "0", "0", "0", "0", "27"]
    erp_line = next(line for line in lines if line.startswith("The ERP was kept in step"))
    assert erp_line.endswith("finds 0 with drift."), erp_line
