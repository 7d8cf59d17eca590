"""The build context: received (streamed, unpacked safely, .dockerignore applied), its Dockerfile found,
COPY/ADD's sources resolved in it and hashed for the build cache.

For the executor: `ContextStore(root)` (`from_request(request)` or
`receive(body, dockerfile=..., remote=...)` per build) gives a `BuildContext`
(`directory`, `dockerfile_name`, `dockerfile`, `ignore_patterns`, `resolve(sources)`,
`checksum(resolved)`, `close()`).
"""
from engine.builder.context.build_context import BuildContext
from engine.builder.context.checksum import checksum
from engine.builder.context.dockerignore import DockerIgnore
from engine.builder.context.sources import ContextSource, matching, resolve_sources
from engine.builder.context.store import ContextStore

__all__ = ["BuildContext", "ContextSource", "ContextStore", "DockerIgnore", "checksum", "matching", "resolve_sources"]
