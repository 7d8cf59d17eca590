"""Pod networking through CNI, as the CRI plugin drives it (containerd's go-cni/libcni role).

- `netns`: named network namespaces pinned by bind mounts under the runtime's state dir;
- `config`: the CNI conf dir (first conflist in lexical order) and the plugin bin dirs;
- `invoke`: one plugin execution per the CNI spec (env, stdin config, result or typed error);
- `result`: CNI results (0.3.x/0.4.0/1.0.0, and 0.1/0.2's ip4/ip6) read into records;
- `cache`: per (network, container, interface) record of the ADD, so DEL works after a crash;
- `manager`: setup/teardown of a pod's networks (loopback on `lo`, then the default network);
- `defaults`: a default bridge + host-local + portmap conflist for tests and docs.

How the sandbox code drives it (containerd's order):
- start: `CNIManager(<state>/cri/cni, conf_dir, bin_dirs)` and `NetnsDir(<state>/cri/netns)`;
  `await manager.sweep(live_sandbox_ids)`, then remove the `NetnsDir.names()` of no live sandbox;
- Status: `await manager.status()` is the NetworkReady condition;
- RunPodSandbox: `path = await netns.create(id)`, `await manager.setup(PodNetwork(..., netns=path))`
  (the sandbox's IPs), then the pause container joins `path`;
- StopPodSandbox: `await manager.teardown(id)`, then `await netns.remove(id)`; both are idempotent.
"""
