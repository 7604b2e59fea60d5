"""Click options shared by the ``keeper`` and ``liquidator`` command groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import click

__all__ = ["common_group_options", "setup_logging"]

F = TypeVar("F", bound=Callable[..., object])


def common_group_options(config_help: str) -> Callable[[F], F]:
    """``--config`` (``config_path``, help text ``config_help``), ``--log-format`` and
    ``--log-level``, in that order in ``--help``."""

    def decorate(f: F) -> F:
        f = click.option("--log-level", default="INFO", show_default=True)(f)
        f = click.option(
            "--log-format", type=click.Choice(["json", "kv"]), default="json", show_default=True
        )(f)
        f = click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=config_help,
        )(f)
        return f

    return decorate


def setup_logging(log_format: str, log_level: str) -> None:
    """Configure logging from the group's ``--log-format`` / ``--log-level``."""
    from keeper.lifecycle import configure_logging

    # click.Choice has already refused anything but these two.
    fmt: Literal["json", "kv"] = "kv" if log_format == "kv" else "json"
    configure_logging(log_level.upper(), fmt)
