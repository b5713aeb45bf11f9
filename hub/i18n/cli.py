"""The member client's messages (`cirt-hub submit | pull | queue | export | member-key`) in
English or French: the `cli` catalogue beside the console's, the language from `--lang` or,
as gettext finds it, the locale environment. Nothing is translated until a command calls
`use`, so what the hub's own processes log stays English."""

from __future__ import annotations

import argparse
import gettext
import os
from collections.abc import Mapping

from babel.numbers import format_decimal
from babel.support import Translations

from hub.i18n import DEFAULT, LANGUAGES
from hub.i18n import translations as catalogue

DOMAIN = "cli"
# Where gettext looks for the language of messages, in its order (LANGUAGE may list several).
ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_shown: gettext.NullTranslations = gettext.NullTranslations()
_language = DEFAULT


def translations(language: str) -> Translations:
    """The compiled `cli` catalogue of `language` (one of LANGUAGES)."""
    return catalogue(language, DOMAIN)


def from_environment(environ: Mapping[str, str] = os.environ) -> str:
    """The language gettext would pick from the environment (`fr_CA.UTF-8` is French), among
    LANGUAGES; English when it names none of them, or the C locale first."""
    for name in ENVIRONMENT:
        value = environ.get(name)
        if not value:
            continue
        for item in value.split(":"):
            tag = item.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
            if tag in ("c", "posix"):
                return DEFAULT
            if tag in LANGUAGES:
                return tag
        return DEFAULT
    return DEFAULT


def use(language: str | None) -> str:
    """Show messages in `language` (None: the environment's) from now on; which it is."""
    global _shown, _language
    _language = language if language in LANGUAGES else from_environment()
    _shown = translations(_language)
    return _language


def say(message: str, /, **values: object) -> str:
    """`message` in the language in use, its `%(name)s` placeholders filled from `values`."""
    shown = _shown.gettext(message)
    return shown % values if values else shown


def number(value: float, digits: int = 0) -> str:
    """`value` as the language in use writes it (1,234.5 in English, 1 234,5 in French)."""
    shape = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=shape, locale=_language)


def add_option(parser: argparse.ArgumentParser) -> None:
    """The `--lang` option of a member command."""
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="language of messages (default: from LANGUAGE, LC_ALL, LC_MESSAGES or LANG)",
    )
