"""E-mail notifications go only to addresses at the subscribing member's own domains (its
points of contact's, or the `email_domains` the operator lists): an account cannot have the
hub mail a third party, through the API or the console's form."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from hub.federation import Federation
from tests.console.client import Browser
from tests.hubs import running_hub
from tests.notify.servers import password_file, smtp_server
from tests.notify.test_subscriptions import api, configured, raise_alert, until


def with_domains(notify: dict[str, object]):
    """ke-cirt (no contacts) gets an `email_domains` entry; tz-cert has neither."""
    base = configured(notify)

    def adjust(federation: Federation) -> Federation:
        federation = base(federation)
        members = tuple(
            replace(m, email_domains=("ke-cirt.example",)) if m.id == "ke-cirt" else m
            for m in federation.members
        )
        return replace(federation, members=members)

    return adjust


async def test_email_goes_only_to_the_members_own_domains(
    tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    with smtp_server(tmp_path / "smtp") as box:
        notify = {"smtp": box.notify_block(password_file(tmp_path))}
        async with running_hub(
            "embedded",
            tmp_path / "data",
            demo_secrets,
            topic_prefix=f"t{unique}.",
            adjust=with_domains(notify),
        ) as hub:
            taken = {
                # ng-cert's contact is incident@ngcert.example: that domain and below.
                ("ng-cert-read", "duty@ngcert.example"),
                ("ng-cert-read", "soc@Lagos.NGCERT.example"),
                ("ke-cirt-read", "soc@ke-cirt.example"),  # its email_domains
            }
            refused = {
                ("ng-cert-read", "victim@example.org"),
                ("ng-cert-read", "someone@certgh.example"),  # another member's domain
                ("ng-cert-read", "x@evilngcert.example"),  # not a subdomain
                ("ng-cert-read", "x@ngcert.example.evil.example"),
                ("tz-cert-read", "soc@tz-cert.example"),  # no contacts, no email_domains
            }
            for username, address in sorted(taken):
                status, made = await api(
                    hub, username, "POST", "/api/v1/subscriptions",
                    {"kind": "alerts", "email": address},
                )  # fmt: skip
                assert status == 201, (address, made)
            for username, address in sorted(refused):
                status, answer = await api(
                    hub, username, "POST", "/api/v1/subscriptions",
                    {"kind": "alerts", "email": address},
                )  # fmt: skip
                assert status == 400, (address, answer)
                assert answer["description"].startswith(f"email: {address!r} is not at one of")

            # The console's form makes the same check.
            reader = Browser(hub, language="en")
            await reader.log_in("ng-cert-read")
            page = await reader.post(
                "/console/subscriptions", {"kind": "alerts", "email": "victim@example.org"}
            )
            assert page.status == 400 and "is not at one of your CIRT" in page.text, page.text

            await raise_alert(hub)  # in West Africa: ng-cert's accounts receive it, ke-cirt's not
            await until(lambda: len(box.messages) >= 2, "two notifications")
            await asyncio.sleep(2)  # anything more would be mail to an address refused
    delivered = {address.lower() for rcpts, _ in box.messages for address in rcpts}
    assert delivered == {"duty@ngcert.example", "soc@lagos.ngcert.example"}
