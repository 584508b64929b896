"""Hypothesis strategies for what a client sends: id values, header text, addresses."""

from __future__ import annotations

import string
from dataclasses import dataclass

from hypothesis import strategies as st

#: Characters of an id (base64url).
ID_ALPHABET = string.ascii_letters + string.digits + "-_"
#: Characters that mean something to a cookie or header parser, or to a log.
ODD = ' "\\,;=\t%.+/\x00\x01\x7f\x80\xa0\xff\u2028\ufeff\U0001f36a'
#: Characters of an encoded id of SESSION_ID_LENGTH = 32 bytes.
ID_LENGTH = 43


def header_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Any text but CR and LF (which end a header line)."""
    return st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=max_size
    )


def header_bytes(max_size: int = 200) -> st.SearchStrategy[bytes]:
    """A header value's bytes: random bytes, or any text as UTF-8; never CR or LF."""
    return st.one_of(
        st.binary(max_size=max_size).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
        header_text(max_size).map(str.encode),
    )


def id_like(length: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return length.flatmap(lambda n: st.text(ID_ALPHABET, min_size=n, max_size=n))


def malformed_ids() -> st.SearchStrategy[str]:
    """Values that look like ids, or almost: wrong length, a fake signature,
    an odd character inside, quoted."""
    right_length = id_like(st.just(ID_LENGTH))
    return st.one_of(
        id_like(st.integers(0, 100).filter(lambda n: n != ID_LENGTH)),
        st.tuples(right_length, id_like(st.integers(0, 60))).map(".".join),
        st.tuples(right_length, st.integers(0, ID_LENGTH), st.sampled_from(ODD)).map(
            lambda parts: parts[0][: parts[1]] + parts[2] + parts[0][parts[1] :]
        ),
        right_length.map(lambda sid: f'"{sid}"'),
        right_length,
    )


def mutations(value: str) -> st.SearchStrategy[str]:
    """*value* (a valid cookie) slightly wrong: truncated, extended, a character
    replaced, its case flipped, quoted or percent-encoded."""
    n = len(value)
    return st.one_of(
        st.integers(0, n - 1).map(lambda i: value[:i]),
        st.text(ID_ALPHABET + ODD, min_size=1, max_size=5).map(lambda tail: value + tail),
        st.tuples(st.integers(0, n - 1), st.sampled_from(ID_ALPHABET + ODD)).map(
            lambda change: value[: change[0]] + change[1] + value[change[0] + 1 :]
        ),
        st.just(value.swapcase()),
        st.just(f'"{value}"'),
        st.just(value.replace("-", "%2D").replace("_", "%5F").replace(".", "%2E")),
    )


def id_values(valid: str) -> st.SearchStrategy[bytes]:
    """One value for the session id: anything from garbage to *valid* itself."""
    return st.one_of(
        header_bytes(),
        st.one_of(malformed_ids(), mutations(valid), st.just(valid)).map(str.encode),
    )


def addresses() -> st.SearchStrategy[str]:
    """An X-Forwarded-For entry: addresses in every spelling, tokens, garbage."""
    ipv4 = st.ip_addresses(v=4).map(str)
    ipv6 = st.ip_addresses(v=6).map(str)
    return st.one_of(
        ipv4,
        ipv6,
        ipv6.map(str.upper),
        ipv6.map(lambda a: f"[{a}]"),
        st.tuples(ipv6, st.integers(0, 99999)).map(lambda p: f"[{p[0]}]:{p[1]}"),
        st.tuples(ipv4, st.integers(0, 99999)).map(lambda p: f"{p[0]}:{p[1]}"),
        ipv4.map(lambda a: f"::ffff:{a}"),
        ipv4.map(lambda a: f'"{a}"'),
        st.tuples(ipv6, st.text(ID_ALPHABET + ODD, max_size=20)).map(lambda p: f"{p[0]}%{p[1]}"),
        st.sampled_from(["unknown", "_hidden", "_", "", " ", ",", '"', "[", "]:80"]),
        header_text(60),
    )


#: Keys that mean something to the envelope or to the JSON serializer's tags.
SPECIAL_KEYS = (
    "_qs",
    "p",
    "a",
    "c",
    "l",
    "o",
    "t",
    " t",
    " t__",
    " di",
    " b",
    " u",
    " m",
    " d",
    " dt",
)


def json_keys() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SPECIAL_KEYS), st.text(max_size=8))


def json_values(finite: bool = True) -> st.SearchStrategy[object]:
    """Any value JSON holds (*finite*: no NaN or infinity, which JSON proper lacks)."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=not finite, allow_infinity=not finite),
        st.text(max_size=20),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(json_keys(), inner, max_size=4)
        ),
        max_leaves=12,
    )


@dataclass(frozen=True)
class Damage:
    """A way to damage bytes, drawn before the bytes are known: what it damages
    (a fresh record, its version and nonce new each run) cannot steer the draw."""

    #: "truncate", "flip" or "replace".
    kind: str
    #: The cut (truncate) or the bit positions (flip), taken modulo the length.
    where: tuple[int, ...]
    #: The bytes that replace the value (replace).
    noise: bytes = b""

    def __call__(self, value: bytes) -> bytes:
        if self.kind == "replace" or not value:
            return self.noise
        if self.kind == "truncate":
            return value[: self.where[0] % len(value)]
        flipped = bytearray(value)
        for bit in self.where:
            bit %= len(value) * 8
            flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped)


def damage() -> st.SearchStrategy[Damage]:
    """Truncated, one to eight bits flipped, or replaced by random bytes."""
    position = st.integers(0, 2**16)
    return st.one_of(
        st.builds(Damage, st.just("truncate"), st.tuples(position)),
        st.builds(Damage, st.just("flip"), st.lists(position, min_size=1, max_size=8).map(tuple)),
        st.builds(Damage, st.just("replace"), st.just(()), st.binary(max_size=300)),
    )
