"""SESSION_TYPE beyond the built-in names: a Store instance, or a third-party
store named "package.module:factory", checked when the app is set up."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart, session

from quart_session import Session
from quart_session.errors import SessionConfigError
from quart_session.stores import ALIASES, STORES
from quart_session.stores.memory import MemoryStore

from ..suites.behaviour import Browser

pytestmark = pytest.mark.anyio

MODULE = "acme_sessions"
#: A third-party store as a package outside this project would ship it.
SOURCE = """
from quart_session.stores.memory import MemoryStore

FACTORY_CALLS = []
NOT_CALLABLE = "a string"


class AcmeStore(MemoryStore):
    name = "acme"


def make_store(settings):
    FACTORY_CALLS.append(settings.key_prefix)
    return AcmeStore()


def make_nothing(settings):
    return {"not": "a store"}
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The module ``acme_sessions``, importable from a folder of the test's own."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield lambda: sys.modules[MODULE]
    sys.modules.pop(MODULE, None)


def make_app(store_type: object) -> Quart:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="registry", SESSION_TYPE=store_type)

    @app.get("/set/<value>")
    async def set_value(value: str) -> str:
        session["value"] = value
        return value

    @app.get("/get")
    async def get_value() -> str:
        return repr(session.get("value"))

    return app


async def test_a_third_party_store_is_built_by_its_factory_and_used(acme: Any) -> None:
    app = make_app(f"{MODULE}:make_store")
    Session(app)
    # Imported when the app is set up, so that a typo fails at start-up; the
    # store itself is built on first use.
    assert acme().FACTORY_CALLS == []
    browser = Browser(app)
    assert await browser.text("/set/alice") == "alice"
    assert await browser.text("/get") == "'alice'"
    store = app.session_interface.store  # type: ignore[attr-defined]
    assert isinstance(store, acme().AcmeStore)
    assert acme().FACTORY_CALLS == ["session:"]
    assert await store.count("session:") == 1


async def test_a_store_instance_is_used_as_it_is() -> None:
    store = MemoryStore()
    app = make_app(store)
    Session(app)
    assert app.session_interface.settings.store_type == "memory"  # type: ignore[attr-defined]
    browser = Browser(app)
    assert await browser.text("/set/bob") == "bob"
    assert app.session_interface.store is store  # type: ignore[attr-defined]
    assert await store.count("session:") == 1
    assert await browser.text("/get") == "'bob'"


@pytest.mark.parametrize(
    ("store_type", "error"),
    [
        ("no_such_package.sessions:make", "module 'no_such_package.sessions' cannot be imported"),
        (f"{MODULE}:missing", f"module '{MODULE}' has no 'missing'"),
        (f"{MODULE}:NOT_CALLABLE", "'NOT_CALLABLE' is a str, not a callable"),
        (f"{MODULE}:", "must be written 'package.module:factory'"),
        (":make_store", "must be written 'package.module:factory'"),
        (f"{MODULE}:make-store", "must be written 'package.module:factory'"),
        ("redsi", "'redsi' is unknown; use one of redis, memcached"),
        (42, "must be a store name, a Store instance or 'package.module:factory', not 42"),
        (MemoryStore, "must be a store name, a Store instance"),
    ],
)
async def test_a_bad_session_type_is_refused_when_the_app_is_set_up(
    acme: Any, store_type: object, error: str
) -> None:
    with pytest.raises(SessionConfigError, match=error.replace("(", r"\(")):
        Session(make_app(store_type))


async def test_a_module_failing_to_import_is_refused_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_sessions.py").write_text("import no_such_driver\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SessionConfigError, match="no_such_driver") as refused:
        Session(make_app("broken_sessions:make"))
    assert isinstance(refused.value.__cause__, ModuleNotFoundError)


async def test_a_factory_returning_no_store_is_refused_when_the_store_is_built(
    acme: Any,
) -> None:
    app = make_app(f"{MODULE}:make_nothing")
    Session(app)
    with pytest.raises(SessionConfigError, match="returned a dict, not a quart_session"):
        app.session_interface.store  # type: ignore[attr-defined]  # noqa: B018


def test_every_registered_name_names_a_module_with_a_builder() -> None:
    for name, module in STORES.items():
        assert callable(importlib.import_module(module, "quart_session.stores").from_settings), name
    assert set(ALIASES.values()) <= set(STORES)
