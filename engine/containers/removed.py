"""What a removed container still shows while its logs are retained (engine/logs/retention.py).

`docker logs` inspects its container before it asks for the logs (it needs the full ID and whether the
output is a TTY's), so inspect answers for a removed container inside its window, from its last record,
with `State.Status` "removed": nothing else (list, start, exec, rm...) sees it.
"""
from __future__ import annotations

from typing import Any

from engine.containers import views
from engine.containers.store import Container, Storage
from engine.logs.retention import Removed

REMOVED = "removed"

_NO_NETWORK: dict[str, Any] = {
    "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
    "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
    "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0,
    "IPv6Gateway": "", "MacAddress": "", "Networks": {},
}


def inspect(r: Removed) -> dict[str, Any]:
    c = Container.model_validate(r.record)
    doc = views.inspect(c, storage=Storage(), exec_ids=[], mounts=[], network_settings=dict(_NO_NETWORK))
    doc["State"] = {**doc["State"], "Status": REMOVED, "Running": False, "Paused": False, "Restarting": False,
                    "Pid": 0}
    doc["LogPath"] = ""
    return doc
