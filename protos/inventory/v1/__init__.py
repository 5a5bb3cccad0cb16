"""Version 1 of the inventory wire contract: the availability service and its messages."""
