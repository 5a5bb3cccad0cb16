"""cluster.yaml passes the Ray cluster launcher's own validation, as `ray up` applies it."""

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).parents[2] / "cluster.yaml"


def test_cluster_yaml_passes_ray_validation():
    """Ray's schema accepts it once Ray fills in its defaults, with a head and a worker type."""
    config = prepare_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    validate_config(config)
    assert config["head_node_type"] == "head"
    workers = config["available_node_types"]["workers"]
    assert workers["min_workers"] <= workers["max_workers"] <= config["max_workers"]


def test_cluster_yaml_starts_the_engine_on_every_node():
    """The head serves the engine and every worker runs a gateway in front of it."""
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert "availability serve --ray-address auto" in head
    assert "availability gateway --ray-address auto" in workers
