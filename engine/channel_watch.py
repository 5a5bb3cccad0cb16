"""The reads behind WatchAvailability: channel figures of what changed, or of a page of SKUs."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.model import ChannelFigure, Outcome, WatchChanges, WatchResult, WatchSnapshot

if TYPE_CHECKING:
    from engine.partition_state import PartitionState


def changes(state: PartitionState, command: WatchChanges) -> WatchResult:
    """Figures of the SKU-locations changed since the cursor (and of their SKUs' networks).

    The first call (an empty cursor) only takes a cursor; a cursor the ring no longer
    covers answers `refresh`, so the watcher re-reads every SKU instead of missing some.
    """
    ledger = state.item_ledger
    cursor = (ledger.instance, ledger.total)
    if not command.ring:
        return WatchResult(Outcome.OK, *cursor, False, ())
    rows = ledger.rows_since(command.total) if command.ring == ledger.instance else None
    if rows is None:
        return WatchResult(Outcome.OK, *cursor, True, ())
    return WatchResult(Outcome.OK, *cursor, False,
                       tuple(figures_of(state, command.channels, rows, every_row=False)))


def snapshot_page(state: PartitionState, command: WatchSnapshot) -> WatchResult:
    """Figures of every location of the named SKUs, or of the next page of the partition's
    SKUs; with the cursor to watch changes from afterwards."""
    ledger, rows_of_sku = state.item_ledger, state.items.rows_of_sku
    if command.skus:
        skus, next_after = [sku for sku in command.skus if sku in rows_of_sku], -1
    else:
        skus = list(itertools.islice(rows_of_sku, command.after,
                                     command.after + command.limit))
        next_after = command.after + len(skus) if len(skus) == command.limit else -1
    rows = [row for sku in skus for row in rows_of_sku[sku]]
    return WatchResult(Outcome.OK, ledger.instance, ledger.total, False,
                       tuple(figures_of(state, command.channels, rows, every_row=True)),
                       next_after)


def figures_of(state: PartitionState, channel_names: tuple[str, ...], rows: Iterable[int],
               every_row: bool) -> list[ChannelFigure]:
    """Per SKU of `rows`: the figure at each of those rows, then the SKU's network figure.

    A figure is None for a channel that does not sell at that location (or, with rules
    changed under a watcher, no longer exists). The network figure sums every location
    of the SKU, so it needs them all even when one changed.
    """
    book, items = state.channel_book, state.items
    channels = [book.channel(name) if book.rules.knows(name) else None
                for name in channel_names]
    changed_of_sku: dict[str, list[int]] = {}
    for row in rows:
        changed_of_sku.setdefault(items.row_sku[row], []).append(row)
    answers: list[ChannelFigure] = []
    for sku, changed in changed_of_sku.items():
        all_rows = items.rows_of_sku[sku]
        shown = set(all_rows if every_row else changed)
        network = [0 if channel is not None else None for channel in channels]
        for row in all_rows:
            location = items.locations[items.row_location[row]]
            figures = tuple(None if channel is None or not book.sells_at(channel, items, row)
                            else book.figure_of_row(channel, items, row)
                            for channel in channels)
            for index, figure in enumerate(figures):
                if figure is not None:
                    network[index] += figure
            if row in shown:
                answers.append(ChannelFigure(sku, location, figures))
        answers.append(ChannelFigure(sku, "", tuple(network)))
    return answers
