"""Released versions of selfheal, for the upgrade test and the benchmarks that compare with them.

Each released install script is kept as it was released in tests/fixtures/released/ (0.1.0:
commit 5205061's sql/*.sql, concatenated). `installed_script` puts one beside the current one
in the server's extension directory for as long as it is needed (as root, as `make install`
does), loading its Python from `python_lib_dir`.
"""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

RELEASED_DIR = Path(__file__).resolve().parent / "fixtures" / "released"
RELEASED = sorted(p.name[len("selfheal--"):-len(".sql")] for p in RELEASED_DIR.glob("selfheal--*.sql"))
# The commit each release was cut from: its Python package is read from git by the benchmarks.
RELEASE_COMMITS = {"0.1.0": "5205061"}


@contextmanager
def installed_script(version: str, python_lib_dir: str):
    sharedir = subprocess.run(["pg_config", "--sharedir"], check=True, capture_output=True, text=True).stdout.strip()
    script = Path(sharedir) / "extension" / f"selfheal--{version}.sql"
    kept = script.with_suffix(".sql.kept")
    if script.exists():
        shutil.move(script, kept)
    try:
        script.write_text((RELEASED_DIR / f"selfheal--{version}.sql").read_text().replace(
            "@PYTHON_LIB_DIR@", python_lib_dir))
        yield version
    finally:
        script.unlink(missing_ok=True)
        if kept.exists():
            shutil.move(kept, script)


@contextmanager
def released_python(version: str, into: Path):
    """The release's own Python package, from git, in `into` (for its install script to load)."""
    archive = subprocess.run(["git", "archive", RELEASE_COMMITS[version], "plpython/selfheal"],
                             cwd=Path(__file__).resolve().parents[1], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    into.chmod(0o755)
    yield str(into / "plpython")
