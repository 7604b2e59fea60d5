"""The front-end API beside the proof API (keeper/api.py): markets, instruments, one
subaccount's positions and risk, its history, and ``POST /simulate``."""

from keeper.web.routes import WebRoutes

__all__ = ["WebRoutes"]
