"""The demo's ERP: the simulator, the sync job draining into it, and a reconciliation."""

from __future__ import annotations

import asyncio
import time

from engine.config import ErpSyncConfig
from engine.erp_client import RestErp
from engine.erp_sync import ErpSync
from engine.journal_store import connect
from engine.reconcile import reconcile
from loadtest.erp_config import SimulatorConfig
from loadtest.erp_sim import SIMULATOR, start_simulator

DRAIN_WAIT_S = 30.0


class DemoErp:
    """A simulated ERP that knows the stock it sent the engine, kept in step by the sync job."""

    def __init__(self, redis_url: str, namespace: str, partitions: int) -> None:
        self._client = connect(redis_url)
        self._namespace, self._partitions = namespace, partitions
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._runner, port = await start_simulator(SimulatorConfig(port=0))
        self.ledger = self._runner.app[SIMULATOR].ledger
        self._erp = RestErp(f"http://127.0.0.1:{port}")
        # A short window, so the demo's few changes arrive within a second or so.
        self._config = ErpSyncConfig(key_prefix=self._namespace, window_s=0.2)
        self.sync = ErpSync(self._client, self._erp, self._partitions, self._config)
        self._syncing = asyncio.create_task(self.sync.run(self._stop))

    def knows(self, sku: str, location: str, on_hand: int) -> None:
        """The ERP's own figure (it made the import or the count the engine was sent)."""
        self.ledger.set_row(sku, location, on_hand)

    def adds(self, sku: str, location: str, units: int) -> None:
        """A receipt the ERP made itself. The simulator shares this event loop, so nothing
        the sync job posts can land between the read and the write."""
        row = self.ledger.row(sku, location)
        self.ledger.set_row(sku, location, (row.on_hand if row else 0) + units)

    async def report(self, out) -> None:
        """Wait for the sync job to drain, then reconcile, and say how it went."""
        deadline = time.monotonic() + DRAIN_WAIT_S
        while await asyncio.to_thread(self.sync.backlog_commands):
            if time.monotonic() > deadline:
                out("The ERP sync job has not caught up yet.")
                break
            await asyncio.sleep(0.1)
        stats = self.sync.stats
        comparison = await reconcile(self._client, self._erp, self._partitions, self._config)
        out(f"\nThe ERP was kept in step: {stats.lines_posted} net line(s) in "
            f"{stats.batches_posted} call(s), never echoing its own receipts and count; "
            f"reconciliation over {comparison.items_compared:,} SKU-locations finds "
            f"{len(comparison.drift)} with drift.")

    async def stop(self) -> None:
        self._stop.set()
        await self._syncing
        await self._erp.close()
        await self._runner.cleanup()
        self._client.close()
