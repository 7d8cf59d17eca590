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


# The Go field names of docker's version structs that differ from their JSON keys.
GO_NAMES = {"APIVersion": "ApiVersion"}


def client_version(context: str) -> dict[str, Any]:
    """The docker CLI's client version struct as JSON; GoVersion names the runtime this CLI runs on, as Go's
    runtime.Version() does (`go1.24.3`)."""
    # Only the commands showing it need the package's own version: the metadata lookup stays out of start-up.
    from importlib.metadata import version as package_version

    return {"Version": package_version("pyengine"), "ApiVersion": API_VERSION, "DefaultAPIVersion": API_VERSION,
            "GoVersion": "python%d.%d.%d" % sys.version_info[:3], "Os": "linux", "Arch": _arch(),
            "Context": context}


def show(engine: Callable[[], Engine], format_: str | None, context: str) -> None:
    client = client_version(context)
    server: dict[str, Any] | None = None
    failure: CLIError | None = None
    try:
        e = engine()
        server = e.get("/version")
        client["ApiVersion"] = e.version
    except CLIError as err:
        failure = err
    api = client["ApiVersion"]
    if api != client["DefaultAPIVersion"]:
        api += f" (downgraded from {client['DefaultAPIVersion']})"
    if format_:
        from cli.pyengine.formatting import Template
        from cli.pyengine.gotemplate_funcs import GoFields

        try:
            print(Template(format_).render({"Client": GoFields(client, GO_NAMES),
                                            "Server": None if server is None else GoFields(server, GO_NAMES)}))
        except CLIError:
            # As docker: without a daemon, a template of the client's fields is printed before the failure.
            if failure is None:
                raise
    else:
        print("Client:")
        fields(" ", [("Version", client["Version"]), ("API version", api),
                     ("Python version", client["GoVersion"].removeprefix("python")),
                     ("OS/Arch", f"linux/{client['Arch']}")])
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
