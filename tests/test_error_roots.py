"""One error root per package, in one module: every public exception class of keeper/ is
defined in keeper/errors.py under KeeperError, every one of scripts/ in scripts/errors.py
under ScriptError."""

from __future__ import annotations

from keeper.errors import KeeperError


def _public_errors_defined_outside(package: str, errors_module: str) -> list[str]:
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    found = []
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not name.startswith("_")  # a module's private control-flow signal
                and info.name != errors_module
            ):
                found.append(f"{info.name}.{name}")
    return found


def test_every_public_keeper_error_is_in_keeper_errors_under_one_root() -> None:
    import keeper.errors

    assert _public_errors_defined_outside("keeper", "keeper.errors") == []
    classes = [v for v in vars(keeper.errors).values() if isinstance(v, type)]
    errors = [c for c in classes if issubclass(c, BaseException)]
    assert errors and all(issubclass(c, KeeperError) for c in errors)


def test_every_public_scripts_error_is_in_scripts_errors_under_one_root() -> None:
    import scripts.errors

    assert _public_errors_defined_outside("scripts", "scripts.errors") == []
    errors = [getattr(scripts.errors, n) for n in scripts.errors.__all__]
    assert all(issubclass(c, scripts.errors.ScriptError) for c in errors)
