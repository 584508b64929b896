"""Every serializer round-trips the rich types through real requests."""

from __future__ import annotations

import json
import logging
import os
import pickle
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup
from quart import Quart, request, session

from quart_session import Session

from .suites.behaviour import Browser

pytestmark = pytest.mark.anyio

RICH = {
    "tuple": (1, "two", (3.0, None)),
    "bytes": b"\x00\xffbinary",
    "markup": Markup("<b>bold</b>"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "aware": datetime(2026, 11, 22, 10, 30, 15, 123456, tzinfo=UTC),
    "naive": datetime(2026, 11, 22, 10, 30, 15, 654321),
    "nested": {"list": [1, {"deep": (b"x",)}], " t": "a key that looks like a tag"},
    "text": "ünïcode ✓",
}


#: Only types JSON's fast path tags itself (no bytes, Markup, UUID, tag-like keys).
COMMON = {
    "flashes": [("message", "Welcome back!"), ("info", "Cart saved.")],
    "visits": [{"page": "/", "at": datetime(2026, 11, 22, 9, 0, 1, 5, tzinfo=UTC)}],
    "deep": {"a": {"b": [1, (2, (3, [datetime(2026, 1, 1)]))]}},
    "cart": [{"sku": "TEA", "qty": 2}, {"sku": "MUG", "qty": 1}],
    "user_id": 7,
}


def rich_app(tmp_path: Path, data: dict[str, Any] = RICH, **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="s", SESSION_TYPE="filesystem", SESSION_FILE_DIR=str(tmp_path), **config
    )

    @app.get("/write")
    async def write() -> str:
        session.update(data)
        return "ok"

    @app.get("/check")
    async def check() -> str:
        same = {
            key: session.get(key) == value and type(session.get(key)) is type(value)
            for key, value in data.items()
        }
        return json.dumps(same)

    Session(app)
    return app


async def round_trip(app: Quart) -> dict[str, bool]:
    browser = Browser(app)
    await browser.text("/write")
    return await check(browser)


async def check(browser: Browser) -> dict[str, bool]:
    return dict(json.loads(await browser.text("/check")))


def stored_files(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.iterdir() if p.is_file()]


@pytest.mark.parametrize("name", ["json", "msgpack", "pickle"])
async def test_rich_types_round_trip(tmp_path: Path, name: str) -> None:
    result = await round_trip(rich_app(tmp_path, SESSION_SERIALIZER=name))
    assert result == dict.fromkeys(RICH, True)


async def test_json_is_readable_json_in_the_store(tmp_path: Path) -> None:
    await round_trip(rich_app(tmp_path))
    (content,) = stored_files(tmp_path)
    data = json.loads(content.partition(b"\n")[2])
    assert data["text"] == "ünïcode ✓"
    assert data["tuple"] == {" t": [1, "two", {" t": [3.0, None]}]}
    # The tag index: every top-level value that holds a tag.
    assert data["_qs"]["t"] == [key for key in RICH if key != "text"]


async def test_common_types_round_trip_and_only_tagged_values_are_indexed(
    tmp_path: Path,
) -> None:
    assert await round_trip(rich_app(tmp_path, COMMON)) == dict.fromkeys(COMMON, True)
    (content,) = stored_files(tmp_path)
    assert json.loads(content.partition(b"\n")[2])["_qs"]["t"] == ["flashes", "visits", "deep"]


@pytest.mark.parametrize(
    "index",
    [None, ["flashes", "visits", "deep", "gone"], "flashes", [1], [*COMMON]],
    ids=["none", "names-a-missing-key", "not-a-list", "not-str", "names-plain-values"],
)
async def test_json_with_a_missing_or_wrong_tag_index_is_untagged_everywhere(
    tmp_path: Path, index: Any
) -> None:
    """Data without a usable index (Quart-Session 3.0's, or edited by hand) is
    untagged everywhere, as the standard decoder's hook would."""
    app = rich_app(tmp_path, COMMON)
    browser = Browser(app)
    await browser.text("/write")
    replace_tag_index(tmp_path, index)
    assert await check(browser) == dict.fromkeys(COMMON, True)


def replace_tag_index(folder: Path, index: Any) -> None:
    """Edit the one stored session's tag index (None: remove it)."""
    (path,) = (p for p in folder.iterdir() if p.is_file())
    header, _, payload = path.read_bytes().partition(b"\n")
    data = json.loads(payload)
    if index is None:
        del data["_qs"]["t"]
    else:
        data["_qs"]["t"] = index
    deadline = path.stat().st_mtime_ns  # the filesystem store's expiry
    path.write_bytes(header + b"\n" + json.dumps(data).encode())
    os.utime(path, ns=(deadline, deadline))


async def test_msgpack_is_smaller_than_json(tmp_path: Path) -> None:
    await round_trip(rich_app(tmp_path / "json"))
    await round_trip(rich_app(tmp_path / "msgpack", SESSION_SERIALIZER="msgpack"))
    (json_record,) = stored_files(tmp_path / "json")
    (msgpack_record,) = stored_files(tmp_path / "msgpack")
    assert len(msgpack_record) < len(json_record)


async def test_pickle_only_when_named_and_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "quart_session"):
        await round_trip(rich_app(tmp_path, SESSION_SERIALIZER="pickle"))
    assert "pickle" in caplog.text


async def test_the_seed_readme_way_to_swap_the_serializer_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = rich_app(tmp_path)
    app.session_interface.serialize = pickle  # type: ignore[attr-defined]
    assert await round_trip(app) == dict.fromkeys(RICH, True)
    (content,) = stored_files(tmp_path)
    assert pickle.loads(content.partition(b"\n")[2])["text"] == "ünïcode ✓"
    assert "pickle" in caplog.text


class Reversed:
    """A user serializer: any object with dumps/loads (returning str is fine)."""

    def dumps(self, obj: Any) -> str:
        return json.dumps(obj)[::-1]

    def loads(self, data: bytes) -> Any:
        return json.loads(data.decode()[::-1])


async def test_an_object_with_dumps_and_loads_is_a_serializer(tmp_path: Path) -> None:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="s",
        SESSION_TYPE="filesystem",
        SESSION_FILE_DIR=str(tmp_path),
        SESSION_SERIALIZER=Reversed(),
    )

    @app.get("/set")
    async def set_() -> str:
        session["n"] = [1, 2]
        return "ok"

    @app.get("/get")
    async def get() -> str:
        return repr(session.get("n"))

    Session(app)
    browser = Browser(app)
    await browser.text("/set")
    assert await browser.text("/get") == "[1, 2]"
    (content,) = stored_files(tmp_path)
    assert content.endswith(b"{")  # reversed JSON: the opening brace comes last


#: A JSON request body whose text holds a lone surrogate and a 90-bit integer:
#: both legal JSON, both kept in the session as they came.
EDGY_BODY = b'{"name": "Ada \\ud800", "\\udfff": [123456789012345678901234567, -1]}'


def echo_app(tmp_path: Path, **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="s", SESSION_TYPE="filesystem", SESSION_FILE_DIR=str(tmp_path), **config
    )

    @app.post("/remember")
    async def remember() -> str:
        session["form"] = await request.get_json()
        return "ok"

    @app.post("/remember-set")
    async def remember_set() -> str:
        session["form"] = {"s3cr3t-value"}
        return "ok"

    @app.get("/recall")
    async def recall() -> str:
        return repr(session.get("form"))

    Session(app)
    return app


@pytest.mark.parametrize("name", ["json", "msgpack", "pickle"])
async def test_json_request_input_round_trips_exactly(tmp_path: Path, name: str) -> None:
    client = echo_app(tmp_path, SESSION_SERIALIZER=name).test_client()
    headers = {"Content-Type": "application/json"}
    assert (await client.post("/remember", data=EDGY_BODY, headers=headers)).status_code == 200
    response = await client.get("/recall")
    assert await response.get_data(as_text=True) == repr(json.loads(EDGY_BODY))


@pytest.mark.parametrize("name", ["json", "msgpack"])
async def test_a_value_that_cannot_be_stored_answers_400_naming_the_key(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = echo_app(tmp_path, SESSION_SERIALIZER=name).test_client()
    headers = {"Content-Type": "application/json"}
    await client.post("/remember", data=b'{"kept": 1}', headers=headers)
    (before,) = stored_files(tmp_path)
    with caplog.at_level(logging.WARNING, "quart_session"):
        response = await client.post("/remember-set")
    assert response.status_code == 400
    assert "session key 'form' cannot be stored: it holds a value of type set" in caplog.text
    assert "s3cr3t" not in caplog.text
    assert stored_files(tmp_path) == [before]
    assert await (await client.get("/recall")).get_data(as_text=True) == "{'kept': 1}"
