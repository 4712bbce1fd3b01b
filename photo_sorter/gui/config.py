"""User settings persisted with QSettings: library folders, DB location, detection size,
threshold overrides, saved filters and window layout.

Lists and dicts are stored as JSON text so every QSettings backend (INI, registry, plist) round-
trips them identically.
"""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs
from PySide6.QtCore import QSettings, QStandardPaths

from photo_sorter.store.db import APP_NAME, address, default_db_path, to_url, user_data_dir

DEFAULT_DETECTION_SIZE = 1024


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def start_folder() -> str:
    """Where file dialogs open: the last folder the user chose, else Pictures, else home (never
    the working directory the app was started from)."""
    last = QSettings(APP_NAME, APP_NAME).value("dialogs/last_folder")
    if last and Path(str(last)).is_dir():
        return str(last)
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return pictures if pictures and Path(pictures).is_dir() else str(Path.home())


def remember_folder(path: str) -> None:
    """The folder of a path a file dialog returned (a folder itself, or a file's parent)."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    QSettings(APP_NAME, APP_NAME).setValue("dialogs/last_folder", str(folder))


def log_dir() -> Path:
    """Where the app's log file goes (TensorFlow and detector chatter included)."""
    return user_data_dir() / "logs"


RECENT_LIBRARIES = 8


class Settings:
    """Typed accessors over one QSettings object (tests pass an INI file of their own).

    `library` names the open library when it is not the remembered one (File > Open library,
    --db): its folders are kept apart from the remembered library's."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings(APP_NAME, APP_NAME)
        self.library: str | None = None

    def _get_json(self, key: str, default):
        raw = self.q.value(key)
        if not raw:
            return default
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            return default
        return value if isinstance(value, type(default)) else default

    def _set_json(self, key: str, value) -> None:
        self.q.setValue(key, json.dumps(value))

    @property
    def folders(self) -> list[str]:
        """The open library's folders."""
        if self.library is None:
            return self._get_json("library/folders", [])
        return self._get_json("library/folders_of", {}).get(self.library, [])

    @folders.setter
    def folders(self, value: list[str]) -> None:
        value = list(dict.fromkeys(value))
        if self.library is None:
            self._set_json("library/folders", value)
        else:
            self._set_json("library/folders_of", {**self._get_json("library/folders_of", {}), self.library: value})

    def remember_library(self, name: str) -> None:
        """Make `name` (store.db.address) the library the app opens at start; each library
        keeps its own folders."""
        old = address(to_url(self.db_path))
        if name == old:
            return
        others = self._get_json("library/folders_of", {})
        others[old] = self._get_json("library/folders", [])
        self._set_json("library/folders", others.pop(name, []))
        self._set_json("library/folders_of", others)
        self.db_path = name

    @property
    def recent_libraries(self) -> list[str]:
        """Libraries opened lately, newest first (paths, or server URLs without their password)."""
        return self._get_json("library/recent", [])

    def add_recent_library(self, name: str) -> None:
        self._set_json("library/recent", [name, *(r for r in self.recent_libraries if r != name)][:RECENT_LIBRARIES])

    @property
    def db_path(self) -> str:
        return str(self.q.value("library/db") or default_db_path())

    @db_path.setter
    def db_path(self, value: str) -> None:
        self.q.setValue("library/db", value)

    @property
    def cache_dir(self) -> Path:
        return Path(str(self.q.value("library/cache_dir") or default_cache_dir()))

    @property
    def models_dir(self) -> Path:
        """Where retrained models are saved (each beside the earlier ones, never overwritten)."""
        return Path(str(self.q.value("library/models_dir") or user_data_dir() / "models"))

    @property
    def detection_size(self) -> int:
        try:
            return int(self.q.value("scan/detection_size", DEFAULT_DETECTION_SIZE))
        except (TypeError, ValueError):
            return DEFAULT_DETECTION_SIZE

    @detection_size.setter
    def detection_size(self, value: int) -> None:
        self.q.setValue("scan/detection_size", int(value))

    @property
    def watch_folders(self) -> bool:
        """Scan new, changed, moved and deleted files of the library folders while the app is open."""
        return str(self.q.value("scan/watch", "true")).lower() == "true"

    @watch_folders.setter
    def watch_folders(self, value: bool) -> None:
        self.q.setValue("scan/watch", "true" if value else "false")

    @property
    def threshold_overrides(self) -> dict[str, float]:
        """Per-attribute thresholds the user set; the model card's calibrated values otherwise."""
        return {k: float(v) for k, v in self._get_json("display/thresholds", {}).items()}

    @threshold_overrides.setter
    def threshold_overrides(self, value: dict[str, float]) -> None:
        self._set_json("display/thresholds", value)

    @property
    def ignored_problems(self) -> list[str]:
        """Unreadable files the user chose to stop seeing in the problems panel."""
        return self._get_json("problems/ignored", [])

    @ignored_problems.setter
    def ignored_problems(self, value: list[str]) -> None:
        self._set_json("problems/ignored", list(dict.fromkeys(value)))

    @property
    def thumbnail_size(self) -> int:
        try:
            return int(self.q.value("grid/thumbnail_size", 160))
        except (TypeError, ValueError):
            return 160

    @thumbnail_size.setter
    def thumbnail_size(self, value: int) -> None:
        self.q.setValue("grid/thumbnail_size", int(value))

    @property
    def saved_filters(self) -> dict[str, str]:
        return self._get_json("filters/saved", {})

    @saved_filters.setter
    def saved_filters(self, value: dict[str, str]) -> None:
        self._set_json("filters/saved", value)
