"""Cost per request of ids in a header (SESSION_ID_HEADER) next to cookies.

Run as ``.venv/bin/python -m benchmarks.id_header [requests per round]``. One
app per configuration on the memory store (so the store costs almost nothing
and the id transport shows), driven through ASGI in this process; the
scenarios are run in a new random order each round, and the median of the rounds'
mean µs per request is printed, with the median per-round difference from
``cookie`` (the paired difference cancels most machine noise):

* ``cookie``: no SESSION_ID_HEADER, the id in the cookie (the baseline);
* ``cookie+hdr``: SESSION_ID_HEADER set, a request without it (cookie mode);
* ``header``: the id in the header.

for a read (sliding expiry on: a cookie is re-sent, a header id is not) and a
write (the cookie is re-sent, the header is not: the id did not change).
Then the transport's own work, timed alone (best of 7 runs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
import timeit
from typing import Any

from quart import Quart, Response

from .memory_app import memory_app, print_paired, timed_rounds
from .worker import AsgiClient

HEADER = "X-Session-Id"
ROUNDS = 31
PATHS = ("/read", "/write")


def build(id_header: str | None) -> Quart:
    return memory_app(SESSION_ID_HEADER=id_header, SESSION_REFRESH_AFTER=0)


def with_header(scope: dict[str, Any], value: str) -> dict[str, Any]:
    return {**scope, "headers": [*scope["headers"], (HEADER.lower().encode(), value.encode())]}


async def main(n: int) -> None:
    plain, both = build(None), build(HEADER)
    for app in (plain, both):
        await app.startup()
    clients = {"cookie": AsgiClient(plain), "cookie+hdr": AsgiClient(both)}
    clients["header"] = AsgiClient(both)
    scopes: dict[tuple[str, str], dict[str, Any]] = {}
    for name, client in clients.items():
        fill = client.scope("/fill", None)
        if name == "header":
            await client.call(with_header(fill, ""))
            sid = dict(client.headers)[HEADER.lower().encode()].decode()
        else:
            await client.call(fill)
            sid = client.set_cookie() or ""
        assert sid, name
        for path in PATHS:
            if name == "header":
                scopes[name, path] = with_header(client.scope(path, None), sid)
            else:
                scopes[name, path] = client.scope(path, sid)
    calls = {key: (clients[key[0]].call, scope) for key, scope in scopes.items()}
    means = await timed_rounds(calls, n, ROUNDS)
    for app in (plain, both):
        await app.shutdown()
    print_paired(means, list(clients), PATHS, "cookie")


def transport_costs() -> None:
    """The id transport's own work per request (read the id, pick the
    transport, Vary, and the id on the response when due), best of 7 runs:
    what end-to-end timings on a busy machine cannot resolve."""
    from quart_session.config import Settings
    from quart_session.transport import IdTransports

    app = build(HEADER)
    settings = Settings.from_app(app)
    allowed = IdTransports(settings)
    cookie_only = IdTransports(dataclasses.replace(settings, id_header=None))
    sid = "A" * 43
    common = {
        "Host": "example.test",
        "User-Agent": "bench",
        "Accept": "*/*",
        "Accept-Language": "en",
    }
    with_cookie = app.test_request_context("/", headers={**common, "Cookie": f"session={sid}"})
    with_header = app.test_request_context("/", headers={**common, HEADER: sid})

    def one(transports: IdTransports, request: Any, due: bool) -> None:
        value = transports.read(request)
        transport = transports.of(request)
        response = Response("")
        transport.vary(response)
        if due:  # a refreshed read or a write: the cookie is re-sent
            transport.send(request, response, value or "", True, int(time.time()) + 3600)

    def best(work: Any) -> float:
        return min(timeit.repeat(work, number=20_000, repeat=7)) / 20_000 * 1e6

    empty = best(lambda: Response(""))
    print("transport work per request, µs (best of 7): id kept / id due")
    for name, transports, context in (
        ("cookie", cookie_only, with_cookie),
        ("cookie+hdr", allowed, with_cookie),
        ("header", allowed, with_header),
    ):
        request = context.request
        kept = best(lambda: one(transports, request, False)) - empty  # noqa: B023
        due = best(lambda: one(transports, request, True)) - empty  # noqa: B023
        print(f"{name:12}{kept:8.2f}{due:8.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
    transport_costs()
