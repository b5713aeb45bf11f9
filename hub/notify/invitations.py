"""A reachability check's one-time links, e-mailed to each member's points of contact.

The courier of hub.reachability when the hub has an SMTP server (`notify.smtp`): one
message per contact, in the first of its languages the hub writes (English or French),
else in its member's language. A contact the server refuses is left to the console's
banner and the operator's links; the others are still sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hub.federation import Federation, Member
from hub.notify.config import SmtpSettings
from hub.notify.mail import Mail, MailError, send_mail
from hub.notify.messages import Words
from hub.reachability import Invitation

log = logging.getLogger(__name__)

WRITTEN = ("en", "fr")


def _language(member: Member, address: str) -> str:
    for contact in member.contacts:
        if contact.email == address:
            for language in contact.languages:
                base = language.split("-", 1)[0].lower()
                if base in WRITTEN:
                    return base
    return member.language if member.language in WRITTEN else "en"


def invitation_mail(member: Member, invitation: Invitation, link: str) -> Mail:
    """The message that asks one contact to answer, in its language."""
    language = _language(member, invitation.contact)
    words = Words(language)
    subject = words.say("Reachability check: can we reach %(member)s?", member=member.name)
    body = "\n\n".join(
        (
            words.say(
                "The hub's operators check that %(member)s can be reached through its points "
                "of contact. This link was sent to %(contact)s.",
                member=member.name,
                contact=invitation.contact,
            ),
            words.say("Open it and press the button to answer for your CIRT:"),
            link,
            words.say("The link works once. Anyone of your CIRT may answer in the console too."),
        )
    )
    return Mail(to=invitation.contact, subject=subject, body=body, language=language)


class MailCourier:
    """Sends each contact its link by e-mail through the hub's SMTP server."""

    def __init__(self, smtp: SmtpSettings, federation: Federation) -> None:
        self.smtp = smtp
        self.federation = federation

    async def send(self, invitations: Iterable[Invitation], link_base: str) -> int:
        """E-mail every invitation; how many the server took."""
        sent = 0
        for invitation in invitations:
            member = self.federation.member(invitation.member)
            mail = invitation_mail(member, invitation, link_base + invitation.token)
            try:
                await send_mail(self.smtp, mail)
            except MailError as exc:
                log.warning(
                    "reachability link to %s (%s) not sent: %s",
                    invitation.contact,
                    invitation.member,
                    exc,
                )
                continue
            sent += 1
        return sent
