"""Session stores, and how ``SESSION_TYPE`` picks one.

``SESSION_TYPE`` is one of three things:

* a name in ``STORES`` (or an old name in ``ALIASES``): the module of this
  package whose ``from_settings(settings) -> Store`` builds the store. Modules
  are imported only when chosen, so a store's driver is needed only when used;
* a ``Store`` instance, used as it is;
* ``"package.module:factory"``, a third-party store: ``factory(settings)``
  returns the ``Store`` (like Django's ``SESSION_ENGINE``).

``resolve_store_type`` checks the value when the app is set up, importing a factory's
module then so that a typo fails at start-up; ``build_store`` builds the store on
first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ..compat import STORE_TYPE_ALIASES
from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "ALIASES",
    "STORES",
    "Outcome",
    "Record",
    "SaveResult",
    "Store",
    "Version",
    "build_store",
    "resolve_store_type",
]

#: SESSION_TYPE names -> the module of this package that builds the store.
STORES = {
    "redis": ".redis",
    "memcached": ".memcached",
    "sqlalchemy": ".sqlalchemy",
    "mongodb": ".mongodb",
    "dynamodb": ".dynamodb",
    "filesystem": ".filesystem",
    "memory": ".memory",
    "null": ".null",
}
#: Old names that still work: old name -> name.
ALIASES = STORE_TYPE_ALIASES

StoreFactory = Callable[["Settings"], object]


def resolve_store_type(value: object) -> str:
    """Check a SESSION_TYPE *value*; return how settings name it: the store's
    name (an alias resolved, or a given instance's ``name``) or the factory path.
    """
    if isinstance(value, Store):
        return value.name
    if not isinstance(value, str):
        raise SessionConfigError(
            "SESSION_TYPE must be a store name, a Store instance or "
            f"'package.module:factory', not {value!r}"
        )
    name = ALIASES.get(value, value)
    if name in STORES:
        return name
    if ":" not in value:
        raise SessionConfigError(
            f"SESSION_TYPE {value!r} is unknown; use one of {', '.join(STORES)}, "
            "a Store instance, or 'package.module:factory' for a store of your own"
        )
    factory_at(value)
    return value


def factory_at(path: str) -> StoreFactory:
    """The callable a ``"package.module:factory"`` SESSION_TYPE names."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute.isidentifier():
        raise SessionConfigError(f"SESSION_TYPE {path!r} must be written 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise SessionConfigError(
            f"SESSION_TYPE {path!r}: module {module_name!r} cannot be imported: {error!r}"
        ) from error
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise SessionConfigError(
            f"SESSION_TYPE {path!r}: module {module_name!r} has no {attribute!r}"
        ) from None
    if not callable(found):
        raise SessionConfigError(
            f"SESSION_TYPE {path!r}: {attribute!r} is a {type(found).__name__}, "
            "not a callable taking the settings and returning a Store"
        )
    return cast(StoreFactory, found)


def build_store(settings: Settings) -> Store:
    """The store SESSION_TYPE names, configured from the settings."""
    chosen = settings.raw["SESSION_TYPE"]
    if isinstance(chosen, Store):
        return chosen
    name = settings.store_type
    if name in STORES:
        module = importlib.import_module(STORES[name], __name__)
        built: Store = module.from_settings(settings)
        return built
    made = factory_at(name)(settings)
    if not isinstance(made, Store):
        raise SessionConfigError(
            f"SESSION_TYPE {name!r} returned a {type(made).__name__}, not a "
            "quart_session.stores.Store"
        )
    return made
