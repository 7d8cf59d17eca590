"""The pyengine CLI's Engine API client: synchronous HTTP/1.1 over the daemon's unix socket.

Synchronous and on a bare socket: a command is a few requests in a row (plus one
thread for stdin on a hijacked stream). http.client would do, but it pulls in ssl
and the email package, 30-50 ms of start-up on every command; this is the little
of HTTP the Engine API needs: one request per connection, Content-Length, chunked
and read-to-close bodies, and the 101 upgrade.
"""
from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable
from io import BufferedReader
from typing import Any, Iterator, Literal, NamedTuple, Protocol
from urllib.parse import quote, urlencode

from cli.pyengine import clilog

# The newest Engine API this CLI speaks; with an older daemon, the daemon's (GET /_ping's API-Version).
API_VERSION = "1.50"
# What a daemon that does not say is assumed to speak, as the docker CLI assumes.
_UNNAMED_VERSION = "1.24"

STDOUT, STDERR, SYSTEM_ERROR = 1, 2, 3
_FRAME_HEADER = struct.Struct(">BxxxI")
_CHUNK = 64 * 1024


class CLIError(Exception):
    """A failure the CLI reports on one line of stderr before exiting with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ConnectFailure(CLIError):
    """The daemon could not be reached (or TLS with it not set up)."""


class DaemonError(CLIError):
    """An error answer from the daemon, worded as the docker CLI words it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.daemon_message = message


class Connection(Protocol):
    """What the client uses of a connection to the daemon: a socket, or a TLS session or an ssh process on one."""

    def sendall(self, data: bytes, /) -> None: ...

    def makefile(self, mode: Literal["rb"]) -> BufferedReader: ...

    def shutdown(self, how: int, /) -> None: ...

    def close(self) -> None: ...


class Response:
    """A response whose body is read as it arrives: exact reads, whatever-is-there reads, or lines."""

    def __init__(self, sock: Connection, method: str,
                 release: Callable[[Connection], None] | None = None) -> None:
        self._sock = sock
        # Given a connection that may take another request once this answer is read to its end (kept alive).
        self._release = release
        self._in = sock.makefile("rb")
        status_line = self._in.readline()
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise CLIError(f"bad answer from the daemon: {status_line[:80]!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while (line := self._in.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        # Bytes left in the body (or in the current chunk); None: until the daemon closes (a hijacked stream).
        self._left: int | None = 0 if self._chunked else None
        if method == "HEAD" or self.status in (204, 304) or (100 <= self.status < 200 and self.status != 101):
            self._left = 0
        elif "content-length" in self.headers and not self._chunked:
            self._left = int(self.headers["content-length"])
        self._done = False
        self._started_chunks = False
        self.received = 0  # body bytes read so far: lets a watcher tell a stream that went quiet

    def _available(self) -> bool:
        if self._done:
            return False
        if self._left is None or self._left > 0:
            return True
        if self._chunked:
            if self._started_chunks:
                self._in.readline()  # the CRLF closing the previous chunk
            self._started_chunks = True
            size = int(self._in.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size:
                self._left = size
                return True
            while self._in.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
        self._done = True
        return False

    def read1(self, n: int = _CHUNK) -> bytes:
        """What has arrived (at most n bytes, at least one unless the body is over)."""
        if not self._available():
            return b""
        data = self._in.read1(n if self._left is None else min(n, self._left))
        if not data:
            if self._left is not None:
                raise CLIError("the daemon closed the connection in the middle of an answer")
            self._done = True
        elif self._left is not None:
            self._left -= len(data)
        self.received += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        """Exactly n bytes (fewer only at the end of the body), or the whole rest with n < 0."""
        parts, got = [], 0
        while n < 0 or got < n:
            data = self.read1(_CHUNK if n < 0 else n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def __iter__(self) -> Iterator[bytes]:
        """The body line by line, each as soon as it is complete."""
        buffered = b""
        while data := self.read1():
            buffered += data
            *lines, buffered = buffered.split(b"\n")
            yield from lines
        if buffered:
            yield buffered

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def close(self) -> None:
        if self._release is not None and self._done and self.status != 101 and \
                self.headers.get("connection", "").lower() != "close":
            self._in.close()
            self._release(self._sock)
            return
        self._done = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._in.close()
        self._sock.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _daemon_error(resp: Response) -> DaemonError:
    with resp:
        body = resp.read()
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip() or f"the daemon answered {resp.status}"
    return DaemonError(resp.status, message)


def path_quote(ref: str) -> str:
    """A name or reference as one path segment (image references keep their slashes, as the daemon expects)."""
    return quote(ref, safe="/:@")


def _tls_context(tls: TLSSettings) -> Any:
    from cli.pyengine.tlsconn import TLSFilesError, client_context

    try:
        return client_context(tls.ca, tls.cert, tls.key, tls.verify)
    except TLSFilesError as e:
        raise CLIError(str(e)) from None


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class TLSSettings(NamedTuple):
    """A host's TLS as the docker CLI's options or a context give it: the files (None: none) and whether the
    daemon's certificate is checked."""
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True


class Engine:
    def __init__(self, host: str, tls: TLSSettings | None = None) -> None:
        self.host = host
        self._version: str | None = None
        self._os_type: str | None = None  # None: not pinged yet
        self._daemon_version = API_VERSION
        self._address: str | tuple[str, int]
        self._scheme, self._authority = "http", ""
        self._ssh: list[str] | None = None
        self._idle: list[Connection] = []
        self._tls: Any = None
        if host.startswith("unix://"):
            self._family, self._address = socket.AF_UNIX, host[len("unix://"):]
        elif host.startswith("tcp://"):
            address = host[len("tcp://"):].rstrip("/")
            if address.endswith("]") or ":" not in address:
                # docker's default ports: 2376 for TLS, 2375 without.
                address += ":2376" if tls is not None else ":2375"
            hostname, _, port = address.rpartition(":")
            if not hostname or not port.isdigit():
                raise CLIError(f"invalid host {host!r}: tcp://HOST[:PORT] expected", 125)
            self._family, self._address = socket.AF_INET6 if ":" in hostname else socket.AF_INET, \
                (hostname.strip("[]"), int(port))
            self._authority = f"{hostname}:{port}"
            if tls is not None:
                self._tls = _tls_context(tls)
                self._scheme = "https"
        elif host.startswith("ssh://"):
            from cli.pyengine.sshconn import ssh_command

            try:
                self._ssh = ssh_command(host)
            except ValueError as e:
                raise CLIError(str(e), 125) from None
        else:
            raise CLIError(f"unsupported host {host!r}: unix:///path, tcp://host:port or ssh://[user@]host[:port]",
                           125)

    @property
    def version(self) -> str:
        """The API version to speak: $DOCKER_API_VERSION's as the docker CLI pins it (no negotiation: a version
        the daemon does not speak gets its error), else the daemon's (from GET /_ping), at most ours."""
        if self._version is None:
            pinned = os.environ.get("DOCKER_API_VERSION", "").removeprefix("v")
            self._version = pinned or self._negotiated()
        return self._version

    def _negotiated(self) -> str:
        self._ping()
        return min(self._daemon_version, API_VERSION, key=version_key)

    def _ping(self) -> None:
        if self._os_type is not None:
            return
        try:
            with self._send("GET", "/_ping", None, None, None, versioned=False) as resp:
                resp.read()
        except ConnectFailure:
            # As the docker CLI: the request itself then fails, and is the one reported.
            self._os_type = ""
            return
        self._daemon_version = resp.header("API-Version") or _UNNAMED_VERSION
        self._os_type = resp.header("OSType") or ""

    @property
    def os_type(self) -> str:
        """The daemon's OS as GET /_ping says it (empty when it does not)."""
        self._ping()
        return self._os_type or ""

    def _connect(self) -> Connection:
        if self._ssh is not None:
            from cli.pyengine.sshconn import SSHConnection

            return SSHConnection(self._ssh)
        return self._dial()

    def _keep(self, sock: Connection) -> None:
        if not self._idle:
            import atexit

            atexit.register(self._close_idle)
        self._idle.append(sock)

    def _close_idle(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _dial(self) -> Connection:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            sock.connect(self._address)
        except PermissionError:
            sock.close()
            # The docker CLI's words, which scripts waiting for a daemon look for.
            raise ConnectFailure(f"permission denied while trying to connect to the Docker daemon socket at "
                                 f"{self.host}") from None
        except OSError:
            sock.close()
            raise ConnectFailure(f"Cannot connect to the Docker daemon at {self.host}. "
                                 "Is the docker daemon running?") from None
        if self._tls is None:
            return sock
        from cli.pyengine.tlsconn import TLSConnection

        try:
            return TLSConnection(sock, self._tls, self._address[0])
        except OSError:
            sock.close()
            raise

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any,
              headers: dict[str, str] | None, versioned: bool = True) -> Response:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        query_string = f"?{urlencode(params, doseq=True)}" if params else ""
        target = (f"/v{self.version}" if versioned else "") + path + query_string
        hdrs = {"Host": "pyengine", "User-Agent": "pyengine-cli", **(headers or {})}
        payload = b""
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, bytes):
            payload = body
        streamed = hasattr(body, "read")
        if streamed:
            hdrs["Transfer-Encoding"] = "chunked"
        elif payload or method in ("POST", "PUT"):
            hdrs["Content-Length"] = str(len(payload))
        clilog.debug(f"{method} {target}")
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        # An ssh connection is a process on both sides: it serves the command's next requests too, as the
        # docker CLI's keep-alive connection does. One the far side closed while idle is dialled again.
        release = self._keep if self._ssh is not None else None
        while release is not None and self._idle and not streamed:
            idle = self._idle.pop()
            try:
                idle.sendall(head.encode("latin-1") + payload)
                return Response(idle, method, release)
            except (OSError, CLIError):
                idle.close()
        sock: Connection | None = None
        try:
            sock = self._connect()
            sock.sendall(head.encode("latin-1") + payload)
            if streamed:
                while data := body.read(_CHUNK):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                sock.sendall(b"0\r\n\r\n")
            return Response(sock, method, release)
        except OSError as e:
            if sock is not None:
                sock.close()
            if self._tls is not None:
                from cli.pyengine.tlsconn import TLSFailure  # already loaded: this host uses TLS

                if isinstance(e, TLSFailure):
                    # The docker CLI's words (Go's net/http): the request that could not be made, and why.
                    url = f"{self._scheme}://{self._authority}{target}"
                    raise ConnectFailure(f'error during connect: {method.title()} "{url}": {e}') from None
            raise CLIError(f"error talking to the pyengine daemon at {self.host}: {e}") from None

    def open(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> Response:
        """Send a request; return the response once its headers are in (its body may still be on the way)."""
        resp = self._send(method, path, query, body, headers)
        if resp.status >= 400:
            raise _daemon_error(resp)
        return resp

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One request with a JSON answer (None for an empty one)."""
        with self.open(method, path, query, body) as resp:
            data = resp.read()
        return json.loads(data) if data.strip() else None

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.call("GET", path, query)

    def post(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        return self.call("POST", path, query, body)

    def json_stream(self, method: str, path: str, query: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The messages of a streamed JSON answer (pull progress, events), each as soon as it arrives."""
        with self.open(method, path, query, headers=headers) as resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)

    def hijack(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Hijacked:
        """attach / exec start: expect `101 UPGRADED`, then the connection is a raw pipe both ways."""
        resp = self._send("POST", path, query, body, {"Connection": "Upgrade", "Upgrade": "tcp"})
        if resp.status >= 400:
            raise _daemon_error(resp)
        if resp.status != 101:
            resp.close()
            raise CLIError(f"unable to upgrade to tcp, received {resp.status}")
        return Hijacked(resp)


class Hijacked:
    """Output is read through the response: its buffer may already hold bytes the daemon sent after the 101."""

    def __init__(self, resp: Response) -> None:
        self.output = resp
        self._sock = resp._sock

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_write(self) -> None:
        """Tell the daemon our stdin is over; its output keeps coming."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def shutdown(self) -> None:
        """End the stream both ways from another thread: a read blocked on it returns as at its end."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.output.close()


def frames(body: Response) -> Iterator[tuple[int, bytes]]:
    """Docker's multiplexed stream: 8-byte headers [stream, 0, 0, 0, size BE32] then the payload."""
    while True:
        header = body.read(_FRAME_HEADER.size)
        if len(header) < _FRAME_HEADER.size:
            return
        stream, size = _FRAME_HEADER.unpack(header)
        payload = body.read(size)
        yield stream, payload
        if len(payload) < size:
            return


def chunks(body: Response) -> Iterator[bytes]:
    """A raw (TTY) stream, passed on as soon as bytes arrive."""
    while data := body.read1():
        yield data
