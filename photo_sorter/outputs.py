"""Every file the tool writes (exports, sidecars, cluster sheets, copies of best photos).

- A target is refused, with one readable line, when it is (through any symbolic or hard link) a
  photo of the library, is a link itself, is not a regular file (a pipe never blocks us: only
  regular files are opened), is read-only, or resolves outside the folder the user chose. The
  photos themselves are never opened for writing.
- A write goes through files.atomic_write: a short temporary name in the target's folder, then
  one rename, so a crash never leaves half a file and a legal 255-byte name still fits. The
  temporary name carries the writer's pid: the next write into that folder deletes what a killed
  writer left (files.sweep).
- A new file gets the user's umask (it is created 0666 and the kernel applies the umask); a
  replaced file keeps its mode.
- Image files the tool writes (cluster sheets, copies) are listed in a manifest in their folder,
  which the scan's discovery reads to never take them for photos.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from sqlalchemy import select

from photo_sorter import files
from photo_sorter.store import Photo, session_factory

MANIFEST = ".photo_sorter-outputs.json"
MAX_MANIFEST_BYTES = 16 << 20
class OutputError(ValueError):
    """An output path the tool refuses to write; the message is one readable line."""


def tool_outputs(folder: str | Path, names) -> set[str]:
    """Names in `folder` (whose listing is `names`) that the tool wrote: they are not photos."""
    if MANIFEST not in names:
        return set()
    try:
        data = read_regular(Path(folder) / MANIFEST, MAX_MANIFEST_BYTES)
        listed = json.loads(data.decode("utf-8", "surrogateescape"))
    except (OSError, OutputError, ValueError):
        return set()
    return {n for n in listed if isinstance(n, str)} if isinstance(listed, list) else set()


def read_regular(path: str | Path, limit: int) -> bytes:
    """files.read_regular, its refusals as one OutputError line."""
    try:
        return files.read_regular(path, limit)
    except ValueError as exc:
        raise OutputError(f"{path} is {exc}; left alone") from None
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from None


class Outputs:
    """Checks and writes the outputs of one command against one library (engine may be None
    when there is no library to protect)."""

    def __init__(self, engine=None):
        self.engine = engine
        self._paths: set[str] | None = None
        self._by_size: dict[int, list[str]] = {}
        self._swept: set[str] = set()

    def _load(self) -> None:
        self._paths = set()
        if self.engine is None:
            return
        with session_factory(self.engine)() as session:
            for path, size in session.execute(select(Photo.path, Photo.size)):
                self._paths.add(path)
                self._by_size.setdefault(size, []).append(path)

    def check(self, path: str | Path, root: str | Path | None = None) -> tuple[Path, int | None]:
        """Refuse a target the tool must not write (see the module notes). Returns the absolute
        path and the mode to keep (None for a new file)."""
        if self._paths is None:
            self._load()
        path = Path(os.path.abspath(path))
        if not path.name:
            raise OutputError(f"{path} is a folder, not a file name")
        real = os.path.realpath(path)
        if root is not None:
            top = os.path.realpath(root)
            if os.path.commonpath([top, os.path.realpath(path.parent)]) != top:
                raise OutputError(f"{path} leads out of {root} through a link; not written")
        if str(path) in self._paths or real in self._paths:
            raise OutputError(f"{path} is one of the library's photos; choose another output path")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path, None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(f"{path} is a link; left alone")
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path} is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path} is not a regular file; left alone")
        if self._is_photo(st):
            raise OutputError(f"{path} is one of the library's photos; choose another output path")
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise OutputError(f"{path} is read-only; left alone")
        return path, stat.S_IMODE(st.st_mode)

    def _is_photo(self, st: os.stat_result) -> bool:
        """The same file as a library photo (a hard link to it), found among photos of its size."""
        for candidate in self._by_size.get(st.st_size, ()):
            try:
                other = os.stat(candidate)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
        return False

    def write(self, path: str | Path, data: bytes, root: str | Path | None = None,
              record: bool = False) -> Path:
        """Check the target and write `data` there atomically; with `record`, list it in the
        folder's manifest so scans skip it."""
        path, mode = self.check(path, root)
        if record:  # first, so that even a file cut short by a kill is never scanned
            self._record(path)
        self._replace(path, mode, data)
        return path

    def update(self, path: str | Path, change, root: str | Path | None = None,
               limit: int = 16 << 20) -> Path:
        """Rewrite `path` with change(its bytes, or None when it does not exist yet); an
        existing file is read only when it is a regular file of at most `limit` bytes."""
        path, mode = self.check(path, root)
        data = change(read_regular(path, limit) if mode is not None else None)
        self._replace(path, mode, data)
        return path

    def copy(self, source: str | Path, path: str | Path, root: str | Path | None = None) -> Path:
        """Copy a file (e.g. a best photo) to a new name; an existing target is never replaced."""
        if os.path.lexists(path):
            raise OutputError(f"{path} exists; not replaced")
        path, _mode = self.check(path, root)
        self._record(path)  # first, so that even a copy cut short by a kill is never scanned
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            with open(source, "rb") as src, os.fdopen(os.open(path, flags, 0o666), "wb") as out:
                try:
                    shutil.copyfileobj(src, out)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
            shutil.copystat(source, path)
        except OSError as exc:
            raise OutputError(f"cannot copy {source} to {path}: {exc.strerror or exc}") from None
        return path

    def _prepare(self, folder: Path) -> None:
        """Create the folder if needed, and clear what killed writers left there (once)."""
        folder.mkdir(parents=True, exist_ok=True)
        if str(folder) not in self._swept:
            files.sweep(folder)
            self._swept.add(str(folder))

    def _replace(self, path: Path, mode: int | None, data: bytes) -> None:
        """Write atomically (files.atomic_write); any OSError (no space, no permission, a file
        where a folder should be) becomes one OutputError line."""
        try:
            self._prepare(path.parent)
            files.atomic_write(path, data, mode=mode)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _record(self, path: Path) -> None:
        manifest = path.parent / MANIFEST
        names = sorted(tool_outputs(path.parent, {MANIFEST} if manifest.is_file() else ()) | {path.name})
        self.write(manifest, json.dumps(names, ensure_ascii=True).encode("ascii"))
