"""`pyengine inspect -f` prints what the docker CLI prints for the same template on the same object: docker
runs it over the Go struct first (fields the daemon leaves out are zero values, nil pointers `<nil>`), then
over the raw JSON with missingkey=error."""
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.integration.test_pyengine_cli import PYENGINE, env_of, until


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        for args in (["--name", "checked", "--health-cmd", "true", "--health-interval", "1s", "-p", "8080:80",
                      "-v", "/data", "-l", "team=web"], ["--name", "plain"]):
            made = subprocess.run(["docker", "run", "-d", *args, "busybox", "sleep", "300"], env=e.env(),
                                  capture_output=True, text=True, timeout=120, check=False)
            assert made.returncode == 0, made.stderr
        subprocess.run(["docker", "volume", "create", "--label", "a=b", "vol"], env=e.env(), capture_output=True,
                       check=True)
        until(lambda: _run(e, "docker", "inspect", "-f", "{{.State.Health.Status}}", "checked").stdout
              == "healthy\n", timeout=60)
        try:
            yield e
        finally:
            e.reset()


def _run(engine: EngineDaemon, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([tool, *args], env=env_of(engine), capture_output=True, text=True, timeout=60, check=False)
    # fmt prints a pointer inside a value as its address, which differs from run to run.
    out.stdout = re.sub(r"0xc[0-9a-f]+", "0xc…", out.stdout)
    return out


CONTAINER_TEMPLATES = [
    "{{.State.Health.Status}}", "{{.State.Health}}", "{{.State.Health.FailingStreak}}",
    "{{if .State.Health}}checked{{else}}unchecked{{end}}", "{{.NetworkSettings.Networks.bridge.IPAddress}}",
    "{{.NetworkSettings.Networks.nope.IPAddress}}", "{{.NetworkSettings.Networks.nope}}",
    "{{.HostConfig.Runtime}}|{{.HostConfig.Annotations}}|{{.Config.Labels.nope}}|{{.Config.Labels.team}}",
    "{{.ID}} {{.Id}}", "{{.ID}}", "{{.State}}", "{{.Config.Healthcheck}}",
    "{{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}}", "{{.Mounts}}",
    "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}",
    "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{$v.IPAMConfig}}{{end}}",
    "{{.HostConfig.PortBindings}}", "{{(index (index .HostConfig.PortBindings \"80/tcp\") 0).HostPort}}",
    "{{.HostConfig.RestartPolicy}} {{.HostConfig.RestartPolicy.Name}}", "{{.HostConfig.LogConfig}}",
    "{{.HostConfig.Dns}}", "{{.HostConfig.DNS}}", "{{.HostConfig.CpuShares}} {{.HostConfig.CPUShares}}",
    "{{.Config.StopTimeout}}", "{{json .State.Health.Status}}", "{{json .Config.Labels}}", "{{.Nope}}",
    "{{.State.Nope}}", "{{.Config.Env}}", "{{.GraphDriver.Name}}", "{{.NetworkSettings.IPAddress}}",
    "{{.SizeRw}}", "x\\n  {{.State.Nope}}", "{{$x := .State}}{{$x.Health.Status}}", "table {{.Name}}",
    "{{.Name}}\t{{.State.Status}}", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.Error}}",
    "{{range .Config.Env}}{{println .}}{{end}}", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
    '{{index .State "nope"}}|{{index .Config.Labels "zz"}}', '{{index .Config.Labels "zz"}}',
    "{{.NetworkSettings.Networks}}", "{{.State.Health.Log}}", "{{json .HostConfig}}", "{{json .Config}}",
    "{{json .NetworkSettings}}", "{{json .Mounts}}", '{{printf "%v" .State}}', "{{json .State.Health.Status}} {{json .State.Running}}",
]


@pytest.mark.parametrize("template", CONTAINER_TEMPLATES)
@pytest.mark.parametrize("name", ["checked", "plain"])
def test_container_templates_print_as_dockers(engine, template, name):
    ours, theirs = (_run(engine, tool, "inspect", "-f", template, name) for tool in (PYENGINE, "docker"))
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)


OTHER_TEMPLATES = [
    ("container", "plain", "{{json .}}"), ("image", "busybox", "{{json .}}"), ("network", "bridge", "{{json .}}"),
    ("volume", "vol", "{{json .}}"),
    ("image", "busybox", "{{.Id}} {{.Os}} {{.Config.Cmd}} {{.RootFS.Type}} {{.Config.Healthcheck}}"),
    ("image", "busybox", "{{.ID}}"), ("image", "busybox", "{{.Metadata}} {{.Config.Labels}}"),
    ("network", "bridge", "{{.Name}} {{.IPAM.Config}} {{.Created}} {{.ConfigFrom}} {{.Options}}"),
    ("network", "bridge", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Id}}"),
    ("network", "bridge", "{{len .Containers}} {{.Peers}}"),
    ("volume", "vol", "{{.Name}} {{.Status}} {{.UsageData}} {{.Labels}} {{.Labels.nope}}"),
]


@pytest.mark.parametrize(("kind", "name", "template"), OTHER_TEMPLATES)
def test_other_objects_print_as_dockers(engine, kind, name, template):
    for args in ([kind, "inspect", "-f", template, name], ["inspect", "-f", template, name]):
        ours, theirs = (_run(engine, tool, *args) for tool in (PYENGINE, "docker"))
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
