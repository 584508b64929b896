"""Turn session data into bytes and back.

Every serializer round-trips the JSON types plus tuple, bytes, Markup, UUID and
datetime (the set Quart-Session 3.0 and Quart's cookie sessions support).
"""

from __future__ import annotations

import functools
import json
import logging
import pickle
import struct
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

from markupsafe import Markup
from quart.json.tag import JSONTag, TaggedJSONSerializer, TagTuple

logger = logging.getLogger("quart_session")

#: Types no tag applies to (exact types: subclasses such as Markup go through
#: the tagger).
_PLAIN = frozenset({str, int, float, bool, type(None)})


@runtime_checkable
class Serializer(Protocol):
    """Anything with ``dumps`` and ``loads`` (the ``pickle`` module qualifies)."""

    def dumps(self, obj: Any, /) -> bytes | str: ...

    def loads(self, data: bytes, /) -> Any: ...


class _TagISODateTime(JSONTag):
    """Datetimes as ISO 8601: unlike the HTTP-date tag it keeps microseconds and
    naive/aware. Data tagged ``" d"`` (Quart-Session 3.0) is still read."""

    __slots__ = ()
    key = " dt"

    def check(self, value: Any) -> bool:
        return isinstance(value, datetime)

    def to_json(self, value: Any) -> Any:
        return value.isoformat()

    def to_python(self, value: Any) -> Any:
        return datetime.fromisoformat(value)


class JSONSerializer:
    """Tagged JSON, readable by other programs and compatible with Quart-Session 3.0."""

    def __init__(self) -> None:
        self._tagger = TaggedJSONSerializer()
        # Ahead of the HTTP-date tag, which then only decodes old data.
        self._tagger.register(_TagISODateTime, index=len(self._tagger.order) - 1)
        # _tag would recurse forever on a circular value first: no need to check.
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, check_circular=False
        )
        self._decoder = json.JSONDecoder(object_hook=self._tagger.untag)
        self._fast_encode = _msgspec_json_encoder()

    def _tag(self, value: Any, common: bool) -> Any:
        """``TaggedJSONSerializer.tag`` with the common exact types first: the
        tagger asks every tag in turn about every value (1.5 µs a value).

        With *common*, anything else raises _Uncommon instead of going to the
        tagger: the result then holds nothing but JSON types.
        """
        kind = type(value)
        if kind is dict:
            if len(value) == 1 and next(iter(value)) in self._tagger.tags:
                return self._uncommon(value, common)  # a dict that looks like a tag
            return {k: v if type(v) in _PLAIN else self._tag(v, common) for k, v in value.items()}
        if kind is list:
            return [v if type(v) in _PLAIN else self._tag(v, common) for v in value]
        if kind in _PLAIN:
            return value
        if kind is tuple:
            items = [v if type(v) in _PLAIN else self._tag(v, common) for v in value]
            return {TagTuple.key: items}
        if kind is datetime:
            return {_TagISODateTime.key: value.isoformat()}
        return self._uncommon(value, common)

    def _uncommon(self, value: Any, common: bool) -> Any:
        if common:
            raise _Uncommon
        return self._tagger.tag(value)

    def dumps(self, obj: Any) -> bytes:
        if self._fast_encode is not None:
            try:
                tagged = self._tag(obj, common=True)
            except _Uncommon:
                pass
            else:
                try:
                    encoded = self._fast_encode(tagged)
                except (TypeError, ValueError, OverflowError):
                    pass  # e.g. non-str keys, which json turns into strings
                else:
                    # msgspec writes NaN and infinities as null where json
                    # writes NaN: whenever a null appears, json decides.
                    if b"null" not in encoded:
                        return encoded
                return self._encoder.encode(tagged).encode()
        return self._encoder.encode(self._tag(obj, common=False)).encode()

    def loads(self, data: bytes) -> Any:
        return self._decoder.decode(data.decode())


class _Uncommon(Exception):
    """A value the fast JSON path leaves to the tagger and the standard encoder."""


def _msgspec_json_encoder() -> Callable[[Any], bytes] | None:
    """msgspec's JSON encoder when it is installed: 8x the standard one.

    Used only for data of JSON types: msgspec would also write sets, dates
    or dataclasses that the standard encoder rightly refuses.
    """
    try:
        import msgspec
    except ImportError:  # pragma: no cover - depends on the install
        return None
    return msgspec.json.Encoder().encode


class MsgpackSerializer:
    """Compact binary msgpack through msgspec; extension types keep the extra types.

    Two shapes get a denser form: a list of two or more dicts with the same
    keys (a cart, recent items) is stored as a table, the keys once; a
    datetime as 12 bytes (its fields, the UTC offset in minutes).
    """

    _TUPLE, _UUID, _MARKUP, _ISO_DATETIME, _DATETIME, _TABLE = 1, 2, 3, 4, 5, 6
    #: year, month, day, hour, minute, second * 10**6 + microsecond, offset.
    _DATETIME_FORMAT = struct.Struct(">HBBBBIh")
    #: _DATETIME's offset of a naive datetime.
    _NAIVE = -(2**15)

    def __init__(self) -> None:
        try:
            import msgspec
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError(
                "SESSION_SERIALIZER='msgpack' needs msgspec: pip install 'quart-session[msgpack]'"
            ) from error
        self._ext = msgspec.msgpack.Ext
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(ext_hook=self._from_ext)

    def _to_wire(self, value: Any) -> Any:
        # msgspec encodes tuples as arrays and Markup as str without asking, so
        # the extra types are wrapped before encoding rather than in enc_hook.
        kind = type(value)
        if kind is dict:
            return {k: v if type(v) in _PLAIN else self._to_wire(v) for k, v in value.items()}
        if kind is list:
            table = self._table(value)
            if table is not None:
                return table
            return [v if type(v) in _PLAIN else self._to_wire(v) for v in value]
        if kind in _PLAIN:
            return value
        if isinstance(value, dict):
            return {key: self._to_wire(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._to_wire(item) for item in value]
        if isinstance(value, tuple):
            items = [self._to_wire(item) for item in value]
            return self._ext(self._TUPLE, self._encoder.encode(items))
        if isinstance(value, Markup):
            return self._ext(self._MARKUP, str(value).encode())
        if isinstance(value, uuid.UUID):
            return self._ext(self._UUID, value.bytes)
        if isinstance(value, datetime):
            return self._datetime(value)
        return value

    def _table(self, rows: list[Any]) -> Any:
        """*rows* as a table if they are 2+ dicts with the same str keys, else None."""
        if len(rows) < 2 or type(rows[0]) is not dict or not rows[0]:
            return None
        keys = tuple(rows[0])
        for row in rows:
            if type(row) is not dict or tuple(row) != keys:
                return None
        if not all(type(key) is str for key in keys):
            return None  # 1 == True: only str keys are sure to come back as they were
        values = [
            [v if type(v) in _PLAIN else self._to_wire(v) for v in row.values()] for row in rows
        ]
        return self._ext(self._TABLE, self._encoder.encode([keys, values]))

    def _datetime(self, value: datetime) -> Any:
        offset = value.utcoffset()
        if offset is None:
            minutes = self._NAIVE
        elif offset % timedelta(minutes=1):
            # An offset in seconds: ISO 8601 keeps it.
            return self._ext(self._ISO_DATETIME, value.isoformat().encode())
        else:
            minutes = offset // timedelta(minutes=1)
        fields = self._DATETIME_FORMAT.pack(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second * 1_000_000 + value.microsecond,
            minutes,
        )
        return self._ext(self._DATETIME, fields)

    def _from_ext(self, code: int, data: memoryview) -> Any:
        if code == self._TABLE:
            keys, rows = self._decoder.decode(data)
            return [dict(zip(keys, row, strict=True)) for row in rows]
        if code == self._TUPLE:
            return tuple(self._decoder.decode(data))
        if code == self._DATETIME:
            year, month, day, hour, minute, micros, minutes = self._DATETIME_FORMAT.unpack(data)
            second, micro = divmod(micros, 1_000_000)
            zone = None if minutes == self._NAIVE else _fixed_zone(minutes)
            return datetime(year, month, day, hour, minute, second, micro, zone)
        if code == self._MARKUP:
            return Markup(bytes(data).decode())  # noqa: S704 - stored as Markup
        if code == self._UUID:
            return uuid.UUID(bytes=bytes(data))
        if code == self._ISO_DATETIME:
            return datetime.fromisoformat(bytes(data).decode())
        raise ValueError(f"unknown msgpack extension type {code}")

    def dumps(self, obj: Any) -> bytes:
        return self._encoder.encode(self._to_wire(obj))

    def loads(self, data: bytes) -> Any:
        return self._decoder.decode(data)


@functools.cache
def _fixed_zone(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


class _PickleSerializer:
    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - opted into by SESSION_SERIALIZER


def _warn_pickle() -> None:
    logger.warning(
        "SESSION_SERIALIZER is pickle: anyone who can write to the session store "
        "can run code in this application"
    )


def resolve_serializer(choice: object) -> Serializer:
    """The serializer named (or given) by ``SESSION_SERIALIZER``."""
    if choice == "json":
        return JSONSerializer()
    if choice == "msgpack":
        return MsgpackSerializer()
    if choice == "pickle" or choice is pickle:
        _warn_pickle()
        return _PickleSerializer()
    if isinstance(choice, Serializer) and not isinstance(choice, str):
        return choice
    raise TypeError(
        "SESSION_SERIALIZER must be 'json', 'msgpack', 'pickle' or an object with "
        f"dumps() and loads(), not {choice!r}"
    )


def dumps_bytes(serializer: Serializer, obj: Any) -> bytes:
    """``serializer.dumps`` as bytes (user serializers may return str)."""
    data = serializer.dumps(obj)
    return data.encode() if isinstance(data, str) else data
