"""Subscriptions: analysts told of new alerts, changes to an alert they follow, and new
objects in a collection matching a filter, by e-mail and/or a signed webhook.

`subscriptions` holds what analysts asked for, `outbox` what is due to whom (recorded before
any attempt, so a restart loses and repeats nothing), `notifier` fills and drains it,
`messages` writes e-mails in the subscriber's language, `mail` sends them.
"""
