"""Every file the tool writes is checked against the library (issue 11): links and hard links to
photos, pipes, read-only and deep sidecars, modes, temporary files after a kill, long names,
and the tool's own images never scanned as photos."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from library_factory import make_library
from photo_sorter import export, files, outputs, scan, selection
from photo_sorter.outputs import OutputError, Outputs

FACE = [{"probs": {"Smiling": 0.9, "Eyeglasses": 0.8}, "box": (20, 30, 40, 48)}]


@pytest.fixture
def library(tmp_path):
    photos = [{"name": "a.jpg", "folder": "trip", "faces": FACE},
              {"name": "b.jpg", "folder": "trip", "faces": FACE},
              {"name": "c.jpg", "folder": "home", "faces": FACE}]
    engine, ids, _ = make_library(tmp_path / "lib.db", photos, photo_dir=tmp_path / "photos")
    return engine, tmp_path


def _digests(root: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))}


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(library, umask_027):
    engine, tmp = library
    kept = tmp / "photos" / "trip" / "b.jpg.xmp"
    kept.write_text(export.xmp.merge_sidecar(None, [], (0, 0)).decode())
    kept.chmod(0o604)
    result = export.export(engine, "xmp")
    assert result["sidecars"] == 3 and not result["errors"]
    assert (tmp / "photos" / "trip" / "a.jpg.xmp").stat().st_mode & 0o777 == 0o640  # 0666 & ~027
    assert kept.stat().st_mode & 0o777 == 0o604 and "Faces|Smiling" in kept.read_text()
    export.export(engine, "csv", out=tmp / "out" / "faces.csv")
    assert (tmp / "out" / "faces.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp / "out").stat().st_mode & 0o777 == 0o750


def test_hostile_existing_sidecars_are_skipped_one_by_one(library):
    """A read-only sidecar, a named pipe and a 5,000-deep one: each is left as it is and
    reported; the other photos still get their sidecars, and nothing blocks."""
    engine, tmp = library
    before = _digests(tmp / "photos")
    read_only = tmp / "photos" / "trip" / "a.jpg.xmp"
    read_only.write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    read_only.chmod(0o444)
    os.mkfifo(tmp / "photos" / "trip" / "b.jpg.xmp")
    deep = tmp / "photos" / "home" / "c.jpg.xmp"
    deep.write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + "<a>" * 5000 + "</a>" * 5000 + "</x:xmpmeta>")
    deep_text = deep.read_text()
    result = {}
    worker = threading.Thread(target=lambda: result.update(export.export(engine, "xmp")), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the export blocked on the named pipe"
    errors = sorted(result["errors"], key=lambda e: e.split(".jpg.xmp")[0][-1])  # by photo: a, b, c
    assert result["sidecars"] == 0 and len(errors) == 3
    assert errors[0].endswith("a.jpg.xmp is read-only; left alone")
    assert errors[1].endswith("b.jpg.xmp is not a regular file; left alone")
    assert errors[2].endswith("c.jpg.xmp is nested deeper than 64 elements; left untouched")
    assert read_only.read_text() == "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>" and deep.read_text() == deep_text
    deep.unlink()
    result = export.export(engine, "xmp")  # one hostile file less: that photo gets its sidecar
    assert [Path(p).name for p in result["files"]] == ["c.jpg.xmp"] and len(result["errors"]) == 2
    assert _digests(tmp / "photos") == before


def test_no_output_reaches_a_photo_through_a_link(library):
    engine, tmp = library
    photo = tmp / "photos" / "trip" / "a.jpg"
    before = _digests(tmp / "photos")
    (tmp / "link.csv").symlink_to(photo)
    (tmp / "dirlink").symlink_to(tmp / "photos" / "trip")
    os.link(photo, tmp / "hard.csv")
    for out, message in [(tmp / "link.csv", "is one of the library's photos"),
                         (tmp / "dirlink" / "a.jpg", "is one of the library's photos"),
                         (tmp / "hard.csv", "is one of the library's photos")]:
        with pytest.raises(OutputError, match=message):
            export.export(engine, "csv", out=out)
    # a sidecar name that is a link, to the photo itself or to anything else, is left alone
    (tmp / "photos" / "trip" / "a.jpg.xmp").symlink_to(photo)
    (tmp / "notes.txt").write_text("mine")
    (tmp / "photos" / "trip" / "b.jpg.xmp").symlink_to(tmp / "notes.txt")
    result = export.export(engine, "xmp")
    assert sorted(result["errors"]) == [
        f"{tmp / 'photos' / 'trip' / 'a.jpg.xmp'} is one of the library's photos; choose another output path",
        f"{tmp / 'photos' / 'trip' / 'b.jpg.xmp'} is a link; left alone"]
    assert (tmp / "notes.txt").read_text() == "mine"
    # an export folder whose subfolder leads elsewhere: nothing is written there
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (tmp / "xmp").mkdir()
    (tmp / "xmp" / "trip").symlink_to(elsewhere)
    result = export.export(engine, "xmp", out=tmp / "xmp")
    assert len(result["errors"]) == 2 and all("leads out of" in e for e in result["errors"])  # a, b
    assert list(elsewhere.iterdir()) == [] and result["files"] == [str(tmp / "xmp" / "home" / "c.jpg.xmp")]
    assert _digests(tmp / "photos") == before and photo.is_file() and not photo.is_symlink()


@pytest.mark.parametrize("target, message", [
    ("{tmp}", "is a folder; give a file name"),
    ("{tmp}/lib.db/x.json", "cannot write {tmp}/lib.db/x.json: Not a directory"),
    ("/proc/version/x.csv", "cannot write /proc/version/x.csv: Not a directory"),
])
def test_unusable_out_is_one_clear_error(library, target, message):
    """The core says what is wrong in one line (the CLI prints it, exit status 2)."""
    engine, tmp = library
    with pytest.raises(OutputError) as caught:
        export.export(engine, "json", out=target.format(tmp=tmp))
    assert message.format(tmp=tmp) in str(caught.value) and "\n" not in str(caught.value)


def test_long_names_fit_and_leftovers_of_a_killed_writer_are_swept(tmp_path):
    name = "n" * 245 + ".jpg.xmp"  # a legal 253-byte sidecar name
    assert len(os.fsencode(name)) == 253
    Outputs().write(tmp_path / name, b"<x/>")
    assert (tmp_path / name).read_bytes() == b"<x/>"
    # A writer killed between writing and renaming leaves its temporary file ...
    script = textwrap.dedent(f"""
        import os, sys, time
        from photo_sorter.outputs import Outputs
        os.fsync = lambda fd: (print("writing", flush=True), time.sleep(60))
        Outputs().write({str(tmp_path / "out.csv")!r}, b"x" * 1000)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    assert child.wait(30) == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir() if files.TEMP_NAME.fullmatch(p.name)]
    assert len(left) == 1 and not (tmp_path / "out.csv").exists()
    # ... and a live writer's one (here our own pid) must stay: the next write sweeps only the dead.
    live = tmp_path / f".photo_sorter-{os.getpid()}-0badf00d.tmp"
    live.write_bytes(b"")
    Outputs().write(tmp_path / "out.csv", b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out.csv", live.name])


def test_the_tools_own_images_are_never_scanned(library):
    engine, tmp = library
    groups = [{"best": {"photo_id": 1, "path": str(tmp / "photos" / "trip" / "a.jpg")}}]
    best = tmp / "photos" / "best"  # even inside the scanned folder
    copies = selection.copy_best(groups + groups, best, engine)
    assert [Path(c).name for c in copies] == ["a.jpg", "a_1.jpg"]
    Outputs(engine).write(tmp / "photos" / "sheets" / "run1_cluster1.png", b"png", record=True)
    (best / "mine.jpg").write_bytes((tmp / "photos" / "trip" / "a.jpg").read_bytes())  # the user's
    found = sorted(p.relative_to(tmp / "photos").as_posix() for p in scan.discover([tmp / "photos"]))
    assert found == ["best/mine.jpg", "home/c.jpg", "trip/a.jpg", "trip/b.jpg"]
    assert json.loads((best / outputs.MANIFEST).read_text()) == ["a.jpg", "a_1.jpg"]
    with pytest.raises(OutputError, match="exists; not replaced"):
        Outputs(engine).copy(tmp / "photos" / "trip" / "a.jpg", best / "mine.jpg")


def test_a_pipe_is_never_opened_for_reading(tmp_path):
    fifo = tmp_path / "card.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(OutputError, match="not a regular file"):
        outputs.read_regular(fifo, 1000)
    assert time.monotonic() - started < 5
