"""Network commands: network create, ls, inspect, rm, prune, connect, disconnect."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

from typing import Annotated, Any

import typer

from cli.pyengine import completion as complete
from cli.pyengine.api import CLIError, DaemonError, path_quote
from cli.pyengine.app import config_format, confirm, engine, for_each, inspect_each, key_values, network_app
from cli.pyengine.formatting import Template, filters, natural_key
from cli.pyengine.gotemplate_funcs import Record, go_time

_LS_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
_LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
               "IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
_PRUNE_WARNING = ("WARNING! This will remove all custom networks not used by at least one container.\n"
                  "Are you sure you want to continue?")


def _ipam_configs(subnets: list[str], ranges: list[str], gateways: list[str],
                  aux: dict[str, str]) -> list[dict[str, Any]]:
    """docker's consolidateIpam: each --ip-range, --gateway and --aux-address joins the --subnet it lies in."""
    # Only network create with addresses pays for the module.
    import ipaddress

    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    networks: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
    for s in subnets:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            raise CLIError(f"invalid subnet: invalid CIDR address: {s}") from None
        if any(net.overlaps(other) for other in networks.values() if other.version == net.version):
            raise CLIError("multiple overlapping subnet configuration is not allowed")
        networks[s] = net
    configs: dict[str, dict[str, Any]] = {s: {"Subnet": s} for s in subnets}

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
    for aux_name, address in aux.items():
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        matches = [s for s, net in networks.items() if ip is not None and ip in net]
        if not matches:
            raise CLIError(f"no matching subnet for aux-address {address}")
        for s in matches:
            configs[s].setdefault("AuxiliaryAddresses", {})[aux_name] = address
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
    aux_address: Annotated[list[str] | None, typer.Option(
        "--aux-address", help="An address the IPAM driver must not hand out NAME=IP.")] = None,
    ipam_driver: Annotated[str, typer.Option("--ipam-driver", help="IP address management driver.")] = "default",
    ipam_opt: Annotated[list[str] | None, typer.Option("--ipam-opt", help="An IPAM driver option KEY=VALUE.")]
    = None,
    # Unset leaves it to the daemon; --ipv4=false (read by goflags.py) turns it off.
    ipv4: Annotated[bool | None, typer.Option("--ipv4", help="Enable or disable IPv4 (--ipv4=false).")] = None,
    ipv6: Annotated[bool, typer.Option("--ipv6", help="Enable IPv6 addressing.")] = False,
    scope: Annotated[str, typer.Option("--scope", help="Control the network's scope.")] = "",
    config_only: Annotated[bool, typer.Option("--config-only", help="Create a configuration-only network.")]
    = False,
    config_from: Annotated[str | None, typer.Option("--config-from", help="The network to copy the configuration "
                                                                          "from.")] = None,
    ingress: Annotated[bool, typer.Option("--ingress", help="Create a swarm routing-mesh network.")] = False,
) -> None:
    """Create a network."""
    body: dict[str, Any] = {
        "Name": name, "Driver": driver, "Scope": scope, "Options": key_values(opt),
        "IPAM": {"Driver": ipam_driver, "Options": key_values(ipam_opt),
                 "Config": _ipam_configs(subnet or [], ip_range or [], gateway or [], key_values(aux_address))},
        "Internal": internal, "Attachable": attachable, "Ingress": ingress, "ConfigOnly": config_only,
        "ConfigFrom": {"Network": config_from} if config_from else None, "Labels": key_values(label)}
    # Sent only when given: the daemon's defaults apply otherwise.
    if ipv4 is not None:
        body["EnableIPv4"] = ipv4
    if ipv6:
        body["EnableIPv6"] = True
    print(engine().post("/networks/create", body=body)["Id"])


def _ls_record(n: dict[str, Any], trunc: bool) -> Record:
    labels = n.get("Labels") or {}
    return Record("*network.formatContext", {
        "ID": n["Id"][:12] if trunc else n["Id"], "Name": n.get("Name", ""), "Driver": n.get("Driver", ""),
        "Scope": n.get("Scope", ""), "IPv4": str(bool(n.get("EnableIPv4"))).lower(),
        "IPv6": str(bool(n.get("EnableIPv6"))).lower(), "Internal": str(bool(n.get("Internal"))).lower(),
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        "CreatedAt": go_time(n.get("Created", "")),
    }, {"Label": lambda name: labels.get(name, "")})


@network_app.command("list", hidden=True)  # docker's alias
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
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Verbose output for diagnostics.")] = False,
) -> None:
    """Display detailed information on one or more networks."""
    e = engine()
    query = {"verbose": "true" if verbose else None}
    inspect_each(names, lambda name: e.get(f"/networks/{path_quote(name)}", query), format_)


@network_app.command("remove", hidden=True)  # docker's alias
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
    ip6: Annotated[str | None, typer.Option("--ip6", help="IPv6 address.")] = None,
    link: Annotated[list[str] | None, typer.Option("--link", help="Link to a container NAME[:ALIAS].")] = None,
    link_local_ip: Annotated[list[str] | None, typer.Option("--link-local-ip", help="A link-local address.")]
    = None,
    driver_opt: Annotated[list[str] | None, typer.Option("--driver-opt", help="A driver option KEY=VALUE.")]
    = None,
    gw_priority: Annotated[int, typer.Option("--gw-priority", help="The gateway priority of the network.")] = 0,
) -> None:
    """Connect a container to a network."""
    from cli.pyengine.netopts import link as checked_link

    ipam = {key: value for key, value in (("IPv4Address", ip), ("IPv6Address", ip6),
                                          ("LinkLocalIPs", link_local_ip)) if value}
    endpoint: dict[str, Any] = {
        "IPAMConfig": ipam, "Links": [checked_link(spec) for spec in link or []] or None, "Aliases": alias or [],
        "DriverOpts": key_values(driver_opt), "GwPriority": gw_priority, "NetworkID": "",
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DNSNames": None}
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
