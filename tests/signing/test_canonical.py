"""The canonical form signatures cover is exactly RFC 8785's, as the `rfc8785` package
writes it, on random JSON (the hub takes a faster path where it can)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.signing.provenance import canonical
from tests.stixdata import shared_objects

keys = st.one_of(st.text(max_size=8), st.sampled_from(["\ue000", "\U0001f600", "a", "é"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, documents, max_size=6))
def test_canonical_is_rfc8785(doc: dict) -> None:
    try:
        expected = rfc8785.dumps(doc)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(doc)
        return
    assert canonical(doc) == expected


def test_canonical_is_rfc8785_on_real_content() -> None:
    for obj in shared_objects("mitre-attack/ics-attack-18.1.json"):
        assert canonical(obj) == rfc8785.dumps(obj)
