"""The CRI streaming server (exec, attach, port-forward as kubelet and crictl speak them).

The CRI plugin starts a `server.StreamingServer(backend, host, port)` beside its gRPC server and
answers Exec/Attach/PortForward with `get_exec(ExecRequest(...))`, `get_attach(...)` and
`get_port_forward(...)`: one-time URLs (a bad request raises `InvalidStreamingRequest`, the
gRPC InvalidArgument). `backend.StreamingBackend` is what the plugin implements.

Modules: spdy (frames), spdy_connection (streams and flow control over a byte stream),
remotecommand (exec/attach over SPDY), ws (exec/attach over websocket), portforward (over SPDY),
server (HTTP, tokens, upgrades).
"""
