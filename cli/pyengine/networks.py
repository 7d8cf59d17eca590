"""Network commands: network create, ls, inspect, rm, prune, connect, disconnect."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

from typing import Annotated, Any

import typer

from cli.pyengine import completion as complete
from cli.pyengine.api import CLIError, DaemonError, path_quote
from cli.pyengine.app import config_format, confirm, engine, for_each, inspect_each, key_values, network_app
from cli.pyengine.formatting import Record, Template, filters, go_time, natural_key

_LS_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
_LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
               "IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
_PRUNE_WARNING = ("WARNING! This will remove all custom networks not used by at least one container.\n"
                  "Are you sure you want to continue?")


def _ipam_configs(subnets: list[str], ranges: list[str], gateways: list[str]) -> list[dict[str, str]]:
    """docker's consolidateIpam: each --ip-range and --gateway joins the --subnet it lies in."""
    # Only network create with addresses pays for the module.
    import ipaddress

    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    networks = {}
    for s in subnets:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            raise CLIError(f"invalid subnet: invalid CIDR address: {s}") from None
        if any(net.overlaps(other) for other in networks.values() if other.version == net.version):
            raise CLIError("multiple overlapping subnet configuration is not allowed")
        networks[s] = net
    configs = {s: {"Subnet": s} for s in subnets}

    def place(value: str, key: str, what: str) -> None:
        try:
            address = ipaddress.ip_interface(value).ip
        except ValueError:
            address = None
        matches = [s for s, net in networks.items() if address is not None and address in net]
        if not matches:
            raise CLIError(f"no matching subnet for {what} {value}")
        for s in matches:
            if key in configs[s]:
                plural = "ranges" if what == "range" else "gateways"
                raise CLIError(f"cannot configure multiple {plural} ({value}, {configs[s][key]}) "
                               f"{'on' if what == 'range' else 'for'} the same subnet ({s})")
            configs[s][key] = value

    for r in ranges:
        place(r, "IPRange", "range")
    for g in gateways:
        place(g, "Gateway", "gateway")
    return list(configs.values())


@network_app.command("create")
def network_create(
    name: Annotated[str, typer.Argument(metavar="NETWORK", autocompletion=complete.networks)],
    driver: Annotated[str, typer.Option("-d", "--driver", help="Driver to manage the network.")] = "bridge",
    subnet: Annotated[list[str] | None, typer.Option("--subnet", help="Subnet in CIDR format.")] = None,
    gateway: Annotated[list[str] | None, typer.Option("--gateway", help="Gateway of the subnet.")] = None,
    ip_range: Annotated[list[str] | None, typer.Option("--ip-range",
                                                       help="Allocate container addresses from a sub-range.")] = None,
    internal: Annotated[bool, typer.Option("--internal", help="Restrict external access to the network.")] = False,
    attachable: Annotated[bool, typer.Option("--attachable", help="Enable manual container attachment.")] = False,
    label: Annotated[list[str] | None, typer.Option("--label", help="Set a label KEY=VALUE.")] = None,
    opt: Annotated[list[str] | None, typer.Option("-o", "--opt", help="Set a driver option KEY=VALUE.")] = None,
) -> None:
    """Create a network."""
    created = engine().post("/networks/create", body={
        "Name": name, "CheckDuplicate": True, "Driver": driver, "Options": key_values(opt),
        "IPAM": {"Driver": "default", "Config": _ipam_configs(subnet or [], ip_range or [], gateway or []),
                 "Options": {}},
        "Internal": internal, "Attachable": attachable, "Labels": key_values(label)})
    print(created["Id"])


def _ls_record(n: dict[str, Any], trunc: bool) -> Record:
    labels = n.get("Labels") or {}
    return Record("*network.formatContext", {
        "ID": n["Id"][:12] if trunc else n["Id"], "Name": n.get("Name", ""), "Driver": n.get("Driver", ""),
        "Scope": n.get("Scope", ""), "IPv4": str(bool(n.get("EnableIPv4"))).lower(),
        "IPv6": str(bool(n.get("EnableIPv6"))).lower(), "Internal": str(bool(n.get("Internal"))).lower(),
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        "CreatedAt": go_time(n.get("Created", "")),
    }, {"Label": lambda name: labels.get(name, "")})


@network_app.command("ls")
def network_ls(
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only display network IDs.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, or 'table ...'.")] = None,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Do not truncate the output.")] = False,
) -> None:
    """List networks."""
    found = engine().get("/networks", {"filters": filters(filter_)})
    rows = [_ls_record(n, not no_trunc) for n in sorted(found, key=lambda n: natural_key(n.get("Name", "")))]
    spec = format_ or config_format("networksFormat")
    if quiet or spec in (None, "", "table"):
        spec = "{{.ID}}" if quiet else _LS_FORMAT
    print(Template(spec).lines(rows, _LS_HEADERS), end="")


@network_app.command("inspect")
def network_inspect(
    names: Annotated[list[str], typer.Argument(metavar="NETWORK", autocompletion=complete.networks)],
    format_: Annotated[str | None, typer.Option("-f", "--format", help="Go-template-like format.")] = None,
) -> None:
    """Display detailed information on one or more networks."""
    e = engine()
    inspect_each(names, lambda name: e.get(f"/networks/{path_quote(name)}"), format_)


@network_app.command("rm")
def network_rm(
    names: Annotated[list[str], typer.Argument(metavar="NETWORK", autocompletion=complete.networks)],
    force: Annotated[bool, typer.Option("-f", "--force", help="Do not error if the network does not exist.")]
    = False,
) -> None:
    """Remove one or more networks."""
    e = engine()

    def remove(name: str) -> None:
        try:
            e.call("DELETE", f"/networks/{path_quote(name)}")
        except DaemonError as err:
            if not (force and err.status == 404):
                raise
            return
        print(name)

    for_each(names, remove)


@network_app.command("prune")
def network_prune(
    force: Annotated[bool, typer.Option("-f", "--force", help="Do not prompt for confirmation.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="Filter KEY=VALUE (e.g. label=x).")] = None,
) -> None:
    """Remove all unused networks."""
    if not force and not confirm(_PRUNE_WARNING):
        return
    deleted = engine().post("/networks/prune", {"filters": filters(filter_)}).get("NetworksDeleted") or []
    if deleted:
        print("Deleted Networks:\n" + "".join(name + "\n" for name in deleted))


@network_app.command("connect")
def network_connect(
    network: Annotated[str, typer.Argument(metavar="NETWORK", autocompletion=complete.networks)],
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    ip: Annotated[str | None, typer.Option("--ip", help="IPv4 address.")] = None,
    alias: Annotated[list[str] | None, typer.Option("--alias", help="Network-scoped alias (repeatable).")] = None,
) -> None:
    """Connect a container to a network."""
    endpoint: dict[str, Any] = {"Aliases": alias or None}
    if ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ip}
    engine().post(f"/networks/{path_quote(network)}/connect", body={"Container": container,
                                                                    "EndpointConfig": endpoint})


@network_app.command("disconnect")
def network_disconnect(
    network: Annotated[str, typer.Argument(metavar="NETWORK", autocompletion=complete.networks)],
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    force: Annotated[bool, typer.Option("-f", "--force", help="Force the container to disconnect.")] = False,
) -> None:
    """Disconnect a container from a network."""
    engine().post(f"/networks/{path_quote(network)}/disconnect", body={"Container": container, "Force": force})
