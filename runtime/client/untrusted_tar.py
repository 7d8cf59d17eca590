"""The runtime's writes of untrusted tar entries, for the engine's own unpacking (the build context).

Pure functions over directory fds, with no daemon state: every write takes a directory
fd and a single-component name, never follows a symlink at that name, and replaces what
was there rather than writing into it. The rules about which entries are allowed stay
with each caller (the build context has dockerd's, layers and `docker cp` the runtime's).
"""
from runtime.untrusted_tar import (
    CHUNK,
    DIR_FLAGS,
    finish_fd,
    lstat,
    make_fifo,
    make_symlink,
    mtime_ns,
    open_new_dir,
    remove,
    write_file,
)

__all__ = ["CHUNK", "DIR_FLAGS", "finish_fd", "lstat", "make_fifo", "make_symlink", "mtime_ns",
           "open_new_dir", "remove", "write_file"]
