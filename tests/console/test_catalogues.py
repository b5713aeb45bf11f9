"""The console's message catalogues: every string the code and templates use is in both,
translated, with the same placeholders; the compiled .mo files are those of the .po files;
and no TLP label is ever translated (FIRST requires them verbatim)."""

from __future__ import annotations

import io
import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hub.i18n import DOMAIN, LANGUAGES, locale_dir
from tests.conftest import ROOT

# As hub/i18n/README.md extracts them: gettext/_ in code and templates, and Language.say.
KEYWORDS = {"_": None, "gettext": None, "say": None}
METHODS = [
    ("hub/api/console/**.py", "python"),
    ("hub/api/console/templates/**.html", "jinja2"),
]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def used() -> set[str]:
    found = extract_from_dir(
        str(ROOT),
        METHODS,
        options_map={"hub/api/console/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=KEYWORDS,
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def catalogue(language: str):
    path = locale_dir() / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        return read_po(po, locale=language)


def test_the_code_uses_strings_and_all_are_in_the_catalogues() -> None:
    strings = used()
    assert (
        len(strings) > 50 and "Log in" in strings and "Unknown account or wrong secret." in strings
    )
    for language in LANGUAGES:
        ids = {m.id for m in catalogue(language) if m.id}
        assert not strings - ids, f"{language}: missing {sorted(strings - ids)}"
        assert not ids - strings, f"{language}: no longer used {sorted(ids - strings)}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_is_complete_and_keeps_placeholders_and_tlp_labels(language: str) -> None:
    for message in catalogue(language):
        if not message.id:
            continue
        assert message.string, f"{language}: {message.id!r} is not translated"
        assert not message.fuzzy, f"{language}: {message.id!r} is fuzzy"
        ours = sorted(PLACEHOLDER.findall(message.string))
        assert ours == sorted(PLACEHOLDER.findall(message.id)), f"{language}: {message.id!r}"
        assert "TLP:" not in message.id, f"TLP labels are not translated: {message.id!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_po_file_compiled(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(language))
    mo = locale_dir() / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    assert mo.read_bytes() == compiled.getvalue(), (
        f"{mo} is stale: pybabel compile -d hub/i18n/locale -D {DOMAIN}"
    )
