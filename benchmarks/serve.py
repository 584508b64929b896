"""Serve one variant's app with Hypercorn on 127.0.0.1 until SIGTERM.

Run as ``python -m benchmarks.serve '<spec json>' PORT`` with the variant's Python.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .app import build_app


async def main(spec: dict[str, Any], port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await serve(build_app(spec), config, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), int(sys.argv[2])))
