"""The Availability Engine core: the canonical inventory model and its partition state machine."""
