"""``quart session cleanup|count|show|delete`` through click's runner, on the
filesystem and memory stores (and memcached, which cannot count)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Coroutine
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from click.testing import Result
from quart import Quart, jsonify, request, session
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio

from quart_session import ServerSideSessionInterface, Session, records
from quart_session.cli import session_cli
from quart_session.stores.base import Store

from .servers.memcached import MemcachedServer
from .servers.processes import free_port

REPO = Path(__file__).resolve().parents[1]
PREFIX = "session:"
_T = TypeVar("_T")


def make_app(folder: Path, store_type: str, app_class: type[Quart] = Quart, **config: Any) -> Quart:
    app = app_class(__name__)
    app.config.update(
        SECRET_KEY="cli-test-secret", SESSION_TYPE=store_type, SESSION_FILE_DIR=str(folder)
    )
    app.config.update(config)
    Session(app)

    @app.post("/")
    async def write() -> ResponseReturnValue:
        session.update(await request.get_json())
        return ""

    @app.get("/")
    async def read() -> ResponseReturnValue:
        return jsonify(dict(session))

    return app


@pytest.fixture(params=["filesystem", "memory"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Quart:
    return make_app(tmp_path / "sessions", request.param)


def run(app: Quart, func: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    backend = "trio" if isinstance(app, QuartTrio) else "asyncio"
    return anyio.run(func, backend=backend)


def create_session(app: Quart, *, close_store: bool = False, **data: Any) -> str:
    """Store a session holding *data* through a request; its cookie value.

    A networked store's client belongs to the request's event loop: with
    *close_store* it is closed there, as a server does at shutdown, so that a
    command later opens its own.
    """

    async def post() -> str:
        response = await app.test_client().post("/", json=data)
        if close_store:
            await interface_of(app).close()
        cookie = SimpleCookie(response.headers["Set-Cookie"])
        return cookie[app.config["SESSION_COOKIE_NAME"]].value

    return run(app, post)


def read_session(app: Quart, cookie: str) -> dict[str, Any]:
    """The session data a request with *cookie* sees."""

    async def get() -> dict[str, Any]:
        client = app.test_client()
        name = app.config["SESSION_COOKIE_NAME"]
        response = await client.get("/", headers={"Cookie": f"{name}={cookie}"})
        data: dict[str, Any] = await response.get_json()
        return data

    return run(app, get)


def interface_of(app: Quart) -> ServerSideSessionInterface:
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    return interface


def store_of(app: Quart) -> Store:
    """The store the app's requests use (the CLI closes the app's reference
    when it is done; this one stays usable to check what is left)."""
    return interface_of(app).store


def key_of(app: Quart, sid: str) -> str:
    """The store key of session *sid* (a hash of the id by default)."""
    return interface_of(app).engine.key_for(sid)


def where(store: Store) -> str:
    return f"the {store.name} store at {store.address}"


def quart_session(app: Quart, *args: str) -> Result:
    result: Result = app.test_cli_runner().invoke(args=["session", *args])
    return result


def test_count_counts_live_sessions(app: Quart) -> None:
    store = store_of(app)
    result = quart_session(app, "count")
    assert (result.exit_code, result.output) == (0, f"0 sessions live in {where(store)}.\n")

    create_session(app, user="alice")
    create_session(app, user="bob")
    result = quart_session(app, "count")
    assert (result.exit_code, result.output) == (0, f"2 sessions live in {where(store)}.\n")


def test_show_prints_the_decoded_data_as_json(app: Quart) -> None:
    cookie = create_session(app, user="alice", cart={"tea": 2}, tags=["a", "b"])
    result = quart_session(app, "show", cookie)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"user": "alice", "cart": {"tea": 2}, "tags": ["a", "b"]}


def test_show_prints_types_json_lacks_as_text(tmp_path: Path) -> None:
    app = make_app(tmp_path, "filesystem")

    @app.post("/when")
    async def when() -> ResponseReturnValue:
        session["seen"] = datetime(2025, 1, 2, 3, 4, 5)
        return ""

    async def post() -> str:
        response = await app.test_client().post("/when")
        return SimpleCookie(response.headers["Set-Cookie"])["session"].value

    result = quart_session(app, "show", run(app, post))
    assert json.loads(result.output) == {"seen": "2025-01-02 03:04:05"}


def test_show_and_delete_accept_a_signed_cookie_value_or_the_bare_id(tmp_path: Path) -> None:
    app = make_app(tmp_path, "filesystem", SESSION_USE_SIGNER=True)
    cookie = create_session(app, user="alice")
    bare_id = cookie.split(".")[0]
    assert cookie != bare_id

    for value in (cookie, bare_id):
        result = quart_session(app, "show", value)
        assert (result.exit_code, json.loads(result.output)) == (0, {"user": "alice"})
    # The store knows the session by a hash of the id only.
    store = store_of(app)
    assert run(app, lambda: store.load(PREFIX + bare_id)) is None
    assert run(app, lambda: store.load(key_of(app, bare_id))) is not None
    tampered = bare_id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert quart_session(app, "show", tampered).exit_code == 2
    assert quart_session(app, "delete", cookie).exit_code == 0
    assert read_session(app, cookie) == {}


def test_show_of_an_unknown_session_fails(app: Quart) -> None:
    unknown = "A" * 43
    result = quart_session(app, "show", unknown)
    assert result.exit_code == 1
    assert f"no live session {unknown}" in result.output


def test_malformed_id_is_rejected_before_the_store(app: Quart) -> None:
    for command in ("show", "delete"):
        result = quart_session(app, command, "../../etc/passwd")
        assert result.exit_code == 2
        assert "not a session id of this app" in result.output


def test_delete_logs_the_user_out(app: Quart) -> None:
    alice = create_session(app, user="alice")
    bob = create_session(app, user="bob")
    store = store_of(app)
    result = quart_session(app, "delete", alice)
    assert result.exit_code == 0
    assert result.output == f"Deleted session {alice} from {where(store)}.\n"
    assert run(app, lambda: store.load(key_of(app, alice))) is None
    assert run(app, lambda: store.load(key_of(app, bob))) is not None

    result = quart_session(app, "delete", alice)
    assert result.exit_code == 1
    assert f"no live session {alice}" in result.output


def test_a_deleted_session_is_gone_for_its_browser(tmp_path: Path) -> None:
    app = make_app(tmp_path, "filesystem")
    alice = create_session(app, user="alice")
    assert quart_session(app, "delete", alice).exit_code == 0
    assert read_session(app, alice) == {}


def test_cleanup_purges_expired_sessions_only(app: Quart) -> None:
    cookies = [create_session(app, n=n) for n in range(3)]
    store = store_of(app)
    for cookie in cookies[:2]:
        assert run(app, lambda cookie=cookie: store.load(key_of(app, cookie), 1))  # type: ignore[misc]
    time.sleep(1.1)

    result = quart_session(app, "cleanup")
    assert result.exit_code == 0
    assert result.output == f"Purged 2 sessions (expired) from {where(store)}.\n"
    assert run(app, lambda: store.count(PREFIX)) == 1
    assert run(app, lambda: store.load(key_of(app, cookies[2]))) is not None


def test_commands_work_on_a_trio_app(tmp_path: Path) -> None:
    app = make_app(tmp_path, "filesystem", app_class=QuartTrio)
    cookie = create_session(app, user="alice")
    assert quart_session(app, "count").output.startswith("1 session live")
    assert json.loads(quart_session(app, "show", cookie).output) == {"user": "alice"}


def test_memcached_cannot_count_and_expires_by_itself(
    tmp_path: Path, memcached_server: MemcachedServer
) -> None:
    app = make_app(
        tmp_path,
        "memcached",
        SESSION_MEMCACHED_HOST=memcached_server.host,
        SESSION_MEMCACHED_PORT=memcached_server.port,
    )
    address = f"{memcached_server.host}:{memcached_server.port}"

    result = quart_session(app, "count")
    assert result.exit_code == 1
    assert f"the memcached store at {address} cannot count its sessions" in result.output
    result = quart_session(app, "cleanup")
    assert (result.exit_code, result.output) == (
        0,
        f"Nothing to purge: the memcached store at {address} expires sessions by itself.\n",
    )
    cookie = create_session(app, close_store=True, user="alice")
    assert json.loads(quart_session(app, "show", cookie).output) == {"user": "alice"}


def test_a_store_that_is_down_gives_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    app = make_app(tmp_path, "memcached", SESSION_MEMCACHED_PORT=port)
    result = quart_session(app, "count")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: session store 'memcached' at 127.0.0.1:{port}: ")


def test_an_app_without_quart_session_is_told_so(tmp_path: Path) -> None:
    app = Quart(__name__)
    result = app.test_cli_runner().invoke(session_cli, ["count"])
    assert result.exit_code == 1
    assert "this app does not use quart_session" in result.output


def test_the_quart_command_line_reaches_the_demo(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QUART_APP": "examples.demo.app:create_app",
        "SESSION_FILE_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "quart", "session", "count"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (
        0,
        f"0 sessions live in the filesystem store at {tmp_path}.\n",
    ), done.stderr


def test_ids_starting_with_a_dash_are_ids_not_options(app: Quart) -> None:
    interface = interface_of(app)
    sid = "-" + "A" * 42  # base64url ids start with "-" one time in 64
    payload = interface.engine.encode({"user": "dash"}, records.meta(True, None))

    def plant() -> Store:
        # A memory store lives only until a command closes it: plant each time.
        store = store_of(app)
        run(app, lambda: store.save(interface.engine.key_for(sid), payload, 60, None))
        return store

    plant()
    shown = quart_session(app, "show", sid)
    assert (shown.exit_code, json.loads(shown.output)) == (0, {"user": "dash"})
    store = plant()
    assert quart_session(app, "delete", sid).exit_code == 0
    assert run(app, lambda: store.load(interface.engine.key_for(sid))) is None


# What a user can put in a session to attack the admin's terminal: clear the
# screen (ESC), a C1 control sequence introducer, bidi override and isolate.
HOSTILE = ("\x1b[2J", "\x9b", "\u202e", "\u2066")
ESCAPED = ("\\u001b[2J", "\\u009b", "\\u202e", "\\u2066")


def terminal_output(app: Quart, *args: str) -> Result:
    """Run a command as for a terminal: click keeps ANSI sequences in."""
    result: Result = app.test_cli_runner().invoke(args=["session", *args], color=True)
    return result


def assert_safe_for_a_terminal(output: str) -> None:
    unprintable = {
        char
        for char in output
        if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn")
    }
    assert unprintable == set(), output
    for escaped in ESCAPED:
        assert escaped in output, output


def test_show_escapes_characters_that_could_rewrite_the_terminal(tmp_path: Path) -> None:
    app = make_app(tmp_path, "filesystem")
    data = {f"key{char}": f"value{char}end" for char in HOSTILE}
    data["name"] = "José 日本"
    result = terminal_output(app, "show", create_session(app, **data))
    assert result.exit_code == 0, result.output
    assert_safe_for_a_terminal(result.output)
    assert "José 日本" in result.output  # ordinary text stays readable
    assert json.loads(result.output) == data  # and the output is still the data's JSON


def test_messages_and_errors_are_escaped_too(tmp_path: Path) -> None:
    app = make_app(tmp_path / f"sessions{''.join(HOSTILE)}", "filesystem")
    cookie = create_session(app, user="alice")
    for args, exit_code in (
        (["count"], 0),
        (["show", "A" * 43], 1),  # "no live session ... in the filesystem store at ..."
        (["delete", cookie], 0),
    ):
        result = terminal_output(app, *args)
        assert result.exit_code == exit_code, result.output
        assert_safe_for_a_terminal(result.output)


def test_store_errors_are_escaped(tmp_path: Path) -> None:
    app = make_app(tmp_path, "memcached", SESSION_MEMCACHED_HOST=f"host{''.join(HOSTILE)}")
    result = terminal_output(app, "count")
    assert result.exit_code == 1
    assert result.output.startswith("Error: session store 'memcached' at host"), result.output
    assert_safe_for_a_terminal(result.output)


# -- sessions per user: ``quart session user`` and ``revoke-user`` ----------------------


def user_app(tmp_path: Path) -> Quart:
    """An app whose sessions belong to ``session["user_id"]``."""
    return make_app(tmp_path / "sessions", "filesystem", SESSION_USER_KEY="user_id")


def log_in(app: Quart, user: object, user_agent: str = "TestBrowser/1.0") -> str:
    """A session of *user* created from a browser saying *user_agent*; its cookie."""

    async def post() -> str:
        client = app.test_client()
        response = await client.post(
            "/", json={"user_id": user}, headers={"User-Agent": user_agent}
        )
        cookie = SimpleCookie(response.headers["Set-Cookie"])
        return cookie[app.config["SESSION_COOKIE_NAME"]].value

    return run(app, post)


def table_rows(output: str) -> list[list[str]]:
    """The rows of the table under the first line of *output*, split into cells."""
    return [re.split(r"\s{2,}", line) for line in output.splitlines()[1:]]


def test_user_lists_the_sessions_of_the_user(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    log_in(app, "alice", "Firefox/128.0")
    log_in(app, "alice", "Safari/17.5 (Macintosh)")
    log_in(app, "bob", "Opera/100")
    listed = run(app, lambda: interface_of(app).user_sessions("alice"))

    result = quart_session(app, "user", "alice")
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == f"2 sessions of user alice in {where(store_of(app))}:"
    header, *rows = table_rows(result.output)
    assert header == [
        "HANDLE",
        "CREATED (UTC)",
        "LAST SEEN (UTC)",
        "EXPIRES (UTC)",
        "ADDRESS",
        "USER AGENT",
    ]
    # Most recently used first, as user_sessions lists them.
    assert [row[0] for row in rows] == [info.handle for info in listed]
    assert sorted(row[5] for row in rows) == ["Firefox/128.0", "Safari/17.5 (Macintosh)"]
    for row, info in zip(rows, listed, strict=True):
        assert row[1:4] == [
            moment.strftime("%Y-%m-%d %H:%M:%S")
            for moment in (info.created_at, info.last_seen_at, info.expires_at)
        ]
        assert row[4] == (info.address or "-")
    # The columns line up: each cell starts where its header does.
    lines = result.output.splitlines()[1:]
    for title in ("CREATED", "ADDRESS", "USER AGENT"):
        column = lines[0].index(title)
        assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines)


def test_user_without_sessions_says_so(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    log_in(app, "bob")
    result = quart_session(app, "user", "alice")
    assert (result.exit_code, result.output) == (
        0,
        f"No live sessions of user alice in {where(store_of(app))}.\n",
    )


def test_revoke_user_logs_out_every_session_of_the_user(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    alice = [log_in(app, "alice"), log_in(app, "alice")]
    bob = log_in(app, "bob")

    result = quart_session(app, "revoke-user", "alice")
    assert (result.exit_code, result.output) == (
        0,
        f"Ended 2 sessions of user alice in {where(store_of(app))}.\n",
    )
    assert [read_session(app, cookie) for cookie in alice] == [{}, {}]
    assert read_session(app, bob) == {"user_id": "bob"}
    assert quart_session(app, "user", "alice").output.startswith("No live sessions")
    again = quart_session(app, "revoke-user", "alice")
    assert again.output == f"Ended 0 sessions of user alice in {where(store_of(app))}.\n"


def test_a_user_typed_as_a_number_matches_its_json_text(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    as_number, as_text = log_in(app, 42), log_in(app, "42")
    log_in(app, 4.2)

    listed = quart_session(app, "user", "42")
    assert listed.output.splitlines()[0].startswith("2 sessions of user 42 in "), listed.output
    result = quart_session(app, "revoke-user", "42")
    assert result.output.startswith("Ended 2 sessions of user 42 in "), result.output
    assert read_session(app, as_number) == read_session(app, as_text) == {}
    assert quart_session(app, "user", "4.2").output.startswith("1 session of user 4.2 in ")


def test_users_starting_with_a_dash_are_users_not_options(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    log_in(app, "-1")
    assert quart_session(app, "user", "-1").output.startswith("1 session of user -1 in ")
    assert quart_session(app, "revoke-user", "-1").output.startswith("Ended 1 session of user -1")


def test_user_commands_need_session_user_key(app: Quart) -> None:
    for command in ("user", "revoke-user"):
        result = quart_session(app, command, "alice")
        assert (result.exit_code, result.output) == (
            1,
            "Error: SESSION_USER_KEY is not set: this app's sessions are not indexed by user.\n",
        )


def test_user_table_escapes_what_the_browser_and_the_operator_typed(tmp_path: Path) -> None:
    app = user_app(tmp_path)
    hostile = "".join(HOSTILE)
    log_in(app, f"eve{hostile}", f"Evil{hostile}/1.0")
    result = terminal_output(app, "user", f"eve{hostile}")
    assert result.exit_code == 0, result.output
    assert_safe_for_a_terminal(result.output)
    assert len(result.output.splitlines()) == 3  # the line, the header, one session
    result = terminal_output(app, "revoke-user", f"eve{hostile}")
    assert result.exit_code == 0, result.output
    assert_safe_for_a_terminal(result.output)


def test_rotate_rewrites_the_users_indexes_too(tmp_path: Path) -> None:
    """After rotating and dropping the old key, revoke-user still finds every
    session: the index records are resealed like the sessions."""
    old, new = os.urandom(32), os.urandom(32)
    config: dict[str, Any] = {"SESSION_USER_KEY": "user_id"}
    before = make_app(tmp_path, "filesystem", SESSION_ENCRYPTION_KEYS=[old], **config)
    cookies = [log_in(before, "alice"), log_in(before, "alice")]
    rotating = make_app(tmp_path, "filesystem", SESSION_ENCRYPTION_KEYS=[new, old], **config)
    rotated = quart_session(rotating, "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert rotated.output.endswith("\nChecked 1 user index: 1 rewritten under the first key.\n")
    after = make_app(tmp_path, "filesystem", SESSION_ENCRYPTION_KEYS=[new], **config)
    result = quart_session(after, "revoke-user", "alice")
    assert result.output.startswith("Ended 2 sessions of user alice"), result.output
    assert [read_session(after, cookie) for cookie in cookies] == [{}, {}]
