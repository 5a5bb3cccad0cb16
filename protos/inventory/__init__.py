"""Generated protobuf and gRPC code for the inventory wire contract."""
