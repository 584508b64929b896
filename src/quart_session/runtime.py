"""Which async library the code runs on: the one place that asks.

Two questions with two answers: inside a running loop, ``running_trio`` asks
the loop itself (sniffio); before any loop runs (the CLI choosing one), only the
app's class can tell, so ``is_trio_app`` asks that.
"""

from __future__ import annotations

import sys

import sniffio


def running_trio() -> bool:
    """Whether the calling code runs under Trio; False outside any async library."""
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def is_trio_app(app: object) -> bool:
    """Whether *app* is a QuartTrio app, so must be run on Trio.

    Looked up in ``sys.modules`` rather than imported: an app that is one was
    made from quart_trio, which is then loaded; otherwise importing Trio just to
    answer no would slow every command down.
    """
    quart_trio = sys.modules.get("quart_trio")
    return quart_trio is not None and isinstance(app, quart_trio.QuartTrio)
