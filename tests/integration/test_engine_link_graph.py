"""Legacy links through rename and `rm --link`, as dockerd's link graph shows them: a renamed linked container or
parent is seen at once in the parent's HostConfig.Links, and the links keep working at the next start; a running
parent whose link is removed gets its /etc/hosts written again without it (libnetwork's sandbox Refresh) while its
process keeps the link's variables."""
from __future__ import annotations

import json

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def links_of(engine, name: str) -> list[str] | None:
    return json.loads(ok(engine, "inspect", "--format", "{{json .HostConfig.Links}}", name))


def test_rename_rewrites_the_links_naming_the_renamed_container(engine) -> None:
    ok(engine, "run", "-d", "--name", "gdb", "busybox", "sleep", "100")
    ok(engine, "create", "--name", "gweb", "--link", "gdb:store", "busybox", "sh", "-c", "env; cat /etc/hosts")
    ok(engine, "rename", "gdb", "gdb2")
    assert links_of(engine, "gweb") == ["/gdb2:/gweb/store"]
    ok(engine, "rename", "gweb", "gweb2")
    assert links_of(engine, "gweb2") == ["/gdb2:/gweb2/store"]
    # The renamed link still resolves at start, under its new names.
    ip = json.loads(ok(engine, "inspect", "gdb2"))[0]["NetworkSettings"]["IPAddress"]
    out = ok(engine, "start", "-a", "gweb2").splitlines()
    assert "STORE_NAME=/gweb2/store" in out
    assert any(line.startswith(f"{ip}\tstore ") and line.endswith(" gdb2") for line in out), out


def test_rm_link_on_a_running_parent_rewrites_its_hosts_file(engine) -> None:
    ok(engine, "run", "-d", "--name", "hdb", "busybox", "sleep", "100")
    ok(engine, "run", "-d", "--name", "hcache", "busybox", "sleep", "100")
    ok(engine, "run", "-d", "--name", "hweb", "--link", "hdb:store", "--link", "hcache:cache",
       "--add-host", "extra.test:192.0.2.9", "busybox", "sleep", "100")
    hosts = ok(engine, "exec", "hweb", "cat", "/etc/hosts")
    assert "\tstore " in hosts and "\tcache " in hosts
    ok(engine, "rm", "--link", "hweb/store")
    hosts = ok(engine, "exec", "hweb", "cat", "/etc/hosts")
    assert "\tstore " not in hosts and "\tcache " in hosts and "192.0.2.9\textra.test" in hosts
    # The running process's environment is what it started with; an exec's has the links as they are now, as
    # dockerd computes it for each exec.
    environ = ok(engine, "exec", "hweb", "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ").split()
    assert "STORE_NAME=/hweb/store" in environ
    assert "STORE_NAME=/hweb/store" not in ok(engine, "exec", "hweb", "env").split()
    assert "CACHE_NAME=/hweb/cache" in ok(engine, "exec", "hweb", "env").split()
    assert links_of(engine, "hweb") == ["/hcache:/hweb/cache"]
