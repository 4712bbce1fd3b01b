"""File primitives shared by the scan, the model installer, the store and every output: one
content hash, one bounded reader of regular files, one atomic writer (whose temporary files a
later write sweeps away when their writer was killed)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

# Temporary files carry their writer's pid, so sweep() knows which ones a killed writer left; the
# name is short, so a legal 255-byte target name always has room beside it.
TEMP_NAME = re.compile(r"\.photo_sorter-(\d{1,10})-[0-9a-f]{8}\.tmp")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of an existing regular file of at most `limit` bytes. A pipe, device or link is
    refused without blocking (opened non-blocking, checked on the open descriptor): ValueError
    saying which; OSError when it cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if os.path.islink(path):
            raise ValueError("a link") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        return fh.read(limit + 1)[:limit]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep(folder: str | Path) -> list[str]:
    """Delete the temporary files that writers which are no longer running left in `folder`."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(entry.path)
    return removed


def atomic_write(path: str | Path, data: bytes | None = None, *, copy_from: str | Path | None = None,
                 mode: int | None = None) -> None:
    """Write `data` (or a copy of the file `copy_from`) to path through a temporary file beside
    it, flushed to disk, then renamed over path: a crash leaves the old file or the complete new
    one, never a partial file under path's name. The file gets `mode`, else an existing file's
    mode is kept and a new one gets the user's umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            pass  # created 0666: the kernel applies the umask
    tmp = path.parent / f".photo_sorter-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            if copy_from is not None:
                with open(copy_from, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                out.write(data)
            out.flush()
            if mode is not None:
                os.chmod(tmp, mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
