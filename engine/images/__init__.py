"""Docker images over the runtime: IDs, names, lookup, pull progress, list/inspect/history views."""
