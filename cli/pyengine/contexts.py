"""docker context: create, ls, use, show, inspect, rm, update, on the docker CLI's own store (contextstore.py),
so that a context made, chosen or removed by either CLI is the other's too."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import os
import sys
from typing import Annotated, Any

import typer

from cli.pyengine import contextstore as store
from cli.pyengine import hosts
from cli.pyengine.api import CLIError
from cli.pyengine.app import app, selected_context
from cli.pyengine.formatting import Template
from cli.pyengine.gotemplate_funcs import Record
from cli.pyengine.runopts import GO_BOOLS

context_app = typer.Typer(help="Manage contexts.", no_args_is_help=True)
app.add_typer(context_app, name="context")

_LS_FORMAT = "table {{.Name}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
_LS_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR",
               "Current": "CURRENT"}
_DOCKER_KEYS = ("from", "host", "ca", "cert", "key", "skip-tls-verify")
_DOCKER_HELP = "Set the docker endpoint: host=...,ca=...,cert=...,key=...,skip-tls-verify=...,from=CONTEXT."


def current() -> str:
    """The context in use, as the docker CLI names it (`hosts.context_in_use`)."""
    return hosts.context_in_use(selected_context())


def _object(name: str) -> dict[str, Any]:
    """A context as `docker context inspect` shows it."""
    if name == store.DEFAULT:
        return {"Name": name, "Metadata": {},
                "Endpoints": {"docker": {"Host": hosts.default_host(), "SkipTLSVerify": False}},
                "TLSMaterial": {}, "Storage": {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"}}
    meta = store.load(name)
    files = store.tls_files(name)
    return {"Name": meta.get("Name", name), "Metadata": meta.get("Metadata") or {},
            "Endpoints": meta.get("Endpoints") or {}, "TLSMaterial": {"docker": list(files)} if files else {},
            "Storage": {"MetadataPath": store.meta_path(name), "TLSPath": store.tls_path(name)}}


def _go_json(value: Any) -> str:
    # Go's encoding/json escapes these for HTML, and the docker CLI's inspect output keeps them escaped.
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _endpoint_spec(spec: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f'invalid argument "{spec}" for "--docker" flag:  must be formatted as key=value', 125)
        if key not in _DOCKER_KEYS:
            raise CLIError(f"unable to create docker endpoint config: unrecognized config key: {key}")
        fields[key] = value
    return fields


def _endpoint(spec: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The docker endpoint and TLS files a --docker value describes (or copies, with from=CONTEXT)."""
    fields = _endpoint_spec(spec)
    if "from" in fields:
        # docker copies the endpoint only here (its TLS material only with --from).
        return _copy(fields["from"])[0], {}
    skip = fields.get("skip-tls-verify", "false")
    if skip not in GO_BOOLS:
        raise CLIError(f'unable to create docker endpoint config: skip-tls-verify: parsing "{skip}": invalid syntax')
    tls = {}
    for key in ("ca", "cert", "key"):
        if fields.get(key):
            try:
                with open(os.path.expanduser(fields[key]), "rb") as f:
                    tls[f"{key}.pem"] = f.read()
            except OSError as e:
                raise CLIError(f"unable to create docker endpoint config: {e.strerror}: {fields[key]}") from None
    return {"Host": fields.get("host", ""), "SkipTLSVerify": GO_BOOLS[skip]}, tls


def _copy(name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Another context's docker endpoint and TLS files."""
    if name == store.DEFAULT:
        return {"Host": hosts.default_host(), "SkipTLSVerify": False}, {}
    endpoint = store.docker_endpoint(store.load(name))
    tls = {}
    for file, path in store.tls_files(name).items():
        with open(path, "rb") as f:
            tls[file] = f.read()
    return dict(endpoint), tls


def _description(name: str) -> str:
    if name == store.DEFAULT:
        return store.DEFAULT_DESCRIPTION
    return str((store.load(name).get("Metadata") or {}).get("Description") or "")


def _set_current(name: str) -> None:
    """config.json's currentContext (none for `default`), the file's other keys as they were."""
    path = os.path.join(store.config_dir(), "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        doc = {}
    except (OSError, ValueError) as e:
        raise CLIError(f"loading config file {path}: {e}") from None
    doc.setdefault("auths", {})
    if name == store.DEFAULT:
        doc.pop("currentContext", None)
    else:
        doc["currentContext"] = name
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    import tempfile

    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".config.json.")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
    os.replace(temporary, path)


@context_app.command("create")
def context_create(
    name: Annotated[str, typer.Argument(metavar="CONTEXT")],
    description: Annotated[str | None, typer.Option("--description", help="Description of the context.")] = None,
    docker: Annotated[str | None, typer.Option("--docker", help=_DOCKER_HELP)] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Create the context from an existing one.")] = None,
) -> None:
    """Create a context."""
    store.check_name(name)
    if store.exists(name):
        raise CLIError(f'context "{name}" already exists')
    source = from_ or (None if docker is not None else current())
    if source is not None and docker is None:
        endpoint, tls = _copy(source)
        metadata = {"Description": _description(source)}
    else:
        endpoint, tls = _endpoint(docker or "")
        metadata = {}
    if description is not None:
        metadata["Description"] = description
    metadata = {k: v for k, v in metadata.items() if v}
    store.save(name, {"Name": name, "Metadata": metadata, "Endpoints": {"docker": endpoint}}, tls)
    print(name)
    print(f'Successfully created context "{name}"', file=sys.stderr)


@context_app.command("update")
def context_update(
    name: Annotated[str, typer.Argument(metavar="CONTEXT")],
    description: Annotated[str | None, typer.Option("--description", help="Description of the context.")] = None,
    docker: Annotated[str | None, typer.Option("--docker", help=_DOCKER_HELP)] = None,
) -> None:
    """Update a context."""
    store.check_name(name)
    meta = store.load(name)
    metadata = dict(meta.get("Metadata") or {})
    if description is not None:
        metadata["Description"] = description
    tls = None
    if docker is not None:
        endpoint, tls = _endpoint(docker)
        meta["Endpoints"] = {**(meta.get("Endpoints") or {}), "docker": endpoint}
    meta["Metadata"] = {k: v for k, v in metadata.items() if v}
    store.save(name, meta, tls)
    print(name)
    print(f'Successfully updated context "{name}"', file=sys.stderr)


@context_app.command("list", hidden=True)  # docker's alias
@context_app.command("ls")
def context_ls(
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, 'json' or "
                                                                 "'table ...'.")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show context names.")] = False,
) -> None:
    """List contexts."""
    in_use = current()
    rows = []
    for name in sorted({store.DEFAULT, *store.stored_names()}):
        error, host = "", ""
        try:
            description = _description(name)
            host = str(_object(name)["Endpoints"].get("docker", {}).get("Host", ""))
        except CLIError as e:
            description, error = "", e.message
        rows.append((name, description, host, error))
    spec = "{{.Name}}" if quiet else format_ if format_ not in (None, "", "table") else _LS_FORMAT
    template = Template(spec)
    records = [Record("*formatter.ClientContext", {
        # docker marks the current context's name in its own table only.
        "Name": f"{name} *" if spec == _LS_FORMAT and name == in_use else name, "Description": description,
        "DockerEndpoint": host, "Current": name == in_use, "Error": error})
        for name, description, host, error in rows]
    print(template.lines(records, _LS_HEADERS), end="")
    if in_use != store.DEFAULT and not store.exists(in_use):
        raise CLIError(f"Failed to initialize: unable to resolve docker endpoint: context \"{in_use}\": context "
                       f"not found: open {os.path.join(store.meta_path(in_use), 'meta.json')}: no such file or "
                       "directory")


@context_app.command("show")
def context_show() -> None:
    """Print the name of the current context."""
    print(current())


@context_app.command("use")
def context_use(name: Annotated[str, typer.Argument(metavar="CONTEXT")]) -> None:
    """Set the current docker context."""
    if name != store.DEFAULT:
        store.load(name)
    _set_current(name)
    print(name)
    print(f'Current context is now "{name}"', file=sys.stderr)
    if os.environ.get("DOCKER_HOST"):
        print(f'Warning: DOCKER_HOST environment variable overrides the active context. To use "{name}", either '
              "set the global --context flag, or unset DOCKER_HOST environment variable.", file=sys.stderr)


@context_app.command("inspect")
def context_inspect(
    names: Annotated[list[str] | None, typer.Argument(metavar="[CONTEXT]...")] = None,
    format_: Annotated[str | None, typer.Option("-f", "--format", help="Go-template-like format.")] = None,
) -> None:
    """Display detailed information on one or more contexts (the current one by default)."""
    found, failed = [], False
    for name in names or [current()]:
        try:
            found.append(_object(name))
        except CLIError as e:
            print(e.message, file=sys.stderr)
            failed = True
    if format_:
        template = Template(format_, missing="error")
        print("".join(template.render(obj) + "\n" for obj in found) or "\n", end="")
    else:
        print(_go_json(found))
    if failed:
        raise SystemExit(1)


@context_app.command("remove", hidden=True)  # docker's alias
@context_app.command("rm")
def context_rm(
    names: Annotated[list[str], typer.Argument(metavar="CONTEXT")],
    force: Annotated[bool, typer.Option("-f", "--force", help="Force the removal of a context in use.")] = False,
) -> None:
    """Remove one or more contexts."""
    in_use, failed = hosts.current_context(), []
    for name in names:
        if name == store.DEFAULT:
            failed.append(f'context "{name}" cannot be removed')
        elif not store.exists(name) and not force:
            failed.append(f'context "{name}" does not exist')
        elif name == in_use and not force:
            failed.append(f'context "{name}" is in use, set -f flag to force remove')
        else:
            if name == in_use:
                _set_current(store.DEFAULT)
            store.remove(name)
            print(name)
    if failed:
        print("\n".join(failed), file=sys.stderr)
        raise SystemExit(1)


@context_app.command("export")
def context_export(
    name: Annotated[str, typer.Argument(metavar="CONTEXT")],
    dest: Annotated[str | None, typer.Argument(metavar="[FILE|-]")] = None,
) -> None:
    """Export a context to a tar archive FILE or a tar stream on STDOUT."""
    from cli.pyengine import contextarchive

    if name != store.DEFAULT:
        store.check_name(name)
    dest = dest or f"{name}.dockercontext"
    if dest == "-":
        if sys.stdout.isatty():
            raise CLIError("cowardly refusing to export to a terminal, specify a file path")
        meta, tls = contextarchive.stored(name)
        contextarchive.export(meta, tls, sys.stdout.buffer)
        sys.stdout.flush()
        return
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise CLIError(f"open {dest}: {e.strerror.lower() if e.strerror else e}") from None
    with os.fdopen(fd, "wb") as f:
        meta, tls = contextarchive.stored(name)
        contextarchive.export(meta, tls, f)
    print(f'Written file "{dest}"', file=sys.stderr)


@context_app.command("import")
def context_import(
    name: Annotated[str, typer.Argument(metavar="CONTEXT")],
    source: Annotated[str, typer.Argument(metavar="FILE|-")],
) -> None:
    """Import a context from a tar or zip file."""
    from cli.pyengine import contextarchive

    store.check_name(name)
    if store.exists(name):
        raise CLIError(f'context "{name}" already exists')
    if source == "-":
        meta, tls = contextarchive.read(name, sys.stdin.buffer)
    else:
        try:
            with open(source, "rb") as f:
                meta, tls = contextarchive.read(name, f)
        except OSError as e:
            raise CLIError(f"open {source}: {e.strerror.lower() if e.strerror else e}") from None
    store.save(name, meta, None)
    store.replace_tls(name, tls)
    print(name)
    print(f'Successfully imported context "{name}"', file=sys.stderr)
