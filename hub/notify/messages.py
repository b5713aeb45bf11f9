"""Notifications written for people: the e-mail one subscriber gets, in its language.

Every string is in the `console` gettext catalogue (hub/i18n), English and French. The
subject begins with the TLP label of what the message tells, verbatim ("[TLP:AMBER] …");
a TLP:RED object is never put in an e-mail, only counted with a link to the console.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hub.correlate.alerts import ALERT_PROPERTY
from hub.federation import Federation
from hub.i18n import translations
from hub.notify.mail import Mail
from hub.notify.store import Pending, tlp_label
from hub.signing.provenance import EXTENSION_ID
from hub.stix.markings import Tlp

# A message that tells of nothing but TLP:RED objects' existence shows this label: that an
# object was shared with the reader is not for wider eyes, its content is not in it at all.
NOTICE_ONLY = Tlp.AMBER


@dataclass(frozen=True)
class Told:
    """One object a message tells of."""

    object_id: str
    type: str
    name: str
    sender: str
    tlp: int | None
    alert: Mapping[str, Any] | None  # the alert's figures, when it is one
    first: bool  # a new alert rather than a change to one


@dataclass(frozen=True)
class Words:
    """The catalogue of one language ("en" or "fr")."""

    language: str

    def say(self, message: str, **values: object) -> str:
        """`message` (a msgid) in this language, its %(name)s values put in."""
        text = translations(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, one: str, many: str, number: int) -> str:
        """`number` with the form of its noun this language takes (msgids with %(num)s)."""
        return translations(self.language).ngettext(one, many, number) % {"num": number}


def told(row: Pending, federation: Federation) -> Told:
    """What the outbox row's stored object says, for a message."""
    obj: dict[str, Any] = orjson.loads(row.body)
    provenance = (obj.get("extensions") or {}).get(EXTENSION_ID) or {}
    submitter = provenance.get("submitter") if isinstance(provenance, dict) else None
    member = next((m for m in federation.members if m.id == submitter), None)
    alert = obj.get(ALERT_PROPERTY)
    return Told(
        object_id=row.object_id,
        type=str(obj.get("type", row.object_id.partition("--")[0])),
        name=str(obj.get("name") or ""),
        sender=member.name if member else "",
        tlp=row.tlp,
        alert=alert if isinstance(alert, dict) else None,
        first=row.version == "",
    )


def _link(console_url: str, object_id: str) -> str:
    return f"{console_url}/console/objects/{object_id}"


def _kind(kind: str, words: Words) -> str:
    """What an alert's keyed observable is, in the reader's words."""
    if kind.startswith("file:"):
        return words.say("file hash")
    names = {
        "ipv4-addr": words.say("IPv4 address"),
        "ipv6-addr": words.say("IPv6 address"),
        "domain-name": words.say("domain"),
        "url": words.say("URL"),
        "email-addr": words.say("e-mail address"),
        "vulnerability": words.say("vulnerability"),
        "malware": words.say("malware"),
        "attack-pattern": words.say("attack pattern"),
        "attack-pattern-id": words.say("ATT&CK technique"),
    }
    return names.get(kind, kind)


def _alert_line(item: Told, language: str) -> str:
    figures = item.alert or {}
    words = Words(language)
    counts = words.say(
        "%(members)s in %(countries)s reported the same %(kind)s; %(sighted)s sighted it.",
        members=words.ngettext("%(num)s member", "%(num)s members", _number(figures, "members")),
        countries=words.ngettext(
            "%(num)s country", "%(num)s countries", _number(figures, "countries")
        ),
        kind=_kind(str(figures.get("kind", "?")), words),
        sighted=figures.get("sighted", 0),
    )
    if item.first:
        return words.say("New major-incident alert: %(figures)s", figures=counts)
    return words.say("Major-incident alert updated: %(figures)s", figures=counts)


def _number(figures: Mapping[str, Any], name: str) -> int:
    # The alert's figures are the hub's own, but an old or odd record must not stop a message.
    value = figures.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _object_line(item: Told, language: str) -> str:
    if item.alert is not None:
        return _alert_line(item, language)
    label = tlp_label(item.tlp) if item.tlp is not None else Words(language).say("no TLP marking")
    if item.sender:
        return Words(language).say(
            "%(type)s “%(name)s” (%(tlp)s), shared by %(sender)s",
            type=item.type,
            name=item.name or item.object_id,
            tlp=label,
            sender=item.sender,
        )
    return Words(language).say(
        "%(type)s “%(name)s” (%(tlp)s)",
        type=item.type,
        name=item.name or item.object_id,
        tlp=label,
    )


def compose(
    to: str, items: Sequence[Told], language: str, console_url: str, manage_url: str
) -> Mail:
    """One e-mail telling `items` to `to`; TLP:RED ones only counted, never shown."""
    shown = [i for i in items if i.tlp != Tlp.RED]
    red = [i for i in items if i.tlp == Tlp.RED]
    levels = [i.tlp for i in shown if i.tlp is not None]
    label = tlp_label(max(levels) if levels else (NOTICE_ONLY if red else Tlp.CLEAR))
    alerts = [i for i in shown if i.alert is not None]
    if len(items) == 1 and alerts:
        headline = _alert_line(alerts[0], language)
    elif len(items) == 1:
        headline = Words(language).say("A new object in your subscriptions")
    else:
        headline = Words(language).say(
            "%(count)s new objects in your subscriptions", count=len(items)
        )
    lines = []
    for item in shown:
        lines.append(f"- {_object_line(item, language)}")
        lines.append(f"  {_link(console_url, item.object_id)}")
    if red:
        notice = (
            Words(language).say("1 %(tlp)s object — read it in the console:", tlp="TLP:RED")
            if len(red) == 1
            else Words(language).say(
                "%(count)s %(tlp)s objects — read them in the console:",
                count=len(red),
                tlp="TLP:RED",
            )
        )
        lines.append(f"- {notice}")
        lines.extend(f"  {_link(console_url, i.object_id)}" for i in red)
    footer = Words(language).say(
        "You get this message because you subscribed; to stop, delete the subscription at %(url)s",
        url=manage_url,
    )
    body = "\n".join([headline, "", *lines, "", "-- ", footer, ""])
    return Mail(to=to, subject=f"[{label}] {headline}", body=body, language=language)
