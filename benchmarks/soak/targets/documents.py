"""The document stores' stand-ins: nx-27017 for MongoDB, moto_server for DynamoDB.

No real MongoDB or DynamoDB can run here, so the soak loads the stand-ins the
test suite uses (tests/servers/mongodb.py, tests/servers/dynamodb.py), started
the same way, and breaks them the one way they can be broken: "kill-restart",
SIGKILL and a new process on the same port.

What survives that is the stand-in's nature, not the real server's:

- nx-27017 keeps its databases in SQLite files (WAL): what it acknowledged
  survives the kill, as on a real MongoDB with journaling. No data is lost.
- moto_server keeps everything in memory: a restart loses every session *and
  the table*. Real DynamoDB does neither. So the fault is marked
  ``loses_data=True`` (sessions vanish whole, as they would on a memcached
  restart), and the harness creates the table again after the restart, as it
  would still exist on AWS; losing the table itself is no fault a real
  deployment meets.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from tests.servers.dynamodb import CREDENTIALS, REGION, moto_server
from tests.servers.mongodb import nx_27017_command
from tests.servers.processes import free_port, running

from benchmarks.soak.target import Fault

TABLE = "soak_sessions"
#: /proc/net/tcp's state code for an established connection.
ESTABLISHED = "01"


@dataclass
class Restartable:
    """A server process that can be killed and started again on its port."""

    argv: Sequence[str]
    port: int
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    starts: int = 0
    _current: ExitStack = field(default_factory=ExitStack)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        log = self.folder / f"server-{self.starts}.log"
        self.process = self._current.enter_context(
            running(self.argv, self.port, log, cwd=self.folder, env=self.env)
        )

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no shutdown of any kind."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._current.close()

    def stop(self) -> None:
        self._current.close()

    def connections(self) -> int:
        """Established TCP connections to the server's port, from /proc/net/tcp."""
        count = 0
        with open("/proc/net/tcp") as table:
            next(table)  # the header
            for line in table:
                local, _remote, state = line.split()[1:4]
                count += state == ESTABLISHED and int(local.split(":")[1], 16) == self.port
        return count


@contextmanager
def serving(server: Restartable) -> Iterator[Restartable]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class MongoTarget:
    server: Restartable
    name: str = "mongodb"

    def app_config(self) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "mongodb",
            "SESSION_MONGODB_URI": f"mongodb://127.0.0.1:{self.server.port}",
        }

    def faults(self) -> Sequence[Fault]:
        return [Fault("kill-restart", self.kill_restart)]

    def kill_restart(self) -> None:
        self.server.kill()
        self.server.start()

    def connections(self) -> int:
        return self.server.connections()


@contextmanager
def mongodb(tmp: Path) -> Iterator[MongoTarget]:
    port = free_port()
    with serving(Restartable(nx_27017_command(port, tmp), port, tmp)) as server:
        yield MongoTarget(server)


@dataclass
class DynamoTarget:
    server: Restartable
    name: str = "dynamodb"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def app_config(self) -> dict[str, Any]:
        # Credentials travel in the environment (set by dynamodb() below),
        # where the store's AWS client looks for them.
        return {
            "SESSION_TYPE": "dynamodb",
            "SESSION_DYNAMODB_TABLE": TABLE,
            "SESSION_DYNAMODB_ENDPOINT_URL": self.endpoint_url,
            "SESSION_DYNAMODB_REGION": REGION,
        }

    def faults(self) -> Sequence[Fault]:
        return [Fault("kill-restart", self.kill_restart, loses_data=True)]

    def kill_restart(self) -> None:
        self.server.kill()
        self.server.start()
        self.create_table()

    def create_table(self) -> None:
        """The sessions table, as the store makes it (moto keeps no tables
        across a restart; DynamoDB itself would)."""
        client = boto3.client("dynamodb", endpoint_url=self.endpoint_url, region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=TABLE)

    def connections(self) -> int:
        # Always 0 between requests: moto answers every request with
        # "Connection: close", so the AWS client keeps no connection open.
        return self.server.connections()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """*values* set in os.environ for the block (the soak app's workers inherit them)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def dynamodb(tmp: Path) -> Iterator[DynamoTarget]:
    port = free_port()
    argv = [moto_server(), "-H", "127.0.0.1", "-p", str(port)]
    with (
        environment({**CREDENTIALS, "AWS_DEFAULT_REGION": REGION}),
        serving(Restartable(argv, port, tmp)) as server,
    ):
        target = DynamoTarget(server)
        target.create_table()
        yield target
