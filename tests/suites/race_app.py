"""The app of the regenerate-race tests, served by a real multi-worker server:

    QUART_SESSION_RACE_CONFIG='{"SESSION_TYPE": "filesystem", ...}' \\
        python -m hypercorn --workers 2 --bind 127.0.0.1:PORT "tests.suites.race_app:create_app()"

Every worker builds its own app from the same JSON config (so it holds only
URLs, hosts and ports, never client objects). Each response names the process
that served it in ``X-Worker-Pid``, so a test can see which worker took which
request. The slow views load the session first and act after a delay: the
order of a race is set by sleeps, whichever worker serves which request.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import anyio
from quart import Quart, Response, current_app, session
from werkzeug.exceptions import BadRequest

from quart_session import Session

from .views import add_session_views, log_in

CONFIG_VARIABLE = "QUART_SESSION_RACE_CONFIG"
PID_HEADER = "X-Worker-Pid"
#: Config key: seconds a slow view blocks its worker's event loop right after
#: loading the session (see ``_pause``). Only for multi-worker runs.
HOLD_KEY = "RACE_HOLD_WORKER"
#: Longest delay a slow view accepts: a race needs a second at most, and a
#: bounded sleep keeps a mistaken test from hanging a worker.
MAX_DELAY = 5.0


def create_app() -> Quart:
    """The race app configured from ``$QUART_SESSION_RACE_CONFIG`` (a JSON object)."""
    config = json.loads(os.environ[CONFIG_VARIABLE])
    if not isinstance(config, dict):
        raise TypeError(f"{CONFIG_VARIABLE} must hold a JSON object")
    return race_app(config)


async def _pause(delay: float) -> None:
    """Wait *delay* seconds, the first ``RACE_HOLD_WORKER`` of them blocking
    this worker's event loop.

    The workers share one listening socket and the kernel hands a new
    connection to whichever worker accepts first, nearly always the same one.
    A blocked worker accepts nothing, so the request a test sends meanwhile is
    served by another worker: each race spans two processes.
    """
    if not 0 <= delay <= MAX_DELAY:
        raise BadRequest(f"delay must be between 0 and {MAX_DELAY} seconds")
    hold = min(delay, float(current_app.config.get(HOLD_KEY, 0)))
    time.sleep(hold)  # noqa: ASYNC251 - blocking the loop is the point
    await anyio.sleep(delay - hold)


def race_app(config: dict[str, Any]) -> Quart:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="race", **config)

    @app.after_request
    async def name_the_worker(response: Response) -> Response:
        response.headers[PID_HEADER] = str(os.getpid())
        return response

    add_session_views(app, _pause)

    @app.get("/slow-logout/<float:delay>")
    async def slow_logout(delay: float) -> str:
        session.get("seed")  # loaded now, cleared after the delay
        await _pause(delay)
        session.clear()
        return "bye"

    @app.get("/slow-login/<float:delay>")
    async def slow_login(delay: float) -> str:
        session.get("seed")  # loaded now, regenerated after the delay
        await _pause(delay)
        await log_in()
        return "welcome"

    Session(app)
    return app
