"""The gRPC gateway: validation, routing and per-partition coalescing in front of the partitions."""
