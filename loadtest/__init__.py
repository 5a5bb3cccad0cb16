"""Load tests and benchmarks of the engine."""
