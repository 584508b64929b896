"""Turn session data into bytes and back.

Every serializer round-trips the JSON types plus tuple, bytes, Markup, UUID and
datetime (the set Quart-Session 3.0 and Quart's cookie sessions support), text
with lone surrogates and integers of any size (both come from JSON request
bodies), nested at most MAX_DEPTH containers deep. Anything else raises
SessionDataError naming the top-level session key that holds it.
"""

from __future__ import annotations

import functools
import json
import logging
import pickle
import struct
import types
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, Protocol, TypeVar, runtime_checkable

from markupsafe import Markup
from quart.json.tag import JSONTag, TagDateTime, TaggedJSONSerializer, TagTuple

from .compat import LegacyDateTimeTag
from .errors import SessionDataError
from .records import META_KEY

logger = logging.getLogger("quart_session")

#: Types no tag applies to (exact types: subclasses such as Markup go through
#: the tagger).
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})

#: In a session's metadata (the envelope's META_KEY): the top-level keys whose
#: values hold tagged values. The JSON serializer's own business: it adds the
#: index on writing and removes it on reading, so no one else ever sees it.
TAG_INDEX = "t"

#: How deep containers (dict, list, tuple) may nest in one session value. Real
#: sessions (carts, forms, flashes) stay under 10. 64 levels take at most about
#: 270 Python frames to encode or decode (4 a level for tuple subclasses, which
#: Quart's tagger handles), leaving most of the default limit of 1000 to the
#: code saving the session; a request body of 500 nested lists, which an app
#: may keep, is refused with a clear error instead of a RecursionError.
MAX_DEPTH = 64

#: The types the serializers store, for error messages.
_STORABLE = "str, int, float, bool, None, list, dict, tuple, bytes, Markup, UUID and datetime"


@runtime_checkable
class Serializer(Protocol):
    """Anything with ``dumps`` and ``loads`` (the ``pickle`` module qualifies)."""

    def dumps(self, obj: Any, /) -> bytes | str: ...

    def loads(self, data: bytes, /) -> Any: ...


class _TagISODateTime(JSONTag):
    """Datetimes as ISO 8601: unlike Quart's HTTP-date tag it keeps
    microseconds and naive/aware."""

    __slots__ = ()
    key = " dt"

    def check(self, value: Any) -> bool:
        return isinstance(value, datetime)

    def to_json(self, value: Any) -> Any:
        return value.isoformat()

    def to_python(self, value: Any) -> Any:
        return datetime.fromisoformat(value)


class _Tagger(TaggedJSONSerializer):
    """Quart's tags, datetimes written as ISO 8601; Quart-Session 3.0's HTTP
    dates (``" d"``) only read."""

    __slots__ = ()
    # Quart declares it an instance variable: overridden as one.
    default_tags = [  # noqa: RUF012
        *(tag for tag in TaggedJSONSerializer.default_tags if tag is not TagDateTime),
        _TagISODateTime,
        LegacyDateTimeTag,
    ]


class _Refusing:
    """Our serializers' ``dumps``: a value ``_encode`` refuses becomes a
    SessionDataError naming the top-level key that holds it."""

    def dumps(self, obj: Any) -> bytes:
        try:
            return self._encode(obj)
        except _Unstorable as error:
            raise _refusal(self._encode, obj, error) from None

    def _encode(self, obj: Any) -> bytes:
        raise NotImplementedError


class JSONSerializer(_Refusing):
    """Tagged JSON, readable by other programs and compatible with Quart-Session 3.0.

    A session's metadata (``_qs``) also lists the top-level keys whose values
    hold tags: reading then decodes with msgspec and untags only those values,
    instead of calling a hook on every object (6.1 -> 4.4 µs for a typical
    session). Data without that index (Quart-Session 3.0's, or anything that is
    not a session) is untagged everywhere.
    """

    def __init__(self) -> None:
        self._tagger = _Tagger()
        self._tags = self._tagger.tags
        # _tag refuses a circular value (too deep) first: no need to check.
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, check_circular=False, default=_refuse_type
        )
        self._decoder = json.JSONDecoder(object_hook=self._tagger.untag)
        self._fast_encode, self._fast_decode = _msgspec_json()

    # -- encoding -----------------------------------------------------------
    def _tag(self, value: Any, common: bool, tagged: list[bool], depth: int) -> Any:
        """``TaggedJSONSerializer.tag`` with the common exact types first: the
        tagger asks every tag in turn about every value (1.5 µs a value).

        With *common*, anything else raises _Uncommon instead of going to the
        tagger: the result then holds nothing but JSON types. Every tag made
        appends to *tagged*. *depth* counts the containers around *value*.
        """
        kind = type(value)
        if kind is dict:
            if len(value) == 1 and next(iter(value)) in self._tags:
                # A dict that looks like a tag.
                return self._uncommon(value, common, tagged, depth)
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            return {
                k: v if type(v) in _PLAIN else self._tag(v, common, tagged, depth)
                for k, v in value.items()
            }
        if kind is list:
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            return [v if type(v) in _PLAIN else self._tag(v, common, tagged, depth) for v in value]
        if kind in _PLAIN:
            return value
        if kind is tuple:
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            tagged.append(True)
            items = [v if type(v) in _PLAIN else self._tag(v, common, tagged, depth) for v in value]
            return {TagTuple.key: items}
        if kind is datetime:
            tagged.append(True)
            return {_TagISODateTime.key: value.isoformat()}
        return self._uncommon(value, common, tagged, depth)

    def _uncommon(self, value: Any, common: bool, tagged: list[bool], depth: int) -> Any:
        if common:
            raise _Uncommon
        tagged.append(True)  # maybe not, but a needless untag costs only time
        # The tagger recurses into containers (subclasses, tag-like dicts) itself.
        if isinstance(value, _CONTAINER_TYPES) and _nests_deeper(value, MAX_DEPTH - depth):
            raise _too_deep()
        return self._tagger.tag(value)

    def _tag_top(self, obj: Any, common: bool) -> Any:
        """*obj* tagged; a session (a dict with its metadata) gets the tag index."""
        meta = obj.get(META_KEY) if type(obj) is dict else None
        if type(meta) is not dict or (len(meta) == 1 and next(iter(meta)) in self._tags):
            return self._tag(obj, common, [], -1)  # not a session's metadata
        result: dict[str, Any] = {}
        index: list[str] = []
        for key, value in obj.items():
            if type(key) is not str:  # json turns it into one: no index then
                return self._tag(obj, common, [], -1)
            if type(value) in _PLAIN:
                result[key] = value
                continue
            tagged: list[bool] = []
            result[key] = self._tag(value, common, tagged, 0)
            if tagged:
                index.append(key)
        result[META_KEY] = {**result[META_KEY], TAG_INDEX: index}
        return result

    def _encode(self, obj: Any) -> bytes:
        """*obj* as JSON; raises _Unstorable."""
        try:
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
                    return self._json(tagged)
            return self._json(self._tag_top(obj, common=False))
        except RecursionError:  # the caller's own stack was already deep
            raise _Unstorable("it nests too deep for the stack left") from None

    def _json(self, tagged: Any) -> bytes:
        try:
            text = self._encoder.encode(tagged)
        except (TypeError, ValueError) as error:
            # json's own messages name a type or a limit, never a value: "keys
            # must be str, int, float, bool or None, not tuple".
            raise _Unstorable(str(error)) from None
        try:
            return text.encode()
        except UnicodeEncodeError:
            # Lone surrogates, which ensure_ascii=False leaves raw: written as
            # JSON escapes ("\ud800"), which every JSON reader reads back.
            return text.encode("utf-8", "backslashreplace")

    # -- decoding -----------------------------------------------------------
    def loads(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except RecursionError:
            raise ValueError("session data nests too deep to decode") from None

    def _decode(self, data: bytes) -> Any:
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
_CONTAINER_TYPES = (dict, list, tuple)


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


class _Unstorable(Exception):
    """A value our serializers cannot store; *reason* says why without showing it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _too_deep() -> _Unstorable:
    return _Unstorable(f"it nests containers more than {MAX_DEPTH} deep (or contains itself)")


def _refuse_type(value: Any) -> NoReturn:
    kind = type(value)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    raise _Unstorable(f"it holds a value of type {name}; only {_STORABLE} can be stored")


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether containers nest more than *limit* deep in *value* (itself the
    first). Level by level, each container once: no recursion, and a value
    that contains itself ends at the limit."""
    level: dict[int, Any] = {id(value): value}
    for _ in range(limit):
        level = {
            id(item): item
            for container in level.values()
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, _CONTAINER_TYPES)
        }
        if not level:
            return False
    return True


_Failure = TypeVar("_Failure", bound=BaseException)


def _key_name(key: object) -> str:
    """repr(*key*), cut to 50 characters: enough to find it in the code."""
    name = repr(key)
    return name if len(name) <= 50 else name[:47] + "..."


def _culprit(
    encode: Callable[[Any], object], obj: Any, failures: tuple[type[_Failure], ...]
) -> tuple[str, _Failure] | None:
    """The first top-level key of the dict *obj* whose value alone *encode*
    fails on too (its name and the failure); None if there is none. Only on
    the failure path: the value is encoded again, key by key."""
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        try:
            encode({key: value})
        except failures as failure:
            return _key_name(key), failure
    return None


def _refusal(encode: Callable[[Any], object], obj: Any, error: _Unstorable) -> SessionDataError:
    """The error to raise for *obj*, which *encode* refused with *error*."""
    found = _culprit(encode, obj, (_Unstorable,))
    if found is None:
        return SessionDataError(f"the session cannot be stored: {error.reason}")
    name, failure = found
    return SessionDataError(f"session key {name} cannot be stored: {failure.reason}")


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


class MsgpackSerializer(_Refusing):
    """Compact binary msgpack through msgspec; extension types keep the extra types.

    Two shapes get a denser form: a list of two or more dicts with the same
    keys (a cart, recent items) is stored as a table, the keys once; a
    datetime as 12 bytes (its fields, the UTC offset in minutes). Text with
    lone surrogates and integers beyond msgpack's 64 bits, which JSON keeps
    too, go into extension types (looked for only once msgspec refused them).
    """

    _TUPLE, _UUID, _MARKUP, _ISO_DATETIME, _DATETIME, _TABLE = 1, 2, 3, 4, 5, 6
    #: Text with lone surrogates (UTF-8 with "surrogatepass"), an integer
    #: beyond 64 bits (signed big-endian), a dict with such keys (key-value pairs).
    _TEXT, _INT, _PAIRS = 7, 8, 9
    #: year, month, day, hour, minute, second * 10**6 + microsecond, offset.
    _DATETIME_FORMAT = struct.Struct(">HBBBBIh")
    #: _DATETIME's offset of a naive datetime.
    _NAIVE = -(2**15)
    _INT_RANGE = range(-(2**63), 2**64)

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

    def _to_wire(self, value: Any, depth: int, plain: frozenset[type]) -> Any:
        """*value* with the extra types wrapped; *depth* counts the containers
        around it. Types in *plain* pass as they are: _PLAIN, or _EXACT_PLAIN
        to look at every str and int."""
        # msgspec encodes tuples as arrays and Markup as str without asking, so
        # the extra types are wrapped before encoding rather than in enc_hook.
        kind = type(value)
        if kind is dict:
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            if plain is _EXACT_PLAIN and not all(map(self._fits, value)):
                return self._pairs(value, depth, plain)
            return {
                k: v if type(v) in plain else self._to_wire(v, depth, plain)
                for k, v in value.items()
            }
        if kind is list:
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            table = self._table(value, depth, plain)
            if table is not None:
                return table
            return [v if type(v) in plain else self._to_wire(v, depth, plain) for v in value]
        if kind in plain or kind is bytes:
            return value
        if kind is str:  # only with _EXACT_PLAIN
            return self._exact_str(value)
        if kind is int:
            return self._exact_int(value)
        return self._extra(value, depth, plain)

    def _extra(self, value: Any, depth: int, plain: frozenset[type]) -> Any:
        if isinstance(value, tuple):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            items = [v if type(v) in plain else self._to_wire(v, depth, plain) for v in value]
            return self._ext(self._TUPLE, self._encoder.encode(items))
        if isinstance(value, Markup):
            return self._ext(self._MARKUP, str(value).encode("utf-8", "surrogatepass"))
        if isinstance(value, uuid.UUID):
            return self._ext(self._UUID, value.bytes)
        if isinstance(value, datetime):
            return self._datetime(value)
        # Other subclasses (enums among them) as their plain type, as JSON does.
        if isinstance(value, dict):
            return self._to_wire(dict(value), depth, plain)
        if isinstance(value, list):
            return self._to_wire(list(value), depth, plain)
        base = _plain_base(value)
        if base is None:
            _refuse_type(value)
        return self._to_wire(base, depth, plain)

    def _fits(self, key: Any) -> bool:
        """Whether *key* can be a msgpack map key as it is."""
        kind = type(key)
        if kind is str:
            return self._exact_str(key) is key
        return kind is not int or key in self._INT_RANGE

    def _exact_str(self, text: str) -> Any:
        try:
            text.encode()
        except UnicodeEncodeError:
            return self._ext(self._TEXT, text.encode("utf-8", "surrogatepass"))
        return text

    def _exact_int(self, number: int) -> Any:
        if number in self._INT_RANGE:
            return number
        size = (number.bit_length() + 8) // 8  # with the sign bit
        return self._ext(self._INT, number.to_bytes(size, "big", signed=True))

    def _pairs(self, mapping: dict[Any, Any], depth: int, plain: frozenset[type]) -> Any:
        """A dict whose keys msgpack cannot hold, as a list of key-value pairs:
        an extension type cannot be a map key."""
        pairs = [
            [self._to_wire(k, depth, plain), self._to_wire(v, depth, plain)]
            for k, v in mapping.items()
        ]
        return self._ext(self._PAIRS, self._encoder.encode(pairs))

    # Kept for 4.0, weighed against plain maps on the benchmarks' realistic
    # session: 377 B instead of 472 (with the 20-byte header 0.62x Quart-Session
    # 3.0's record instead of 0.77x, the <= 0.7x goal), dumps alike (~11 µs),
    # loads 6.0 µs instead of 3.1 (building the rows' dicts in Python). Stored
    # bytes are what msgpack is chosen for; JSON stays the faster default.
    def _table(self, rows: list[Any], depth: int, plain: frozenset[type]) -> Any:
        """*rows* as a table if they are 2+ dicts with the same str keys, else None."""
        if len(rows) < 2 or type(rows[0]) is not dict or not rows[0]:
            return None
        keys = tuple(rows[0])
        for row in rows:
            if type(row) is not dict or tuple(row) != keys:
                return None
        if not all(type(key) is str for key in keys):
            return None  # 1 == True: only str keys are sure to come back as they were
        depth += 1  # the rows
        if depth > MAX_DEPTH:
            raise _too_deep()
        values = [
            [v if type(v) in plain else self._to_wire(v, depth, plain) for v in row.values()]
            for row in rows
        ]
        if plain is _EXACT_PLAIN:
            keys = tuple(self._exact_str(key) for key in keys)
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
            return Markup(bytes(data).decode("utf-8", "surrogatepass"))  # noqa: S704 - stored as Markup
        if code == self._UUID:
            return uuid.UUID(bytes=bytes(data))
        if code == self._ISO_DATETIME:
            return datetime.fromisoformat(bytes(data).decode())
        if code == self._TEXT:
            return bytes(data).decode("utf-8", "surrogatepass")
        if code == self._INT:
            return int.from_bytes(data, "big", signed=True)
        if code == self._PAIRS:
            return dict(self._decoder.decode(data))
        raise ValueError(f"unknown msgpack extension type {code}")

    def _encode(self, obj: Any) -> bytes:
        """*obj* as msgpack; raises _Unstorable."""
        try:
            try:
                return self._encoder.encode(self._to_wire(obj, -1, _PLAIN))
            except (UnicodeEncodeError, OverflowError):
                # Lone surrogates or a big integer somewhere: look at every str and int.
                return self._encoder.encode(self._to_wire(obj, -1, _EXACT_PLAIN))
        except RecursionError:  # the caller's own stack was already deep
            raise _Unstorable("it nests too deep for the stack left") from None
        except TypeError as error:
            # Keys, which msgspec takes as they are: "Encoding objects of type
            # Markup is unsupported" (its messages name a type, never a value).
            raise _Unstorable(str(error)) from None
        except (ValueError, OverflowError) as error:
            # Not reached by values (the exact pass keeps them), only by odd
            # keys: a lone surrogate inside a tuple key.
            reason = f"msgpack cannot hold one of its keys ({type(error).__name__})"
            raise _Unstorable(reason) from None

    def loads(self, data: bytes) -> Any:
        try:
            return self._decoder.decode(data)
        except RecursionError:
            raise ValueError("session data nests too deep to decode") from None


#: _PLAIN without str and int: the types msgpack holds whatever their value.
_EXACT_PLAIN: frozenset[type] = frozenset({float, bool, type(None)})


def _plain_base(value: Any) -> Any:
    """A str, int, float or bytes subclass's value as the plain type, else None."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, bytes):
        return bytes(value)
    return None


@functools.cache
def _fixed_zone(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


class _PickleSerializer:
    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - opted into by SESSION_SERIALIZER


#: Top-level modules whose ``loads`` builds arbitrary objects or code.
_UNSAFE_MODULES = frozenset(
    {
        "pickle",
        "_pickle",
        "cPickle",
        "marshal",
        "dill",
        "cloudpickle",
        "jsonpickle",
        "shelve",
        "joblib",
    }
)


def _unsafe_origin(serializer: object) -> str | None:
    """The module *serializer* comes from if its ``loads`` may run code: a
    serializer of ours is safe (pickle named gets its warning on its own)."""
    loads = getattr(serializer, "loads", None)
    origins = (
        serializer.__name__ if isinstance(serializer, types.ModuleType) else None,
        getattr(serializer, "__module__", None),
        type(serializer).__module__,
        getattr(loads, "__module__", None),
    )
    for origin in origins:
        if isinstance(origin, str) and origin.partition(".")[0] in _UNSAFE_MODULES:
            return origin.partition(".")[0]
    return None


def _warn_unsafe(module: str) -> None:
    logger.warning(
        "SESSION_SERIALIZER is %s: anyone who can write to the session store "
        "can run code in this application",
        module,
    )


def resolve_serializer(choice: object) -> Serializer:
    """The serializer named (or given) by ``SESSION_SERIALIZER``; pickle and its
    kind log a warning."""
    if choice == "json":
        return JSONSerializer()
    if choice == "msgpack":
        return MsgpackSerializer()
    if choice == "pickle" or choice is pickle:
        _warn_unsafe("pickle")
        return _PickleSerializer()
    if isinstance(choice, Serializer) and not isinstance(choice, str):
        unsafe = _unsafe_origin(choice)
        if unsafe is not None:
            _warn_unsafe(unsafe)
        return choice
    raise TypeError(
        "SESSION_SERIALIZER must be 'json', 'msgpack', 'pickle' or an object with "
        f"dumps() and loads(), not {choice!r}"
    )


#: What a serializer's dumps raises on a value it cannot store.
_DUMPS_FAILURES = (TypeError, ValueError, RecursionError, OverflowError, pickle.PicklingError)


def dumps_bytes(serializer: Serializer, obj: Any) -> bytes:
    """``serializer.dumps`` as bytes (user serializers may return str).

    Its failure on a session raises SessionDataError naming the top-level key
    at fault; the serializer's own exception, which may show the value, is
    only chained.
    """
    try:
        return _as_bytes(serializer.dumps(obj))
    except SessionDataError:
        raise
    except _DUMPS_FAILURES as error:
        if not isinstance(obj, dict):
            raise
        found = _culprit(lambda part: _as_bytes(serializer.dumps(part)), obj, _DUMPS_FAILURES)
        if found is None:
            reason = _dumps_failure(serializer, error)
            raise SessionDataError(f"the session cannot be stored: {reason}") from error
        name, cause = found
        reason = _dumps_failure(serializer, cause)
        raise SessionDataError(f"session key {name} cannot be stored: {reason}") from cause


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _dumps_failure(serializer: object, error: BaseException) -> str:
    """What failed, without the error's message (which may show the value)."""
    if isinstance(serializer, types.ModuleType):
        name = serializer.__name__
    else:
        name = type(serializer).__qualname__
    return f"{name}.dumps raised {type(error).__name__}"
