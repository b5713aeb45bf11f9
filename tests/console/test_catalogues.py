"""The message catalogues, the console's and the member client's (`cli`): every string the
code and templates use is in both languages' catalogues, translated, with the same
placeholders; the compiled .mo files are those of the .po files; and no TLP label is ever
translated (FIRST requires them verbatim)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hub.i18n import DOMAIN, LANGUAGES, locale_dir
from hub.i18n import cli as cli_messages
from tests.conftest import ROOT

# As hub/i18n/README.md extracts them: gettext/_ and ngettext in code and templates, and say.
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "say": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Domain:
    """One catalogue: where its strings are (as its babel .cfg says) and two it must hold."""

    name: str
    methods: list[tuple[str, str]]
    samples: tuple[str, str]
    options: dict[str, dict[str, str]] = field(default_factory=dict)


DOMAINS = {
    DOMAIN: Domain(
        DOMAIN,
        [
            ("hub/api/console/**.py", "python"),
            ("hub/notify/**.py", "python"),
            ("hub/api/console/templates/**.html", "jinja2"),
        ],
        ("Log in", "Unknown account or wrong secret."),
        {"hub/api/console/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ),
    cli_messages.DOMAIN: Domain(
        cli_messages.DOMAIN,
        [("connectors/client/**.py", "python")],
        ("cirt-hub %(command)s: the hub is unreachable: %(error)s", "objects sent"),
    ),
}
EACH = [(d, language) for d in DOMAINS for language in LANGUAGES]


def used(domain: Domain) -> set[str | tuple[str, ...]]:
    """Every message id: a string, or (singular, plural) for a message with plural forms."""
    found = extract_from_dir(
        str(ROOT), domain.methods, options_map=domain.options, keywords=KEYWORDS
    )
    return {
        message if isinstance(message, str) else tuple(message)
        for _, _, message, _, _ in found
        if isinstance(message, str) or all(isinstance(part, str) for part in message)
    }


def forms(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """A message id or translation as its forms (one, unless it has plural forms)."""
    return (text,) if isinstance(text, str) else tuple(text)


def catalogue(domain: str, language: str) -> Catalog:
    path = locale_dir() / language / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as po:
        return read_po(po, locale=language)


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_code_uses_strings_and_all_are_in_the_catalogues(domain: str) -> None:
    strings = used(DOMAINS[domain])
    assert len(strings) > 50 and set(DOMAINS[domain].samples) <= strings
    for language in LANGUAGES:
        ids = {m.id for m in catalogue(domain, language) if m.id}
        assert not strings - ids, f"{domain} {language}: missing {sorted(strings - ids)}"
        assert not ids - strings, f"{domain} {language}: no longer used {sorted(ids - strings)}"


@pytest.mark.parametrize(("domain", "language"), EACH)
def test_each_catalogue_is_complete_and_keeps_placeholders_and_tlp_labels(
    domain: str, language: str
) -> None:
    for message in catalogue(domain, language):
        if not message.id:
            continue
        assert all(forms(message.string)), f"{domain} {language}: {message.id!r} is not translated"
        assert not message.fuzzy, f"{domain} {language}: {message.id!r} is fuzzy"
        theirs = sorted(PLACEHOLDER.findall(forms(message.id)[-1]))
        for form in forms(message.string):
            ours = sorted(PLACEHOLDER.findall(form))
            assert ours == theirs, f"{language}: {message.id!r}"
        assert all("TLP:" not in f for f in forms(message.id)), f"TLP labels: {message.id!r}"


@pytest.mark.parametrize(("domain", "language"), EACH)
def test_the_compiled_catalogue_is_the_po_file_compiled(domain: str, language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(domain, language))
    mo = locale_dir() / language / "LC_MESSAGES" / f"{domain}.mo"
    assert mo.read_bytes() == compiled.getvalue(), (
        f"{mo} is stale: pybabel compile -d hub/i18n/locale -D {domain}"
    )
