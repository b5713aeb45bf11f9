"""The member CIRTs' client: submit (with store-and-forward), pull, export, member keys.

from connectors.client import HubClient
async with HubClient("https://hub.example", "ke-cirt-submit", secret) as hub:
    result = await hub.submit(objects)
"""

from connectors.client.http import HubClient, Outcome, Refused, SubmitResult
from connectors.client.keys import MemberKey
from connectors.client.pull import pull
from connectors.client.queue import SubmitQueue
from connectors.client.retry import Backoff, GaveUp

__all__ = [
    "Backoff",
    "GaveUp",
    "HubClient",
    "MemberKey",
    "Outcome",
    "Refused",
    "SubmitQueue",
    "SubmitResult",
    "pull",
]
