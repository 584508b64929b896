"""Serve the demo with hypercorn on 127.0.0.1 and print its URL.

PORT picks the port (5000); SESSION_TYPE, SESSION_URI and SESSION_FILE_DIR pick the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from hypercorn.asyncio import serve
from hypercorn.config import Config

from quart_session import ServerSideSessionInterface

from .app import create_app


def main() -> None:
    port = int(os.environ.get("PORT", "5000"))
    app = create_app()
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    settings = interface.settings
    where = f" in {settings.file_dir}" if settings.store_type == "filesystem" else ""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = "-"
    print(
        f"quart-session demo on http://127.0.0.1:{port}/ "
        f"(store: {settings.store_type}{where}; Ctrl+C stops it)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app, config))


main()
