"""pyengine: the docker-like CLI of pyengined (Typer, over the Engine API on a unix socket)."""
