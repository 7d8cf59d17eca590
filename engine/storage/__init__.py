"""What the engine's data takes on disk: the usage ledger behind `docker system df` and the storage budget."""
