"""A container's filesystem from the outside: `docker cp` both ways, `docker diff`, `docker export`."""
