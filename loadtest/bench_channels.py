"""Flash sale through a late-hearing marketplace, fixed buffers then velocity buffers, in one
run: prints both runs' counts and a last line `oversold_units fixed=N velocity=M`.

    python loadtest/bench_channels.py [--seed 7] [--feed-lag-s 5] [--cadence-s 2]

In-process engine on a simulated clock (loadtest/channel_flash.py): deterministic per seed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from loadtest.channel_flash import FlashConfig, compare, summary


def main() -> None:
    defaults = FlashConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("seed", "skus", "units_per_location", "duration_s", "market_orders_per_s",
                 "web_orders_per_s", "feed_lag_s", "cadence_s", "fixed_buffer_units",
                 "half_life_s"):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args()
    config = dataclasses.replace(defaults, **{name: getattr(args, name) for name in vars(args)})
    fixed, velocity = asyncio.run(compare(config))
    for result in (fixed, velocity):
        print(json.dumps(summary(result)))
    print(f"oversold_units fixed={fixed.market.oversold_units} "
          f"velocity={velocity.market.oversold_units} "
          f"(orders fixed={fixed.market.oversold_orders} "
          f"velocity={velocity.market.oversold_orders}; "
          f"units sold fixed={fixed.market.units_sold} velocity={velocity.market.units_sold})")


if __name__ == "__main__":
    main()
