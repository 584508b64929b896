"""The address a session is pinned to: one pin per client however its address
is spelt, and no header a client writes yields another client's pin.

Hypothesis is not installed in this project, so the property tests run over
addresses and texts drawn from seeded random generators: the same cases every
run, many more than a hand-written list.
"""

from __future__ import annotations

import ipaddress
import random
import re

import pytest

from quart_session.addresses import client_address, forwarded_client, normalise, same_client

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def random_ipv4(rng: random.Random) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(rng.getrandbits(32))


def random_ipv6(rng: random.Random) -> ipaddress.IPv6Address:
    # Half the groups zero, so that runs of zeros (and their compression) are common.
    groups = [0 if rng.random() < 0.5 else rng.getrandbits(16) for _ in range(8)]
    return ipaddress.IPv6Address(int("".join(f"{group:04x}" for group in groups), 16))


def sample_addresses() -> list[Address]:
    rng = random.Random(20240611)
    edges: list[Address] = [
        ipaddress.ip_address(text)
        for text in (
            "0.0.0.0", "255.255.255.255", "127.0.0.1", "192.0.2.1",
            "::", "::1", "2001:db8::1", "2001:db8:0:0:1::1", "fe80::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:0:0", "64:ff9b::c000:201",
        )
    ]  # fmt: skip
    return (
        edges
        + [random_ipv4(rng) for _ in range(100)]
        + [random_ipv6(rng) for _ in range(100)]
    )


def canonical(address: Address) -> str:
    """The pin, by a route other than the one the module takes."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


def ipv6_spellings(address: ipaddress.IPv6Address, rng: random.Random) -> list[str]:
    # The eight groups from the number itself: Python 3.13 writes an
    # IPv4-mapped address's last two groups dotted, even when exploded.
    groups = [(int(address) >> shift) & 0xFFFF for shift in range(112, -1, -16)]
    exploded = ":".join(f"{group:04x}" for group in groups)
    uncompressed = ":".join(f"{group:x}" for group in groups)
    mixed_case = "".join(rng.choice((c.upper(), c.lower())) for c in address.compressed)
    bare = [
        address.compressed,
        address.exploded,
        exploded,
        address.compressed.upper(),
        exploded.upper(),
        uncompressed,
        mixed_case,
    ]
    return bare + [
        form
        for text in bare
        for form in (f"[{text}]", f"[{text}]:443", f'"[{text}]:443"', f'"[{text}]"', f" {text} ")
    ]


def spellings(address: Address) -> list[str]:
    rng = random.Random(int(address))
    if isinstance(address, ipaddress.IPv6Address):
        return ipv6_spellings(address, rng)
    text = str(address)
    mapped = ipaddress.IPv6Address(f"::ffff:{text}")
    return [
        text,
        f"{text}:5555",
        f'"{text}"',
        f'"{text}:80"',
        f" {text}\t",
        f"[{text}]",
        f"::ffff:{text}",
        f"::FFFF:{text}",
        f"[::ffff:{text}]:8080",
        f"0:0:0:0:0:ffff:{text}",
        *ipv6_spellings(mapped, rng),
    ]


@pytest.mark.parametrize("address", sample_addresses(), ids=str)
def test_every_spelling_of_an_address_normalises_to_one_pin(address: Address) -> None:
    pins = {normalise(spelling) for spelling in spellings(address)}
    assert pins == {canonical(address)}


@pytest.mark.parametrize("address", sample_addresses(), ids=str)
def test_every_spelling_matches_a_pin_stored_in_any_spelling(address: Address) -> None:
    forms = spellings(address)
    rng = random.Random(int(address))
    for pinned in rng.sample(forms, 5):
        assert all(same_client(pinned, current) for current in forms)


@pytest.mark.parametrize(
    ("spelling", "pin"),
    [
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::ffff:c000:201", "192.0.2.1"),
        ("192.0.2.1:5555", "192.0.2.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ('"[2001:db8::1]"', "2001:db8::1"),
        ('"[2001:db8::1]:_port"', "2001:db8::1"),
        ("[192.0.2.1]:80", "192.0.2.1"),
        # Without brackets the last group of IPv6 is address, not port.
        ("2001:DB8::1:443", "2001:db8::1:443"),
        ("FE80::1%eth0", "fe80::1%eth0"),
        ("[fe80::1%eth0]:443", "fe80::1%eth0"),
        ("fe80::1%2", "fe80::1%2"),
        ("::ffff:192.0.2.1%eth0", "192.0.2.1"),
    ],
)
def test_normalise_examples(spelling: str, pin: str) -> None:
    assert normalise(spelling) == pin


def test_a_zone_keeps_link_local_hosts_on_different_links_apart() -> None:
    pins = {normalise(text) for text in ("fe80::1", "fe80::1%eth0", "fe80::1%eth1", "fe80::1%ETH0")}
    assert len(pins) == 4
    assert not same_client("fe80::1%eth0", "fe80::1%eth1")


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "   ",
        "unknown",
        "_hidden",
        "_SEVKISEK",
        "garbage",
        "1.2.3",
        "1.2.3.4.5",
        "256.0.0.1",
        "192.000.2.1",  # leading zeros: octal to some parsers, so not an address to us
        "192.0.2.1:",
        "192.0.2.1:123456",
        "192.0.2.1:port",
        "192.0.2.1:80:80",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "[2001:db8::1]:",
        "[]",
        '"',
        '""',
        "2001:db8::1::2",
        "2001:db8::g",
        "\u0661\u0669\u0662.\u0660.\u0662.\u0661",  # Arabic-Indic digits
        "fe80::1%",
        "fe80::1%eth0\nX-Injected: 1",
        "fe80::1%a b",
        "fe80::1%é",
        "192.0.2.1" + " " * 200,
        "1" * 10_000,
        "\x00192.0.2.1",
    ],
)
def test_text_that_is_not_an_address_normalises_to_none(entry: str) -> None:
    assert normalise(entry) is None


# Every character the parsing looks at, and some it must refuse.
_ALPHABET = '0123456789abcdefABCDEFxyz:.[]%"_, \t\n\r\x00\x7f\xe9\u0661\u2028\ufeff'


def random_texts(count: int) -> list[str]:
    rng = random.Random(7)
    texts = ["".join(rng.choices(_ALPHABET, k=rng.randint(0, 60))) for _ in range(count)]
    # Mutations of real spellings get past the early refusals.
    for address in sample_addresses():
        for spelling in spellings(address)[:4]:
            chars = list(spelling)
            chars[rng.randrange(len(chars))] = rng.choice(_ALPHABET)
            texts.append("".join(chars))
    return texts


# What may reach a log line, a signal or the store as a pin.
_SAFE_PIN = re.compile(r"[0-9A-Za-z:.%_~-]*")


def test_nothing_raises_and_every_pin_is_canonical_and_safe() -> None:
    for text in random_texts(5000):
        pin = normalise(text)
        assert pin is None or normalise(pin) == pin, text
        for remote in (text, None):
            address = client_address(remote, [text, text], 1)
            assert _SAFE_PIN.fullmatch(address), text
            assert same_client(address, text) in (True, False)
        assert same_client(text, text) is True
        assert same_client(text, None) in (True, False)


def test_nothing_raises_on_random_header_lines() -> None:
    texts = random_texts(1000)
    rng = random.Random(11)
    for _ in range(1000):
        lines = rng.sample(texts, rng.randint(0, 4))
        for trusted in (1, 2, 3):
            entry = forwarded_client(lines, trusted)
            assert entry is None or (entry == entry.strip() and entry and "," not in entry)
            assert _SAFE_PIN.fullmatch(client_address("10.0.0.1", lines, trusted))


# -- which X-Forwarded-For entry ----------------------------------------------------------
@pytest.mark.parametrize(
    ("lines", "trusted", "entry"),
    [
        # The proxy appended to the client's line.
        (["203.0.113.7"], 1, "203.0.113.7"),
        (["192.0.2.66, 203.0.113.7"], 1, "203.0.113.7"),
        # The proxy added a line of its own (HAProxy option forwardfor): the
        # client's forged line comes first and must not win.
        (["192.0.2.66", "203.0.113.7"], 1, "203.0.113.7"),
        (["192.0.2.66, 192.0.2.67", "203.0.113.7"], 1, "203.0.113.7"),
        # Two proxies: the second from the right is what the outer one saw.
        (["192.0.2.66, 203.0.113.7, 10.0.0.1"], 2, "203.0.113.7"),
        (["192.0.2.66", "203.0.113.7", "10.0.0.1"], 2, "203.0.113.7"),
        (["192.0.2.66, 203.0.113.7", "10.0.0.1"], 2, "203.0.113.7"),
        (["192.0.2.66", "203.0.113.7, 10.0.0.1"], 3, "192.0.2.66"),
        # Empty entries and lines are no entries.
        (["192.0.2.66,, 203.0.113.7 , "], 1, "203.0.113.7"),
        (["192.0.2.66", "", " ,", "203.0.113.7"], 1, "203.0.113.7"),
        (["192.0.2.66,,,", "203.0.113.7"], 2, "192.0.2.66"),
        # A client-written quote does not swallow the proxy's entry.
        (['"192.0.2.66, 203.0.113.7'], 1, "203.0.113.7"),
        (['"192.0.2.66', '203.0.113.7"'], 1, '203.0.113.7"'),
        # Entries come back as written; normalising is the next step.
        (['"[2001:DB8::1]:443"'], 1, '"[2001:DB8::1]:443"'),
        (["unknown"], 1, "unknown"),
        # Fewer entries than trusted proxies.
        ([], 1, None),
        ([""], 1, None),
        ([" , ,"], 1, None),
        (["203.0.113.7"], 2, None),
        (["203.0.113.7", "10.0.0.1"], 3, None),
    ],
)
def test_forwarded_client_takes_the_entry_trusted_proxies_from_the_right(
    lines: list[str], trusted: int, entry: str | None
) -> None:
    assert forwarded_client(lines, trusted) == entry


@pytest.mark.parametrize("trusted", [0, -1])
def test_forwarded_client_needs_at_least_one_trusted_proxy(trusted: int) -> None:
    with pytest.raises(ValueError, match="trusted_proxies must be at least 1"):
        forwarded_client(["203.0.113.7"], trusted)


@pytest.mark.parametrize("victim", [str(a) for a in sample_addresses()[:40]])
def test_a_forged_line_never_yields_the_victims_pin(victim: str) -> None:
    thief = "198.51.100.9"
    for forged in (victim, f"[{victim}]", f"{victim}, {victim}", f'"{victim}'):
        # Appended to the thief's line, or on a line of its own: the proxy's entry wins.
        for lines in ([f"{forged}, {thief}"], [forged, thief]):
            assert client_address("10.0.0.254", lines, 1) == thief
            assert not same_client(victim, client_address("10.0.0.254", lines, 1))


# -- the pin of a request ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("remote", "lines", "trusted", "pin"),
    [
        # No proxy: the peer, whatever the header says.
        ("::ffff:10.0.0.1", ["203.0.113.7"], 0, "10.0.0.1"),
        ("2001:DB8::1", [], 0, "2001:db8::1"),
        (None, [], 0, ""),
        ("", [], 0, ""),
        # Behind proxies: their entry, canonical.
        ("10.0.0.254", ["192.0.2.66", "[2001:DB8::7]:51000"], 1, "2001:db8::7"),
        ("10.0.0.254", ["192.0.2.66, 203.0.113.7, 10.0.0.1"], 2, "203.0.113.7"),
        # Fewer entries than trusted proxies: the request did not come through
        # them all, so the peer (as ProxyFix), never an entry the client wrote.
        ("10.0.0.254", [], 1, "10.0.0.254"),
        ("10.0.0.254", ["203.0.113.7"], 2, "10.0.0.254"),
        (None, [], 1, ""),
        # RFC 7239 tokens a proxy writes are kept; anything else is "".
        ("10.0.0.254", ["unknown"], 1, "unknown"),
        ("10.0.0.254", [" _hidden7 "], 1, "_hidden7"),
        ("10.0.0.254", ["garbage"], 1, ""),
        ("10.0.0.254", ["fe80::1%eth0\x1b[31m"], 1, ""),
        ("evil\nline", [], 0, ""),
    ],
)
def test_client_address(remote: str | None, lines: list[str], trusted: int, pin: str) -> None:
    assert client_address(remote, lines, trusted) == pin


# -- comparing with the pin --------------------------------------------------------------
@pytest.mark.parametrize(
    ("pinned", "current", "same"),
    [
        ("192.0.2.1", "::ffff:192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        ("192.0.2.1", "::c000:201", False),  # IPv4-compatible is not IPv4-mapped
        # Pins stored raw by an older version heal instead of logging users out.
        ("2001:DB8::1", "2001:db8::1", True),
        ("[2001:db8::1]:443", "2001:db8::1", True),
        # A pin that is an address against a current value that is not.
        ("192.0.2.1", None, False),
        ("192.0.2.1", "", False),
        ("192.0.2.1", "unknown", False),
        ("192.0.2.1", "garbage", False),
        # A pin that is not an address: its text, stripped.
        ("unknown", "unknown", True),
        (" unknown ", "unknown", True),
        ("_hidden", "_hidden", True),
        ("_hidden", "_other", False),
        ("unknown", "192.0.2.1", False),
        ("", None, True),
        ("", "", True),
        ("", "192.0.2.1", False),
        ("garbage", None, False),
    ],
)
def test_same_client(pinned: str, current: str | None, same: bool) -> None:
    assert same_client(pinned, current) is same


def test_the_cache_of_client_controlled_values_is_bounded() -> None:
    from quart_session.addresses import _canonical

    assert _canonical.cache_info().maxsize == 1024
    _canonical.cache_clear()
    normalise("1" * 101)  # too long to be an address: refused before the cache
    assert _canonical.cache_info().currsize == 0
    normalise("192.0.2.1")
    assert _canonical.cache_info().currsize == 1
