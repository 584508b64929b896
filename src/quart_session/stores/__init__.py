"""Session stores, and how ``SESSION_TYPE`` picks one.

Each backend module offers ``from_settings(settings) -> Store``. Modules are
imported only when chosen, so a store's driver is needed only when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Outcome", "Record", "SaveResult", "Store", "Version", "build_store"]


def build_store(settings: Settings) -> Store:
    """The store ``settings.store_type`` names, configured from the settings."""
    module = importlib.import_module(f".{settings.store_type}", __name__)
    from_settings: Callable[[Settings], Store] = module.from_settings
    return from_settings(settings)
