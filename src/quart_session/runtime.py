"""Which async library the code runs on: the one place that asks.

Inside a running loop, ``running_trio`` asks the loop itself (sniffio), and
``asyncio_loop`` answers the hot path's question — which asyncio loop, if any —
at the cost of one call; before any loop runs (the CLI choosing one), only the
app's class can tell, so ``is_trio_app`` asks that.
"""

from __future__ import annotations

import asyncio
import sys

import sniffio


def running_trio() -> bool:
    """Whether the calling code runs under Trio; False outside any async library."""
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop; None under Trio (or outside any loop)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def is_trio_app(app: object) -> bool:
    """Whether *app* is a QuartTrio app, so must be run on Trio.

    Looked up in ``sys.modules`` rather than imported: an app that is one was
    made from quart_trio, which is then loaded; otherwise importing Trio just to
    answer no would slow every command down.
    """
    quart_trio = sys.modules.get("quart_trio")
    return quart_trio is not None and isinstance(app, quart_trio.QuartTrio)
