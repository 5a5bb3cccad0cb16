"""A publisher's watch of its channel, kept open: after a disconnect it resumes from the
last update applied (stream id and sequence), or takes the new snapshot it is sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from engine.publisher import SNAPSHOT, Change, ChannelPublisher

log = logging.getLogger(__name__)
# (resume_stream_id, resume_after_sequence) -> the channel's updates (AvailabilityUpdate-like:
# kind, sku, location, available_to_sell, sequence, updated_at_unix_ms, stream_id).
Watch = Callable[[str, int], AsyncIterator]


async def follow(watch: Watch, publisher: ChannelPublisher, sleep: Callable[[float], Awaitable],
                 reconnect_base_s: float = 0.1, reconnect_cap_s: float = 5.0) -> None:
    """Feed `publisher` every update of the channel until cancelled."""
    stream_id, sequence, failures = "", 0, 0
    while True:
        try:
            async for update in watch(stream_id, sequence):
                failures = 0
                publisher.offer(Change(int(update.kind), update.sku, update.location,
                                       update.available_to_sell, update.sequence,
                                       update.updated_at_unix_ms))
                if update.kind != SNAPSHOT:
                    # Not mid-snapshot: a resume from a snapshot item would skip the rest.
                    stream_id, sequence = update.stream_id, update.sequence
                await publisher.wait_for_room()
            log.warning("channel %s: watch ended; reconnecting", publisher.channel.name)
        except Exception as error:  # the gateway draining or away: resume where we were
            log.warning("channel %s: watch failed (%s); reconnecting",
                        publisher.channel.name, error)
        failures += 1
        await sleep(min(reconnect_cap_s, reconnect_base_s * 2 ** min(failures, 16)))
