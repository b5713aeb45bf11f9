"""Typed keys for what the app holds (aiohttp AppKey instead of string keys)."""

from __future__ import annotations

from aiohttp import web

from hub.api.accepted import AcceptedSubmissions
from hub.api.auth import Authenticator
from hub.api.background import Supervised
from hub.api.backpressure import IntakeGate
from hub.bus import Bus
from hub.collections import Collection
from hub.config import Settings
from hub.federation import Account
from hub.metrics import HubMetrics
from hub.notify.config import NotifySettings
from hub.notify.store import NotifyStore
from hub.ops.disk import DiskWatch
from hub.reachability import Book, Courier
from hub.signing.intake import IntakeKeyFile
from hub.signing.keyring import KeyStore
from hub.store.follower import ViewFollower
from hub.store.view import View

SETTINGS = web.AppKey("settings", Settings)
COLLECTIONS = web.AppKey("collections", dict[str, Collection])
AUTH = web.AppKey("authenticator", Authenticator)
BUS = web.AppKey("bus", Bus)
VIEW = web.AppKey("view", View)
FOLLOWER = web.AppKey("follower", ViewFollower)
ACCEPTED = web.AppKey("accepted", AcceptedSubmissions)
METRICS = web.AppKey("metrics", HubMetrics)
RUNNERS = web.AppKey("runners", list[Supervised])
SIGNING_KEYS = web.AppKey("signing_keys", KeyStore)
INTAKE_GATE = web.AppKey("intake_gate", IntakeGate)
INTAKE_KEYS = web.AppKey("intake_keys", IntakeKeyFile)
DISK = web.AppKey("disk", DiskWatch)
NOTIFY = web.AppKey("notify", NotifySettings)
SUBSCRIPTIONS = web.AppKey("subscriptions", NotifyStore)
ACCOUNT = web.RequestKey("account", Account)  # the authenticated caller
REQUEST_ID = web.RequestKey("request_id", str)
REACHABILITY_BOOK = web.AppKey("reachability_book", Book)
REACHABILITY_COURIER = web.AppKey("reachability_courier", Courier)
