"""A DynamoDB stand-in for tests: moto's server mode, session-scoped, on a free
127.0.0.1 port, stopped after: the ``dynamodb_server`` fixture (a plugin of
``tests/conftest.py``).

Also ``RequestCounter``: round trips counted with a botocore event hook, one
per HTTP request sent (retries included).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import pytest

from .processes import free_port, running

REGION = "us-east-1"
#: moto accepts any credentials; the store finds these the usual way (env).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class DynamoDBServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class RequestCounter:
    """Names of the DynamoDB operations a client sent, in order."""

    operations: list[str] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.dynamodb", self._sent)

    def _sent(self, event_name: str, **_: Any) -> None:
        self.operations.append(event_name.rsplit(".", 1)[-1])


def moto_server() -> str:
    """The moto_server script of this virtualenv (moto[server] is a test dependency)."""
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        pytest.fail("moto_server not found: pip install -e '.[test]' (./scripts/test does)")
    return str(binary)


@pytest.fixture(scope="session", name="dynamodb_server")
def dynamodb_server_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DynamoDBServer]:
    folder = tmp_path_factory.mktemp("moto")
    port = free_port()
    argv = [moto_server(), "-H", "127.0.0.1", "-p", str(port)]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        with running(argv, port, folder / "moto.log", cwd=folder) as process:
            yield DynamoDBServer(port, process)


@pytest.fixture
async def dynamodb_client(dynamodb_server: DynamoDBServer) -> AsyncIterator[Any]:
    """A plain aioboto3 client of the test's own on the server."""
    session = aioboto3.Session()
    async with session.client(
        "dynamodb", endpoint_url=dynamodb_server.endpoint_url, region_name=REGION
    ) as client:
        yield client
