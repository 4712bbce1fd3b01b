"""Shared fixtures. Tests that need ../shared skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SAMPLE_PHOTOS = REPO / "resources" / "sample_photos"


@pytest.fixture(scope="session", autouse=True)
def user_data_folder(tmp_path_factory):
    """Tests (and the processes they start) never touch the real user data folder: the default
    library, installed models, the log."""
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("user_data"))
    yield Path(os.environ["XDG_DATA_HOME"])
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(scope="session")
def model():
    """The bundled attribute model, loaded once per run (tests only run it)."""
    from photo_sorter.model import AttributeModel

    return AttributeModel.load()


@pytest.fixture(scope="session")
def sample_scan(tmp_path_factory, model, new_db):
    """The bundled sample photos scanned once per run and kind of database (in place, read-only)
    into a temporary library: (engine, summary), for tests that only read the library."""
    from photo_sorter import scan
    from photo_sorter.store import open_engine

    engine = open_engine(new_db(tmp_path_factory.mktemp("sample")))
    return engine, scan.scan(engine, [SAMPLE_PHOTOS], model=model)


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "celeba" / "list_attr_celeba.txt").is_file():
        pytest.skip("../shared (real CelebA) is not available")
    return SHARED


@pytest.fixture
def unprivileged():
    """run(code) -> CompletedProcess: Python code in a child that file modes bind. As root (CI)
    the child keeps its uid but loses the capabilities that override modes (setpriv), so the
    permission tests run there too instead of being skipped."""
    import shutil
    import subprocess
    import sys

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv (util-linux) to drop the mode override")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]

    def run(code: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*prefix, sys.executable, "-c", code], cwd=REPO, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0 or not check, result.stderr[-2000:]
        return result

    return run


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole run (tests/postgres_server.py); skips when it cannot be
    started here."""
    import postgres_server

    reason = postgres_server.missing()
    if reason:
        pytest.skip(reason)
    server = postgres_server.Server()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def new_db(request):
    """new_db(folder) -> a new, empty library: a SQLite file in folder, or a PostgreSQL database.
    Tests that use it run once per kind of database."""
    if request.param == "sqlite":
        return lambda folder: Path(folder) / "library.db"
    server = request.getfixturevalue("postgres")
    return lambda folder: server.new_database()


@pytest.fixture
def db_url(new_db, tmp_path):
    """A new, empty library of each kind (see new_db)."""
    return new_db(tmp_path)


def db_arg(engine) -> str:
    """The --db argument naming engine's library: a SQLite file's path, else the URL."""
    url = engine.url
    return url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=False)
