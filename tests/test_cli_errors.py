"""The CLI's promise: every failure of every command is one line on stderr and an exit status
(2: the user's input, paths or database; 1: a bug), never a traceback; the traceback goes to
the log file under the user data folder. Fuzzed over the expression grammar and the arguments."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from library_factory import make_library
from photo_sorter import cli, query
from photo_sorter.attributes import DEFAULT_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent

PHOTOS = [
    {"name": "a.jpg", "faces": [{"probs": {"Smiling": 0.9, "Male": 0.8}}, {"probs": {"Eyeglasses": 0.9}}]},
    {"name": "b.jpg", "faces": [{"probs": {"Smiling": 0.3}}], "burst_id": 1},
    {"name": "c.jpg", "faces": [{"probs": {"Smiling": 0.8, "Young": 0.9}}], "burst_id": 1},
    {"name": "d.jpg", "faces": []},
]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A small library with its photos on disk; the user data folder (the log) and the working
    folder (relative --out paths) inside the test's temp folder."""
    tmp = tmp_path_factory.mktemp("cli")
    make_library(tmp / "lib.db", PHOTOS, photo_dir=tmp / "photos")
    old_env, old_cwd = os.environ.get("XDG_DATA_HOME"), os.getcwd()
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    (tmp / "cwd").mkdir()
    os.chdir(tmp / "cwd")
    yield tmp
    os.chdir(old_cwd)
    if old_env is None:
        del os.environ["XDG_DATA_HOME"]
    else:
        os.environ["XDG_DATA_HOME"] = old_env


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_failure(code, err, expected=2):
    assert code == expected, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


# --- the mechanism ---------------------------------------------------------------------------

def test_a_bug_is_one_line_with_the_traceback_in_the_log(library, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(query, "photos", broken)
    code, out, err = run("photos", "--where", "Smiling", "--db", library / "lib.db")
    assert_one_line_failure(code, err, expected=1)
    log = library / "data" / "photo_sorter" / "logs" / "photo_sorter.log"
    assert f"unexpected RuntimeError: boom with a second line (details in {log})" in err
    text = log.read_text()
    assert "Traceback" in text and "in broken" in text and "photos --where Smiling" in text


def test_usage_errors_are_one_line(library):
    for argv in (["nope"], ["photos"], ["photos", "--where", "x", "--limit", "ten"], []):
        code, _, err = run(*argv)
        assert_one_line_failure(code, err)
    assert run("photos", "--help")[0] == 0


def test_a_real_process_prints_one_line(library):
    """Nothing else reaches stderr in a real run (warnings, a traceback from the interpreter)."""
    env = {**os.environ, "XDG_DATA_HOME": str(library / "data")}
    for where in ("(" * 300 + "Smiling" + ")" * 300, "not " * 2000 + "Smiling", "Smiling >"):
        proc = subprocess.run([sys.executable, "main.py", "--headless", "photos", "--where", where,
                               "--db", str(library / "lib.db")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert_one_line_failure(proc.returncode, proc.stderr)


def test_scan_over_ray_without_ray(library, monkeypatch):
    """The app works without the [cluster] extra; `scan --ray` says how to install it."""
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = run("scan", library / "photos", "--ray", "auto", "--db", library / "lib.db")
    assert_one_line_failure(code, err)
    assert "needs Ray: pip install 'photo_sorter[cluster]'" in err
    code, _, err = run("scan", library / "photos", "--ray", "auto", "--workers", "2", "--db", library / "lib.db")
    assert_one_line_failure(code, err)
    assert "--ray scans with the cluster's CPUs" in err


def test_scan_over_ray_at_an_address_where_none_answers(library):
    """At once (Ray itself would retry for minutes), one line each."""
    pytest.importorskip("ray")
    code, _, err = run("scan", library / "photos", "--ray", "127.0.0.1:1", "--db", library / "lib.db")
    assert_one_line_failure(code, err)
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err
    for address in ("localhost", "host:port", "ray://", "", "host:70000"):
        code, _, err = run("scan", library / "photos", "--ray", address, "--db", library / "lib.db")
        assert_one_line_failure(code, err)
        assert f"not a Ray cluster's address: {address!r}" in err


# --- outputs and numbers (issue 11, item 9) ---------------------------------------------------

def test_bad_outputs_are_refused_before_any_work(library):
    db = library / "lib.db"
    folder = library / "a_folder"
    folder.mkdir(exist_ok=True)
    a_file = library / "a_file"
    a_file.write_text("keep me")
    for argv, message in [
        (["export", "--format", "csv", "--out", folder], "is a folder; give a file name"),
        (["export", "--format", "json", "--out", a_file / "x.json"], "is a file, not a folder"),
        (["export", "--format", "xmp", "--out", a_file], "is a file; give a folder"),
        (["cluster", "--out", a_file], "is a file; give a folder"),
        (["best-smiling", "--out", a_file], "is a file; give a folder"),
        (["export", "--format", "json", "--out", "/proc/nowhere/x.json"], "/proc"),
    ]:
        code, out, err = run(*argv, "--db", db)
        assert_one_line_failure(code, err)
        assert message in err and out == ""
    assert a_file.read_text() == "keep me" and list(folder.iterdir()) == []


def test_unwritable_output_folder(library, unprivileged, tmp_path):
    """As a user without write permission on the folder (run unprivileged, also as root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    proc = unprivileged("import sys; from photo_sorter.cli import main; sys.exit(main(["
                        f"'export', '--format', 'csv', '--out', {str(locked / 'x.csv')!r}, "
                        f"'--db', {str(library / 'lib.db')!r}]))", check=False)
    assert_one_line_failure(proc.returncode, proc.stderr)
    assert "no permission to write in" in proc.stderr and not list(locked.iterdir())


@pytest.mark.parametrize("option, value", [("--limit", 2**64), ("--offset", 2**63), ("--limit", -1),
                                           ("--offset", "1e3"), ("--limit", "9" * 5000)])
def test_numbers_beyond_what_the_library_holds(library, option, value):
    code, _, err = run("faces", "--where", "Smiling", option, value, "--db", library / "lib.db")
    assert_one_line_failure(code, err)
    with pytest.raises(query.QueryError, match="between 0 and"):
        query.photos(None, "Smiling", limit=2**64)


# --- fuzzing ---------------------------------------------------------------------------------

NAMES = [*DEFAULT_ATTRIBUTES[:6], "smiling", "Attractive", "Smilling", "x", "_", "9lives"]
ATOMS = st.one_of(
    st.sampled_from(NAMES),
    st.tuples(st.sampled_from(NAMES), st.sampled_from(["<", "<=", ">", ">=", "=", "!"]),
              st.sampled_from(["0.5", ".9", "1", "5.", "", "x", "-1", "1e3", "9" * 400])).map(" ".join),
)
EXPRESSIONS = st.recursive(ATOMS, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["and", "or", "AND", "", "and and", "xor"]), inner).map(" ".join),
    inner.map(lambda e: f"not {e}"),
    inner.map(lambda e: f"({e})"),
    inner.map(lambda e: f"({e}"),
    st.tuples(st.sampled_from(["all:", "any:", "ALL:", "some:"]), inner).map("".join),
), max_leaves=12)
NASTY = st.one_of(
    st.integers(0, 400).map(lambda n: "(" * n + "Smiling" + ")" * n),
    st.integers(0, 3000).map(lambda n: "not " * n + "Smiling"),
    st.integers(1, 700).map(lambda n: " or ".join(["Smiling > 0.5"] * n)),
    st.integers(1, 30).map(lambda n: "".join(("(any:Male or ", "not (Young and ")[i % 2] for i in range(n))
                           + "Smiling" + ")" * n),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=st.one_of(EXPRESSIONS, NASTY), kind=st.sampled_from(["photos", "faces"]))
def test_fuzz_expressions(library, expr, kind):
    code, out, err = run(kind, "--where", expr, "--limit", "5", "--db", library / "lib.db")
    assert code in (0, 2), err
    if code == 2:
        assert_one_line_failure(code, err)


COMMANDS = ["photos", "faces", "errors", "cluster", "best-smiling", "choose-best", "export",
            "purge-missing", "install-model", "train", "scan", "evaluate"]
FLAGS = ["--json", "--no-visual-split", "--clear", "--help-me", "-x"]
OPTIONS = ["--where", "--limit", "--offset", "--k", "--seed", "--attributes", "--out", "--gap-seconds",
           "--event-gap-seconds", "--min-photos", "--format", "--sidecar-name", "--min-face",
           "--detect-size", "--confidence", "--epochs", "--partition", "--bogus"]
VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str),
    st.floats().map(str),
    st.sampled_from(["", "-", "auto", "0", "-1", "1e309", "nan", "Smiling", "Smiling,Male", ",",
                     "csv", "json", "xmp", "stem", "all:Smiling", "out", "out/x.json", "/proc/x",
                     "../a_file", "../a_file/x", "../a_folder", "/dev/null", "."]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command=st.sampled_from(COMMANDS),
       args=st.lists(st.one_of(st.sampled_from(FLAGS).map(lambda f: [f]),
                               st.tuples(st.sampled_from(OPTIONS), VALUES).map(list),
                               VALUES.map(lambda v: [v])), max_size=5))
def test_fuzz_arguments(library, command, args):
    """Arguments of every kind for the library's commands. Commands that would load the model
    (scan, train, ...) get a required argument left out or a bad one, so they fail at parsing."""
    argv = [command, *(a for pair in args for a in pair)]
    if command in ("install-model", "train", "scan", "evaluate"):
        argv.append("--bogus")  # never a model load in a fuzz loop
    code, out, err = run(*argv, "--db", library / "lib.db")
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert_one_line_failure(code, err)


def test_progress_bar_draws_on_a_terminal_only(monkeypatch, capsys):
    with cli.progress_bar("scan") as show:  # stderr captured: not a terminal, so nothing
        show(3, 10, "2 faces, 0 errors")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    monkeypatch.setenv("COLUMNS", "100")
    with cli.progress_bar("scan") as show:
        show(3, 10, "2 faces, 0 errors")
    err = capsys.readouterr().err
    assert "scan" in err and "3/10" in err and "2 faces, 0 errors" in err
