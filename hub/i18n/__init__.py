"""The hub's message catalogues (gettext, compiled .mo beside their .po) and locale formats.

English and French, the working languages of the hub's first region. The catalogues are
`locale/<language>/LC_MESSAGES/console.po`; `hub/i18n/README.md` says how to extract,
translate and compile them. TLP labels are never translated (FIRST requires them verbatim).
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from babel.dates import format_datetime, format_timedelta
from babel.support import Translations

from hub.stix import timestamps

LANGUAGES = ("en", "fr")
DEFAULT = "en"
DOMAIN = "console"
NAMES = {"en": "English", "fr": "Français"}  # each language named in itself
# One language range of Accept-Language (RFC 9110): its primary subtag, and its q if any.
_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]{1,5}))?\s*$"
)


def locale_dir() -> Path:
    return Path(str(resources.files("hub.i18n").joinpath("locale")))


@cache
def translations(language: str, domain: str = DOMAIN) -> Translations:
    """The compiled catalogue `domain` (the console's unless named) of `language`."""
    loaded = Translations.load(str(locale_dir()), [language], domain)
    if not isinstance(loaded, Translations):
        raise FileNotFoundError(f"no compiled {domain} catalogue for {language!r}")
    return loaded


def negotiate(accept_language: str | None) -> str:
    """The language to show for an Accept-Language header: the one of LANGUAGES the
    browser prefers most (by q, then order), else English."""
    best: tuple[float, int, str] | None = None
    for n, item in enumerate((accept_language or "")[:1000].split(",")[:30]):
        match = _RANGE.match(item)
        if match is None:
            continue
        tag, q = match.group(1).lower(), match.group(2)
        try:
            weight = float(q) if q is not None else 1.0
        except ValueError:
            continue
        if tag in LANGUAGES and weight > 0 and (best is None or (-weight, n) < best[:2]):
            best = (-weight, n, tag)
    return best[2] if best else DEFAULT


def when(stamp: str | None, language: str) -> str:
    """A STIX timestamp as the reader's locale writes a date and time (in UTC, said so)."""
    if not stamp:
        return ""
    try:
        moment = timestamps.parse(stamp)
    except ValueError:
        return stamp
    return f"{format_datetime(moment, 'medium', tzinfo=UTC, locale=language)} UTC"


def duration(seconds: float | None, language: str) -> str:
    """A length of time as the reader's locale says it, to its largest unit ("3 hours")."""
    if seconds is None:
        return ""
    return format_timedelta(timedelta(seconds=seconds), threshold=1, locale=language)
