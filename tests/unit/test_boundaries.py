"""The package boundaries: what runs inside PostgreSQL imports nothing it cannot have there.

`core` and `server` are installed into the server (see the Makefile); `client` and `cli` run
in applications and on the command line. Imports are read from the source, at any depth, so a
lazy import inside a function counts too.
"""

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plpython" / "selfheal"
INSTALLED = ("core", "server")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """Every module the file imports, resolved to its absolute name, with the node that does it."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # `from . import x` imports the submodule x when there is one.
            found += [(f"{module}.{a.name}" if (PACKAGE.parent / module.replace(".", "/") / a.name).exists()
                       or (PACKAGE.parent / module.replace(".", "/") / f"{a.name}.py").exists() else module, node)
                      for a in node.names]
    return found


def _files(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).glob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def _inside(name: str, *subpackages: str) -> bool:
    return any(name == f"selfheal.{p}" or name.startswith(f"selfheal.{p}.") for p in subpackages)


def test_core_imports_only_the_standard_library_and_itself():
    for path in _files("core"):
        for name, _ in _imports(path):
            assert _inside(name, "core") or _top(name) in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_server_imports_only_the_standard_library_core_and_itself():
    # No psycopg, sqlalchemy or pglast (pglast crashes the backend), and no client or cli code.
    for path in _files("server"):
        for name, _ in _imports(path):
            assert _inside(name, "core", "server") or _top(name) in sys.stdlib_module_names, \
                f"server/{path.name} imports {name}"


def test_the_installed_package_root_loads_the_client_only_on_demand():
    """selfheal/__init__.py is installed too; its one client import runs only when an app asks for
    selfheal.connect and friends, never at import time."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    module_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert module_level == []
    lazy = [name for name, _ in _imports(PACKAGE / "__init__.py")]
    assert lazy == ["selfheal.client"]


def test_only_the_adapter_layer_uses_plpy():
    for path in _files("core"):
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        assert "plpy" not in names, f"core/{path.name} uses plpy"


def test_client_and_cli_never_import_the_server_package():
    for subpackage in ("client", "cli"):
        for path in _files(subpackage):
            for name, _ in _imports(path):
                assert not _inside(name, "server"), f"{subpackage}/{path.name} imports {name}"


def test_client_does_not_depend_on_the_cli():
    for path in _files("client"):
        for name, _ in _imports(path):
            assert not _inside(name, "cli"), f"client/{path.name} imports {name}"


def test_every_subpackage_is_a_package_that_pip_installs():
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert set(INSTALLED) <= set(subpackages)
    for name in subpackages:
        assert (PACKAGE / name / "__init__.py").exists(), name
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted(["selfheal"] + [f"selfheal.{n}" for n in subpackages])


def test_the_makefile_installs_core_and_server_whole():
    makefile = (ROOT / "Makefile").read_text()
    assert f"SERVER_PACKAGES = {' '.join(INSTALLED)}" in makefile
    assert "filter-out" not in makefile
