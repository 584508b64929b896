"""``quart session ...``: inspect and clean up stored sessions from the shell.

Each command runs the app's ``before_serving`` hooks, opens the store, does its
one job and closes the store again (then runs ``after_serving``): a client an
app puts in ``app.config`` from a ``before_serving`` hook is the one used.
(``while_serving`` generators run once per app, so they are left to servers.)
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import anyio
import click
from quart.cli import AppGroup, ScriptInfo

from .engine import SessionEngine
from .errors import SessionBackendError, SessionConfigError
from .interface import ServerSideSessionInterface
from .runtime import is_trio_app
from .stores.base import Store
from .stores.sealed import Resealed, SealedStore
from .users import INDEX_PREFIX, SessionInfo

session_cli = AppGroup("session", help="Inspect and clean up server-side sessions.")

Operation = Callable[[ServerSideSessionInterface], Awaitable[str]]

#: Characters a terminal must never receive raw from stored data: control
#: characters (C0, DEL, C1: escape sequences that can rewrite the screen), format
#: characters (bidi overrides and isolates, which reorder what is shown), line and
#: paragraph separators, surrogates, private use and unassigned code points.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(char: str) -> str:
    """*char* as a JSON escape (a surrogate pair beyond the BMP), so that JSON
    output stays JSON that decodes to the same data."""
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """*text* with every unprintable character escaped (``\\u202e``); ordinary
    text in any script (é, 日本) stays readable."""
    return "".join(
        _escape(char) if unicodedata.category(char) in UNPRINTABLE_CATEGORIES else char
        for char in text
    )


def _run(operation: Operation) -> None:
    """Run *operation* against the app's session store and print its result."""
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    interface = app.session_interface
    if not isinstance(interface, ServerSideSessionInterface):
        raise click.ClickException("this app does not use quart_session: call Session(app)")

    async def serving() -> str:
        async with app.app_context():
            for setup in app.before_serving_funcs:
                await app.ensure_async(setup)()
            await interface.start()
            try:
                return await operation(interface)
            finally:
                await interface.close()
                for teardown in app.after_serving_funcs:
                    await app.ensure_async(teardown)()

    # Results and errors can hold stored data, ids and driver messages: none
    # reaches the terminal unescaped.
    try:
        message = anyio.run(serving, backend="trio" if is_trio_app(app) else "asyncio")
    except (SessionBackendError, SessionConfigError) as error:
        raise click.ClickException(for_terminal(str(error))) from error
    except click.ClickException as error:
        error.message = for_terminal(error.message)
        raise
    # Line by line: the only line breaks in a result are its own (JSON escapes
    # those inside strings).
    click.echo("\n".join(map(for_terminal, message.split("\n"))))


def _sessions(number: int) -> str:
    return f"{number} session" if number == 1 else f"{number} sessions"


def _where(store: Store) -> str:
    return f"the {store.name} store at {store.address}"


def _session_id(interface: ServerSideSessionInterface, value: str) -> str:
    """The id in *value*: a bare id, or a cookie value (signed when signing is on)."""
    if interface.ids.is_valid(value):
        return value
    sid = interface.ids.from_cookie(value)
    if sid is None:
        raise click.BadParameter(
            "not a session id of this app (wrong length, characters or signature)",
            param_hint="ID",
        )
    return sid


@session_cli.command("cleanup")
def cleanup() -> None:
    """Delete expired sessions; print how many.

    Stores with native expiry (Redis, memcached, MongoDB, DynamoDB) have nothing
    to do; run it from cron for the filesystem and SQL stores.
    """

    async def purge(interface: ServerSideSessionInterface) -> str:
        store = interface.store
        if not store.needs_purge:
            return f"Nothing to purge: {_where(store)} expires sessions by itself."
        purged = await interface.engine.purge_expired()
        return f"Purged {_sessions(purged)} (expired) from {_where(store)}."

    _run(purge)


@session_cli.command("count")
def count() -> None:
    """Print how many live sessions the store holds."""

    async def count_live(interface: ServerSideSessionInterface) -> str:
        store = interface.store
        if not store.can_count:
            raise click.ClickException(
                f"{_where(store)} cannot count its sessions "
                "(the backend offers no way to list its keys)."
            )
        live = await interface.engine.count()
        return f"{_sessions(live)} live in {_where(store)}."

    _run(count_live)


# Ids may start with "-": never read them as options.
@session_cli.command("show", context_settings={"ignore_unknown_options": True})
@click.argument("session_id", metavar="ID")
def show(session_id: str) -> None:
    """Print the data of session ID as JSON."""

    async def show_data(interface: ServerSideSessionInterface) -> str:
        sid = _session_id(interface, session_id)
        engine = interface.engine
        record = await engine.load_record(sid)
        if record is None:
            raise click.ClickException(f"no live session {sid} in {_where(engine.store)}")
        try:
            data, _ = engine.decode(record.payload)
        except ValueError as error:
            raise click.ClickException(f"session {sid} cannot be read: {error}") from None
        # Types JSON lacks (datetime, UUID, bytes...) are shown as text.
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)

    _run(show_data)


@session_cli.command("delete", context_settings={"ignore_unknown_options": True})
@click.argument("session_id", metavar="ID")
def delete(session_id: str) -> None:
    """Delete session ID (its user is logged out)."""

    async def delete_record(interface: ServerSideSessionInterface) -> str:
        sid = _session_id(interface, session_id)
        engine = interface.engine
        record = await engine.load_record(sid)
        if record is None:
            raise click.ClickException(f"no live session {sid} in {_where(engine.store)}")
        await engine.end(sid, record.version)
        return f"Deleted session {sid} from {_where(engine.store)}."

    _run(delete_record)


def _require_user_index(interface: ServerSideSessionInterface) -> None:
    if interface.settings.user_key is None:
        raise click.ClickException(
            "SESSION_USER_KEY is not set: this app's sessions are not indexed by user."
        )


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _row(info: SessionInfo) -> list[str]:
    return [
        info.handle,
        _stamp(info.created_at),
        _stamp(info.last_seen_at),
        _stamp(info.expires_at),
        info.address or "-",
        info.user_agent or "-",
    ]


SESSION_COLUMNS = ["HANDLE", "CREATED (UTC)", "LAST SEEN (UTC)", "EXPIRES (UTC)", "ADDRESS"]


def session_table(sessions: Sequence[SessionInfo]) -> str:
    """*sessions* as aligned columns, the user agent last (it runs long)."""
    # Cells are escaped before they are measured: a user agent is the
    # client's text, and a line break in it must not start a row of its own.
    rows = [[*SESSION_COLUMNS, "USER AGENT"]]
    rows += [[for_terminal(cell) for cell in _row(info)] for info in sessions]
    widths = [max(len(row[column]) for row in rows) for column in range(len(SESSION_COLUMNS))]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        )
        for row in rows
    )


# A user may start with "-" too.
@session_cli.command("user", context_settings={"ignore_unknown_options": True})
@click.argument("user", metavar="USER")
def user(user: str) -> None:
    """List the live sessions of USER (SESSION_USER_KEY), most recently used first.

    USER is compared as text: 42 matches a session holding 42 or "42".
    """

    async def list_sessions(interface: ServerSideSessionInterface) -> str:
        _require_user_index(interface)
        found = await interface.user_sessions(user)
        where = _where(interface.store)
        if not found:
            return f"No live sessions of user {user} in {where}."
        return f"{_sessions(len(found))} of user {user} in {where}:\n" + session_table(found)

    _run(list_sessions)


@session_cli.command("revoke-user", context_settings={"ignore_unknown_options": True})
@click.argument("user", metavar="USER")
def revoke_user(user: str) -> None:
    """End every session of USER (SESSION_USER_KEY): logged out everywhere.

    USER is compared as text: 42 matches a session holding 42 or "42".
    """

    async def revoke_all(interface: ServerSideSessionInterface) -> str:
        _require_user_index(interface)
        ended = await interface.revoke_user(user)
        return f"Ended {_sessions(ended)} of user {user} in {_where(interface.store)}."

    _run(revoke_all)


@session_cli.command("rotate")
def rotate() -> None:
    """Rewrite every live session under the first SESSION_ENCRYPTION_KEYS key.

    Run it after putting a new key first, then remove the old keys; or, with
    the keys set, before switching encryption on in production: unencrypted
    sessions get encrypted instead of logged out. Each rewrite is a
    compare-and-set (a request writing the session meanwhile wins) and gives
    the session a full PERMANENT_SESSION_LIFETIME, as a request would.
    """
    _run(rotate_sessions)


async def rotate_sessions(interface: ServerSideSessionInterface) -> str:
    """What ``quart session rotate`` does, and the line it prints."""
    engine = interface.engine
    store = engine.store
    if not isinstance(store, SealedStore):
        raise click.ClickException(
            "SESSION_ENCRYPTION_KEYS is not set: there is no key to rewrite sessions under."
        )
    if not store.can_list:
        raise click.ClickException(
            f"{_where(store)} cannot list its sessions, so they cannot be rewritten: keep "
            "the old keys in SESSION_ENCRYPTION_KEYS until the sessions they sealed have "
            "expired (PERMANENT_SESSION_LIFETIME after the new key went first)."
        )
    outcomes = await _reseal_all(engine, engine.settings.key_prefix, engine.ttl_of)
    checked = sum(outcomes.values())
    line = f"Checked {_sessions(checked)} in {_where(store)}" + _found(outcomes) + "."
    users = engine.users
    if users is None:
        return line
    # Users' indexes are sealed like sessions: left under a dropped key, they
    # would be started anew, and revoke_user would miss the sessions they list.
    indexes = await _reseal_all(
        engine, INDEX_PREFIX + engine.settings.key_prefix, lambda _: users.ttl()
    )
    count = sum(indexes.values())
    noun = "user index" if count == 1 else "user indexes"
    return f"{line}\nChecked {count} {noun}" + _found(indexes) + "."


def _found(outcomes: Counter[Resealed]) -> str:
    found = ", ".join(f"{outcomes[kind]} {kind.value}" for kind in Resealed if outcomes[kind])
    return f": {found}" if found else ""


async def _reseal_all(
    engine: SessionEngine, prefix: str, ttl_of: Callable[[bytes], int | None]
) -> Counter[Resealed]:
    """Reseal every record under *prefix*; how each went."""
    store = engine.store
    assert isinstance(store, SealedStore)
    outcomes: Counter[Resealed] = Counter()
    seen: set[str] = set()
    try:
        async for key in store.keys(prefix):
            if key not in seen:  # a listing may repeat a key written meanwhile
                seen.add(key)
                outcomes[await engine.calls.run(store, store.reseal, key, ttl_of)] += 1
    except SessionBackendError:
        raise
    except Exception as error:  # the driver's own, while listing
        raise SessionBackendError(
            store.name, store.address, f"listing the sessions failed: {error!r}"
        ) from error
    return outcomes
