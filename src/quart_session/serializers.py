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

#: The reserved top-level key of a stored session: the interface keeps the
#: session's own metadata there, and the JSON serializer its tag index.
META_KEY = "_qs"
#: In the metadata: the top-level keys whose values hold tagged values.
TAG_INDEX = "t"


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
    """Tagged JSON, readable by other programs and compatible with Quart-Session 3.0.

    A session's metadata (``_qs``) also lists the top-level keys whose values
    hold tags: reading then decodes with msgspec and untags only those values,
    instead of calling a hook on every object (6.1 -> 4.4 µs for a typical
    session). Data without that index (Quart-Session 3.0's, or anything that is
    not a session) is untagged everywhere.
    """

    def __init__(self) -> None:
        self._tagger = TaggedJSONSerializer()
        # Ahead of the HTTP-date tag, which then only decodes old data.
        self._tagger.register(_TagISODateTime, index=len(self._tagger.order) - 1)
        self._tags = self._tagger.tags
        # _tag would recurse forever on a circular value first: no need to check.
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, check_circular=False
        )
        self._decoder = json.JSONDecoder(object_hook=self._tagger.untag)
        self._fast_encode, self._fast_decode = _msgspec_json()

    # -- encoding -----------------------------------------------------------
    def _tag(self, value: Any, common: bool, tagged: list[bool]) -> Any:
        """``TaggedJSONSerializer.tag`` with the common exact types first: the
        tagger asks every tag in turn about every value (1.5 µs a value).

        With *common*, anything else raises _Uncommon instead of going to the
        tagger: the result then holds nothing but JSON types. Every tag made
        appends to *tagged*.
        """
        kind = type(value)
        if kind is dict:
            if len(value) == 1 and next(iter(value)) in self._tags:
                return self._uncommon(value, common, tagged)  # a dict that looks like a tag
            return {
                k: v if type(v) in _PLAIN else self._tag(v, common, tagged)
                for k, v in value.items()
            }
        if kind is list:
            return [v if type(v) in _PLAIN else self._tag(v, common, tagged) for v in value]
        if kind in _PLAIN:
            return value
        if kind is tuple:
            tagged.append(True)
            items = [v if type(v) in _PLAIN else self._tag(v, common, tagged) for v in value]
            return {TagTuple.key: items}
        if kind is datetime:
            tagged.append(True)
            return {_TagISODateTime.key: value.isoformat()}
        return self._uncommon(value, common, tagged)

    def _uncommon(self, value: Any, common: bool, tagged: list[bool]) -> Any:
        if common:
            raise _Uncommon
        tagged.append(True)  # maybe not, but a needless untag costs only time
        return self._tagger.tag(value)

    def _tag_top(self, obj: Any, common: bool) -> Any:
        """*obj* tagged; a session (a dict with its metadata) gets the tag index."""
        meta = obj.get(META_KEY) if type(obj) is dict else None
        if type(meta) is not dict or (len(meta) == 1 and next(iter(meta)) in self._tags):
            return self._tag(obj, common, [])  # not a session's metadata
        result: dict[str, Any] = {}
        index: list[str] = []
        for key, value in obj.items():
            if type(key) is not str:  # json turns it into one: no index then
                return self._tag(obj, common, [])
            if type(value) in _PLAIN:
                result[key] = value
                continue
            tagged: list[bool] = []
            result[key] = self._tag(value, common, tagged)
            if tagged:
                index.append(key)
        result[META_KEY] = {**result[META_KEY], TAG_INDEX: index}
        return result

    def dumps(self, obj: Any) -> bytes:
        if self._fast_encode is not None:
            try:
                tagged = self._tag_top(obj, common=True)
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
        return self._encoder.encode(self._tag_top(obj, common=False)).encode()

    # -- decoding -----------------------------------------------------------
    def loads(self, data: bytes) -> Any:
        if self._fast_decode is not None:
            try:
                value = self._fast_decode(data)
            except ValueError:  # msgspec.DecodeError, e.g. on NaN, which json reads
                pass
            else:
                index = _tag_index(value)
                if index is None:
                    return self._untag(value)
                for key in index:
                    value[key] = self._untag(value[key])
                return value
        value = self._decoder.decode(data.decode())
        _tag_index(value)  # only to remove it from the metadata
        return value

    def _untag(self, value: Any) -> Any:
        """What the tagger's object hook makes of *value*, innermost first."""
        kind = type(value)
        if kind is list:
            for position, item in enumerate(value):
                if type(item) in _CONTAINERS:
                    value[position] = self._untag(item)
            return value
        if kind is not dict:
            return value
        if len(value) == 1:
            ((key, item),) = value.items()
            if type(item) in _CONTAINERS:
                item = value[key] = self._untag(item)
            tag = self._tags.get(key)
            return value if tag is None else tag.to_python(item)
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                value[key] = self._untag(item)
        return value


_CONTAINERS = frozenset({dict, list})


def _tag_index(value: Any) -> list[str] | None:
    """Take the tag index out of a decoded session's metadata; None if it has
    none or it does not name keys of *value*."""
    meta = value.get(META_KEY) if type(value) is dict else None
    if type(meta) is not dict:
        return None
    index = meta.pop(TAG_INDEX, None)
    if type(index) is not list:
        return None
    for key in index:  # a loop: all() over a generator costs 1 µs here
        if type(key) is not str or key not in value:
            return None
    return index


class _Uncommon(Exception):
    """A value the fast JSON path leaves to the tagger and the standard encoder."""


def _msgspec_json() -> tuple[Callable[[Any], bytes] | None, Callable[[bytes], Any] | None]:
    """msgspec's JSON encoder and decoder when it is installed: 8x and 2x the
    standard ones.

    The encoder is used only for data of JSON types: msgspec would also write
    sets, dates or dataclasses that the standard encoder rightly refuses.
    """
    try:
        import msgspec
    except ImportError:  # pragma: no cover - depends on the install
        return None, None
    return msgspec.json.Encoder().encode, msgspec.json.Decoder().decode


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
