"""`pyengine version`, without Typer: the command line's fast path (main.py) runs it directly, so that the
command scripts call most to see whether a daemon is there starts in a third of the time the others take."""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

from cli.pyengine.api import API_VERSION, CLIError, Engine


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def fields(indent: str, pairs: list[tuple[str, Any]]) -> None:
    width = max(len(key) for key, _ in pairs) + 2
    for key, value in pairs:
        print(f"{indent}{key + ':':<{width}}{value}")


def show(engine: Callable[[], Engine], format_: str | None) -> None:
    # Only this command needs the package's own version: the metadata lookup stays out of start-up.
    from importlib.metadata import version as package_version

    client = {"Version": package_version("pyengine"), "ApiVersion": API_VERSION, "DefaultAPIVersion": API_VERSION,
              "PythonVersion": "%d.%d.%d" % sys.version_info[:3], "Os": "linux", "Arch": _arch()}
    server: dict[str, Any] | None = None
    failure: CLIError | None = None
    try:
        e = engine()
        server = e.get("/version")
        client["ApiVersion"] = e.version
    except CLIError as err:
        failure = err
    api = client["ApiVersion"]
    if api != API_VERSION:
        api += f" (downgraded from {API_VERSION})"
    if format_ and failure is not None:
        raise failure
    if format_:
        from cli.pyengine.formatting import Template

        print(Template(format_).render({"Client": client, "Server": server}))
    else:
        print("Client:")
        fields(" ", [("Version", client["Version"]), ("API version", api),
                      ("Python version", client["PythonVersion"]), ("OS/Arch", f"linux/{client['Arch']}")])
        if server is not None:
            print(f"\nServer: {(server.get('Platform') or {}).get('Name', '')}")
            for component in server.get("Components") or []:
                print(f" {component['Name']}:")
                details = component.get("Details") or {}
                pairs = [("Version", component.get("Version", ""))]
                if component["Name"] == "Engine":
                    pairs += [("API version", f"{server['ApiVersion']} (minimum version {server['MinAPIVersion']})"),
                              ("Python version", server.get("GoVersion", "")),
                              ("Git commit", server.get("GitCommit", "")),
                              ("OS/Arch", f"{server.get('Os')}/{server.get('Arch')}"),
                              ("Experimental", str(server.get("Experimental", False)).lower())]
                else:
                    pairs += sorted(details.items())
                fields("  ", pairs)
    if failure is not None:
        raise failure
