"""Serve the demo with hypercorn on 127.0.0.1 and print its URL."""

from __future__ import annotations

import asyncio
import os

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .app import create_app


def main() -> None:
    port = int(os.environ.get("PORT", "5000"))
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    app = create_app()
    print(f"quart-session demo on http://127.0.0.1:{port}  (store: {app.config['SESSION_TYPE']})")
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


main()
