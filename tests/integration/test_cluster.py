"""Several Ray nodes on this machine (a subprocess each run, since the session runs its own
Ray): a worker node lost under load, and a node added with partitions moved onto it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.conftest import REDIS_URL

SCRIPT_TIMEOUT_S = 300


def run_scenario(module: str) -> dict:
    """Run `python -m module` and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True,
                          timeout=SCRIPT_TIMEOUT_S,
                          env={"AVAILABILITY_TEST_REDIS_URL": REDIS_URL,
                               **os.environ})
    assert done.returncode == 0, done.stderr[-4000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(figures))  # the figures of the run, for whoever reads the log
    return figures


def test_worker_node_lost_under_load_loses_and_doubles_nothing():
    """A worker node removed without grace under load: its actor comes back on a surviving
    node, recovers its virtual partitions from Redis, every command is acknowledged again,
    and the state read back equals what was acknowledged."""
    figures = run_scenario("tests.cluster.node_loss")
    assert figures["problems"] == [] and figures["given_up"] == 0
    assert figures["restarted_on_surviving_node"]
    assert figures["failed_attempts"] > 0  # the loss was felt: the test saw a real outage
    # Clients saw refusals only while Ray noticed the loss and the actor recovered.
    assert figures["last_failed_attempt_after_kill_s"] < 60


def test_node_added_under_load_takes_partitions_moved_onto_its_new_actor():
    """A node added under load gets a new actor, two virtual partitions move
    onto it, the router finds it through the map, and nothing is lost or doubled."""
    figures = run_scenario("tests.cluster.scale_out")
    assert figures["problems"] == [] and figures["given_up"] == 0
    assert figures["failed_attempts"] == 0
    assert figures["new_actor_on_new_node"]
    assert sorted(figures["new_actor_hosts"]) == [0, 1]
    assert figures["gateway_owners"][:2] == [2, 2] and figures["gateway_actors"] == 3
