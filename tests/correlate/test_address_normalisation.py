"""The correlator's shortcut for canonical IPv4 addresses gives exactly what `ipaddress`
gives (the reading before the shortcut, kept here as the reference), on random addresses,
networks, near-misses and IPv6 addresses."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.correlate.observables import normalise


def reference(value: str) -> str | None:
    """The address normalisation as it was: `ipaddress` for every value."""
    try:
        return (
            ipaddress.ip_network(value.strip(), strict=False)
            .compressed.removesuffix("/32")
            .removesuffix("/128")
        )
    except ValueError:
        return None


def _octet_text(n: int, zeros: int) -> str:
    return "0" * zeros + str(n)


@st.composite
def ipv4_text(draw: st.DrawFn) -> str:
    """Dotted quads, mostly canonical; some with leading zeros, out-of-range octets, a prefix,
    a missing or extra octet, or space around them."""
    octets = draw(st.lists(st.integers(0, 300), min_size=3, max_size=5))
    text = ".".join(_octet_text(n, draw(st.sampled_from([0, 0, 0, 0, 1, 2]))) for n in octets)
    if draw(st.booleans()):
        text += "/" + str(draw(st.integers(0, 40)))
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " ", "\n"]))


@st.composite
def ipv6_text(draw: st.DrawFn) -> str:
    address = ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))
    text = draw(st.sampled_from([address.compressed, address.exploded, str(address).upper()]))
    if draw(st.booleans()):
        text += "/" + str(draw(st.integers(0, 130)))
    return text


values = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    ipv4_text(),
    ipv6_text(),
    st.text(alphabet="0123456789./:abcdefABCDEF %x\u0661", max_size=24),
)


@settings(max_examples=3000, deadline=None)
@given(values, st.sampled_from(["ipv4-addr", "ipv6-addr"]))
def test_addresses_read_as_ipaddress_reads_them(value: str, kind: str) -> None:
    expected = reference(value) if value.strip() else None
    found = normalise(kind, value)
    assert (found[1] if found else None) == expected


def test_edge_addresses() -> None:
    for value in (
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "1.2.3.04",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4/32",
        "1.2.3.4/24",
        "\u0661.2.3.4",
        "1.2.3.4 ",
        "::ffff:1.2.3.4",
    ):
        found = normalise("ipv4-addr", value)
        assert (found[1] if found else None) == reference(value), value
