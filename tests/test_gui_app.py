"""Start-up of the desktop app: the Linux library check, the quiet terminal, --db / --remember."""

from __future__ import annotations

import subprocess
import sys

from photo_sorter.gui.app import library_db, missing_xcb_packages, parse_args
from test_gui import REPO, make_settings


def test_missing_xcb_libraries_are_named_as_packages(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    missing = missing_xcb_packages(lambda lib: None if lib in ("xcb-cursor", "xkbcommon-x11") else f"lib{lib}.so")
    assert missing == ["libxcb-cursor0", "libxkbcommon-x11-0"]
    assert missing_xcb_packages(lambda lib: f"lib{lib}.so") == []
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # no xcb: nothing to check
    assert missing_xcb_packages(lambda lib: None) == []


def test_the_app_exits_with_one_line_when_xcb_libraries_are_missing(tmp_path):
    code = ("import sys, ctypes.util; ctypes.util.find_library = lambda name: None; "
            "from photo_sorter.gui.app import run; sys.exit(run([]))")
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": ":99", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120, cwd=str(REPO), check=False)  # this checkout's photo_sorter
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install libxcb-cursor0" in lines[0]


def test_quiet_terminal_sends_native_and_python_chatter_to_the_log(tmp_path):
    log = tmp_path / "logs" / "photo_sorter.log"
    code = f"""
import os, warnings, logging
from pathlib import Path
from photo_sorter.gui.app import quiet_terminal
quiet_terminal(Path({str(log)!r}))
os.write(2, b"W tensorflow: Incompatible shapes: [1,2] vs [3]\\n")
warnings.warn("detector warning")
logging.getLogger("tensorflow").warning("cuda not found")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=str(REPO), check=False)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    text = log.read_text()
    assert "Incompatible shapes" in text and "detector warning" in text and "cuda not found" in text


def test_db_is_remembered_only_with_remember(tmp_path):
    settings = make_settings(tmp_path)
    default = settings.db_path
    assert library_db(parse_args(["--db", str(tmp_path / "other.db")]), settings) == str(tmp_path / "other.db")
    assert settings.db_path == default
    assert library_db(parse_args([]), settings) == default
    library_db(parse_args(["--db", str(tmp_path / "other.db"), "--remember"]), settings)
    assert settings.db_path == str(tmp_path / "other.db")


def test_file_dialogs_start_in_the_last_folder_or_pictures(tmp_path, monkeypatch):
    import os

    from PySide6.QtCore import QSettings, QStandardPaths

    from photo_sorter.gui.config import remember_folder, start_folder

    monkeypatch.chdir(tmp_path)
    QStandardPaths.setTestModeEnabled(True)  # QSettings and Pictures under ~/.qttest, not the user's
    try:
        QSettings("photo_sorter", "photo_sorter").remove("dialogs/last_folder")
        assert start_folder() != os.getcwd()
        chosen = tmp_path / "albums"
        chosen.mkdir()
        remember_folder(str(chosen / "list.txt"))  # a saved file's folder counts
        assert start_folder() == str(chosen)
        chosen.rmdir()  # a folder that has gone is not offered
        assert start_folder() != str(chosen)
    finally:
        QSettings("photo_sorter", "photo_sorter").remove("dialogs/last_folder")
        QStandardPaths.setTestModeEnabled(False)
