from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.api.routing import Router
from runtime.services import Services
from runtime.signals import parse_signal
from runtime.tasks.cgroups import Metrics
from runtime.tasks.service import ExecCreate, ExitStatus
from runtime.tasks.spec_options import ResourceOptions
from runtime.tasks.state import ExecState, TaskState

router = Router("/tasks", tags=("tasks",))


class TaskCreate(BaseModel):
    container_id: str
    terminal: bool | None = None
    stdin: bool = False
    keep_stdin_open: bool = False
    # KEY=VALUE added to the process's environment for this run only (what is known only at start, such as
    # Docker's link variables); the container's own variables win over them.
    env: list[str] = Field(default_factory=list)
    # A runc-compatible binary (path, or a name looked up in PATH) in place of the container's runtime's own for
    # this task, and arguments put before each of its commands: containerd's runc BinaryName, which dockerd sets
    # from daemon.json's `runtimes`.
    runtime_binary: str | None = None
    runtime_args: list[str] = Field(default_factory=list)


class KillRequest(BaseModel):
    signal: str | int = "SIGTERM"
    all: bool = False
    exec_id: str | None = None


class ResizeRequest(BaseModel):
    rows: int
    cols: int
    exec_id: str | None = None


class TaskUpdate(BaseModel):
    resources: ResourceOptions


class IOInfo(BaseModel):
    attach_socket: str
    ctl: str
    log_path: str | None


class TaskCreated(TaskState):
    """A new task with its IO: a client attaches and starts without asking for it again."""

    io: IOInfo


class ExecCreated(ExecState):
    """A new exec with its IO, for the same reason."""

    io: IOInfo


def _io(s: Services, task_id: str, exec_id: str | None = None) -> IOInfo:
    io = s.tasks.io(task_id, exec_id)
    return IOInfo(attach_socket=io.attach_socket, ctl=io.ctl, log_path=io.log_path)


@router.get("")
async def list_tasks(s: Services) -> list[TaskState]:
    return s.tasks.list()


@router.post("", status=201)
async def create_task(body: TaskCreate, s: Services) -> TaskCreated:
    task = await s.tasks.create(body.container_id, terminal=body.terminal, stdin=body.stdin,
                                keep_stdin_open=body.keep_stdin_open, env=body.env,
                                binary=body.runtime_binary, binary_args=body.runtime_args)
    return TaskCreated(**task.model_dump(), io=_io(s, task.id))


@router.get("/{task_id}")
async def get_task(task_id: str, s: Services) -> TaskState:
    return s.tasks.get(task_id)


@router.post("/{task_id}/start")
async def start_task(task_id: str, s: Services) -> TaskState:
    return await s.tasks.start(task_id)


@router.post("/{task_id}/kill")
async def kill_task(task_id: str, body: KillRequest, s: Services) -> None:
    await s.tasks.kill(task_id, parse_signal(body.signal), all=body.all, exec_id=body.exec_id)


@router.post("/{task_id}/wait")
async def wait_task(task_id: str, s: Services, exec_id: str | None = None) -> ExitStatus:
    return await s.tasks.wait(task_id, exec_id)


@router.delete("/{task_id}")
async def delete_task(task_id: str, s: Services, force: bool = False) -> ExitStatus:
    return await s.tasks.delete(task_id, force=force)


@router.post("/{task_id}/pause")
async def pause_task(task_id: str, s: Services) -> None:
    await s.tasks.pause(task_id)


@router.post("/{task_id}/resume")
async def resume_task(task_id: str, s: Services) -> None:
    await s.tasks.resume(task_id)


@router.post("/{task_id}/update")
async def update_task(task_id: str, body: TaskUpdate, s: Services) -> None:
    await s.tasks.update(task_id, body.resources)


@router.get("/{task_id}/pids")
async def task_pids(task_id: str, s: Services) -> list[int]:
    return await s.tasks.pids(task_id)


@router.get("/{task_id}/metrics")
async def task_metrics(task_id: str, s: Services) -> Metrics:
    return await s.tasks.metrics(task_id)


@router.get("/{task_id}/io")
async def task_io(task_id: str, s: Services, exec_id: str | None = None) -> IOInfo:
    return _io(s, task_id, exec_id)


@router.post("/{task_id}/resize")
async def resize(task_id: str, body: ResizeRequest, s: Services) -> None:
    await s.tasks.resize(task_id, body.rows, body.cols, body.exec_id)


@router.post("/{task_id}/execs", status=201)
async def add_exec(task_id: str, body: ExecCreate, s: Services) -> ExecCreated:
    state = await s.tasks.add_exec(task_id, body)
    return ExecCreated(**state.model_dump(), io=_io(s, task_id, state.id))


@router.post("/{task_id}/execs/{exec_id}/start")
async def start_exec(task_id: str, exec_id: str, s: Services) -> ExecState:
    return await s.tasks.start_exec(task_id, exec_id)


@router.delete("/{task_id}/execs/{exec_id}")
async def delete_exec(task_id: str, exec_id: str, s: Services) -> None:
    await s.tasks.delete_exec(task_id, exec_id)
