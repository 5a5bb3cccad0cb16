"""The command line refuses nonsensical options, naming them, before starting anything."""

import pytest

from engine.cli import main


@pytest.mark.parametrize("argv, option", [
    (["demo", "--partitions", "0"], "--partitions"),
    (["serve", "--partitions", "0"], "--partitions"),
    (["serve", "--gateways", "0"], "--gateways"),
    (["serve", "--queue-commands-max", "0"], "--queue-commands-max"),
    (["serve", "--port", "70000"], "--port"),
])
def test_cli_refuses_a_bad_option(argv, option, capsys):
    """A bad count or port exits with status 2 and names the option (Ray is never started)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert option in capsys.readouterr().err
