"""The serializers' edges: lone surrogates, big integers, deep nesting, values
that cannot be stored, and serializers that may run code.

Pure functions of the serializers: no store is involved.
"""

from __future__ import annotations

import _pickle
import collections
import decimal
import enum
import json
import logging
import marshal
import pickle
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from markupsafe import Markup

from quart_session.errors import SessionDataError
from quart_session.serializers import (
    MAX_DEPTH,
    JSONSerializer,
    MsgpackSerializer,
    Serializer,
    dumps_bytes,
    resolve_serializer,
)

SERIALIZERS: dict[str, Callable[[], Serializer]] = {
    "json": JSONSerializer,
    "msgpack": MsgpackSerializer,
}

#: The metadata the interface adds to every stored session.
META = {"p": True, "a": "127.0.0.1"}


@pytest.fixture(params=list(SERIALIZERS))
def serializer(request: pytest.FixtureRequest) -> Serializer:
    return SERIALIZERS[request.param]()


def session_round_trip(serializer: Serializer, data: dict[str, Any]) -> dict[str, Any]:
    """*data* stored as a session (with metadata) and read back (without)."""
    loaded = serializer.loads(dumps_bytes(serializer, {**data, "_qs": dict(META)}))
    assert loaded.pop("_qs") == META
    return dict(loaded)


def refusal(serializer: Serializer, data: dict[str, Any]) -> str:
    """The message of the SessionDataError that storing *data* raises."""
    with pytest.raises(SessionDataError) as caught:
        dumps_bytes(serializer, {**data, "_qs": dict(META)})
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    return str(caught.value)


# -- lone surrogates ---------------------------------------------------------------

LONE_SURROGATES: dict[str, Any] = {
    "alone": "\ud800",
    "low": "\udfff",
    "in text": "name: \udc80 (from a JSON body)",
    "high last": "abc\udbff",
    "low then high": "\udc00\ud800",  # not a pair: a pair is high then low
    "in a list": ["ok", "\ud800"],
    "in a tuple": ("\ud800", ("\udc00",)),
    "nested dict": {"a": {"b": ["x\udfffy"]}},
    "dict key": {"\ud800": 1, "fine": "\udc00"},
    "table keys": [{"k\ud800": 1, "n": "\udc00"}, {"k\ud800": 2, "n": "b"}],
    "tuple in table": [{"t": ("\ud800",)}, {"t": ("b",)}],
    "markup": Markup("<b>\ud800</b>"),
    "with other types": [b"\xff", uuid.UUID(int=7), datetime(2026, 1, 2), "\ud800"],
}


@pytest.mark.parametrize("value", LONE_SURROGATES.values(), ids=list(LONE_SURROGATES))
def test_lone_surrogates_round_trip_exactly(serializer: Serializer, value: Any) -> None:
    data = {"name": value, "\udc01key": value}
    assert session_round_trip(serializer, data) == data
    assert type(session_round_trip(serializer, data)["name"]) is type(value)


def test_json_escapes_lone_surrogates_so_other_programs_read_them() -> None:
    stored = JSONSerializer().dumps({"name": "a\ud800", "\udfff": ["\udc00"], "_qs": META})
    text = stored.decode("utf-8")  # strict: valid UTF-8
    assert "\\ud800" in text and "\\udfff" in text and "\\udc00" in text
    assert json.loads(text)["name"] == "a\ud800"


def test_json_reads_a_high_then_low_surrogate_as_the_character_they_encode() -> None:
    """JSON cannot tell "\\ud83d\\ude00" from the one character: every JSON reader
    (and Quart's cookie session) reads it back as the character."""
    data = {"pair": "\ud83d\ude00", "_qs": META}
    assert JSONSerializer().loads(JSONSerializer().dumps(data))["pair"] == "😀"
    assert json.loads(json.dumps("\ud83d\ude00")) == "😀"


def test_msgpack_keeps_a_high_then_low_surrogate_as_two_code_points() -> None:
    serializer = MsgpackSerializer()
    assert session_round_trip(serializer, {"pair": "\ud83d\ude00"}) == {"pair": "\ud83d\ude00"}


# Hypothesis is not installed: random values from fixed seeds stand in for it.
ALPHABET = [
    "a", "Z", " ", "é", "✓", "😀", "\x00", "\x1f", '"', "\\", "/", "\n", "\u2028",
    "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00",
]  # fmt: skip


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 9)))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["text", "text", "int", "list", "dict", "tuple"] if depth < 4 else ["text"])
    if kind == "text":
        return random_text(rng)
    if kind == "int":
        return rng.choice([0, -1, 2**63 - 1, 2**64, -(2**63) - 1, rng.getrandbits(200)])
    items = [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    return {random_text(rng): item for item in items}


def as_json_reads(value: Any) -> Any:
    """*value* as any JSON reader reads it back: each high surrogate followed
    by a low one becomes the character they encode; lone ones stay."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    if isinstance(value, list):
        return [as_json_reads(item) for item in value]
    if isinstance(value, tuple):
        return tuple(as_json_reads(item) for item in value)
    if isinstance(value, dict):
        return {as_json_reads(key): as_json_reads(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize("seed", range(30))
def test_random_text_and_integers_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    json_serializer, msgpack_serializer = JSONSerializer(), MsgpackSerializer()
    for _ in range(40):
        data = {random_text(rng): random_value(rng) for _ in range(3)}
        assert session_round_trip(msgpack_serializer, data) == data
        stored = json_serializer.dumps({**data, "_qs": META})
        stored.decode("utf-8")  # strict: valid UTF-8
        loaded = json_serializer.loads(stored)
        del loaded["_qs"]
        assert loaded == as_json_reads(data)
        if as_json_reads(data) == data:  # no high-low pair: exactly the same
            assert loaded == data


# -- integers ----------------------------------------------------------------------

BIG_INTEGERS = [2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**100, -(10**100), 2**1000]


@pytest.mark.parametrize("number", BIG_INTEGERS)
def test_integers_of_any_size_round_trip(serializer: Serializer, number: int) -> None:
    data = {"n": number, "in": [number, (number,), {"k": number}]}
    data["rows"] = [{"id": number, "q": 1}, {"id": 2, "q": number}]
    assert session_round_trip(serializer, data) == data


def test_msgpack_keeps_big_integer_and_surrogate_dict_keys() -> None:
    data = {"by_id": {2**70: "a", -(2**64): "b", 1: "c", "\ud800": "d", (1, 2): "e"}}
    assert session_round_trip(MsgpackSerializer(), data) == data


def test_an_integer_json_cannot_write_is_refused() -> None:
    message = refusal(JSONSerializer(), {"ok": 1, "huge": 10**5000})
    assert message.startswith("session key 'huge' cannot be stored: ")
    assert "4300 digits" in message


# -- nesting -------------------------------------------------------------------------

WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "list": lambda inner: [inner],
    "dict": lambda inner: {"k": inner},
    "tuple": lambda inner: (inner,),
    "dict subclass": lambda inner: collections.OrderedDict(k=inner),
    "tag-like dict": lambda inner: {" t": inner},
    "table": lambda inner: [{"k": inner}, {"k": 0}],  # two levels: the list, the rows
}


def nested(wrap: Callable[[Any], Any], levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = wrap(value)
    return value


def levels_of(name: str, depth: int) -> int:
    """How many times to wrap to nest *depth* containers deep."""
    return depth // 2 if name == "table" else depth


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_values_nested_max_depth_deep_round_trip(serializer: Serializer, name: str) -> None:
    data = {"deep": nested(WRAPPERS[name], levels_of(name, MAX_DEPTH))}
    assert session_round_trip(serializer, data) == data


@pytest.mark.parametrize("name", list(WRAPPERS))
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, MAX_DEPTH + 2, 500, 5000])
def test_values_nested_deeper_are_refused_naming_the_key(
    serializer: Serializer, name: str, depth: int
) -> None:
    if name == "table" and depth == MAX_DEPTH + 1:
        depth += 1  # a table nests two levels at a time
    message = refusal(
        serializer, {"ok": [1], "deep": nested(WRAPPERS[name], levels_of(name, depth))}
    )
    assert message == (
        f"session key 'deep' cannot be stored: it nests containers more than {MAX_DEPTH} "
        "deep (or contains itself)"
    )


def test_a_value_that_contains_itself_is_refused(serializer: Serializer) -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    loop.append(loop)  # twice: walking it must not take 2**64 steps
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    subclass: collections.OrderedDict[str, Any] = collections.OrderedDict(a=1)
    subclass["self"] = [subclass, subclass]
    for value in (loop, mapping, subclass):
        assert "it nests containers more than" in refusal(serializer, {"loop": value})


def test_deep_data_in_the_store_is_corrupt_not_a_recursion_error() -> None:
    with pytest.raises(ValueError, match="too deep"):
        JSONSerializer().loads(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="too deep"):
        JSONSerializer().loads(
            b'{"_qs":{"t":["a"]},"a":' + b'{" t":[' * 50_000 + b"]}" * 50_000 + b"}"
        )
    with pytest.raises(ValueError, match="too deep"):
        MsgpackSerializer().loads(b"\x91" * 100_000 + b"\x90")


def test_data_deeper_than_max_depth_from_older_versions_is_still_read() -> None:
    """Quart-Session 3.0 had no limit: its sessions are read, only not saved
    again while they hold such a value."""
    deep = nested(WRAPPERS["list"], MAX_DEPTH * 3)
    assert JSONSerializer().loads(json.dumps({"deep": deep}).encode()) == {"deep": deep}


# -- values that cannot be stored ------------------------------------------------------


class Colour(enum.Enum):
    RED = 1


class Secret:
    """Its repr is the secret a message must never show."""

    def __repr__(self) -> str:
        return "s3cr3t-value"


UNSTORABLE: dict[str, tuple[Any, str]] = {
    "object": (object(), "object"),
    "set": ({"s3cr3t-value"}, "set"),
    "frozenset": (frozenset({1}), "frozenset"),
    "bytearray": (bytearray(b"s3cr3t-value"), "bytearray"),
    "date": (date(2026, 1, 1), "datetime.date"),
    "decimal": (decimal.Decimal("1.5"), "decimal.Decimal"),
    "enum": (Colour.RED, f"{__name__}.Colour"),
    "custom": (Secret(), f"{__name__}.Secret"),
    "deep inside": ([{"a": (1, [Secret()])}], f"{__name__}.Secret"),
}


@pytest.mark.parametrize(("value", "type_name"), UNSTORABLE.values(), ids=list(UNSTORABLE))
def test_a_value_of_another_type_is_refused_naming_the_key_not_the_value(
    serializer: Serializer, value: Any, type_name: str
) -> None:
    message = refusal(serializer, {"user_id": 7, "cart": value, "after": 1})
    assert message == (
        f"session key 'cart' cannot be stored: it holds a value of type {type_name}; only str, "
        "int, float, bool, None, list, dict, tuple, bytes, Markup, UUID and datetime can be stored"
    )
    assert "s3cr3t" not in message


def test_a_long_key_is_named_shortened(serializer: Serializer) -> None:
    key = "k" * 200
    message = refusal(serializer, {key: {1}})
    assert message.startswith(f"session key {repr(key)[:47]}... cannot be stored: ")


def test_the_key_of_a_refused_value_is_named_whatever_its_position(
    serializer: Serializer,
) -> None:
    data = {f"key{n}": [n, "\ud800", 2**70] for n in range(20)}
    data["key13"] = [{1}]
    assert refusal(serializer, data).startswith("session key 'key13' cannot be stored")


def test_subclasses_of_plain_types_are_stored_as_the_plain_type(serializer: Serializer) -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Name(str, enum.Enum):  # noqa: UP042 - str() of it is 'Name.ADA', not 'ada'
        ADA = "ada"

    class Ratio(float):
        pass

    data = {"level": Level.HIGH, "name": Name.ADA, "ratio": Ratio(0.5)}
    loaded = session_round_trip(serializer, data)
    assert loaded == {"level": 3, "name": "ada", "ratio": 0.5}
    assert [type(value) for value in loaded.values()] == [int, str, float]


def test_a_non_dict_that_cannot_be_stored_is_refused(serializer: Serializer) -> None:
    with pytest.raises(SessionDataError, match=r"^the session cannot be stored: it holds"):
        serializer.dumps([object()])


def test_the_rich_types_keep_their_fast_encoding() -> None:
    """The checks added for the edges leave ordinary data as it was stored."""
    data = {"at": datetime(2026, 1, 1, tzinfo=UTC), "t": (1, "a"), "n": 2**63, "_qs": META}
    stored = JSONSerializer().dumps(data)
    assert stored == (
        b'{"at":{" dt":"2026-01-01T00:00:00+00:00"},"t":{" t":[1,"a"]},'
        b'"n":9223372036854775808,"_qs":{"p":true,"a":"127.0.0.1","t":["at","t"]}}'
    )


# -- serializers of the application -----------------------------------------------------


class LeakyJSON:
    """A user serializer whose error shows the value, as many do."""

    def dumps(self, obj: Any) -> str:
        for value in obj.values():
            if isinstance(value, set):
                raise ValueError(f"cannot store {value!r}")
        return json.dumps(obj, ensure_ascii=False)

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


@pytest.mark.parametrize(
    ("custom", "value", "failure"),
    [
        (json, {"s3cr3t-value"}, "json.dumps raised TypeError"),
        (pickle, threading.Lock(), "pickle.dumps raised TypeError"),
        (pickle, lambda: "s3cr3t-value", "pickle.dumps raised PicklingError"),
        (LeakyJSON(), {"s3cr3t-value"}, "LeakyJSON.dumps raised ValueError"),
        (LeakyJSON(), "s3cr3t-value \ud800", "LeakyJSON.dumps raised UnicodeEncodeError"),
        (json, nested(WRAPPERS["list"], 100_000), "json.dumps raised RecursionError"),
    ],
    ids=["json-set", "pickle-lock", "pickle-lambda", "leaky", "str-surrogate", "recursion"],
)
def test_a_custom_serializer_failure_names_the_key_not_the_value(
    custom: Any, value: Any, failure: str
) -> None:
    with pytest.raises(SessionDataError) as caught:
        dumps_bytes(custom, {"user_id": 7, "cart": value, "_qs": META})
    assert str(caught.value) == f"session key 'cart' cannot be stored: {failure}"
    assert caught.value.__cause__ is not None  # the serializer's own error, for debugging


def test_a_custom_serializer_failure_on_something_else_than_a_session_is_left_alone() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_bytes(json, [{1}])


# -- serializers that may run code ------------------------------------------------------


class Safe:
    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class FromDill(Safe):
    """Stands for a dill serializer: only where it comes from matters."""


FromDill.__module__ = "dill._dill"


class WrapsPickle:
    dumps = staticmethod(pickle.dumps)
    loads = staticmethod(pickle.loads)


@pytest.mark.parametrize(
    ("choice", "module"),
    [
        ("pickle", "pickle"),
        (pickle, "pickle"),
        (_pickle, "_pickle"),
        (marshal, "marshal"),
        (FromDill(), "dill"),
        (FromDill, "dill"),
        (WrapsPickle(), "_pickle"),
    ],
    ids=["name", "pickle", "_pickle", "marshal", "dill-instance", "dill-class", "wraps-pickle"],
)
def test_a_serializer_that_may_run_code_is_warned_about(
    caplog: pytest.LogCaptureFixture, choice: object, module: str
) -> None:
    with caplog.at_level(logging.WARNING, "quart_session"):
        resolve_serializer(choice)
    assert [record.getMessage() for record in caplog.records] == [
        f"SESSION_SERIALIZER is {module}: anyone who can write to the session store "
        "can run code in this application"
    ]


@pytest.mark.parametrize("choice", ["json", "msgpack", JSONSerializer(), Safe(), json])
def test_a_safe_serializer_is_not_warned_about(
    caplog: pytest.LogCaptureFixture, choice: object
) -> None:
    with caplog.at_level(logging.WARNING, "quart_session"):
        resolve_serializer(choice)
    assert caplog.records == []
