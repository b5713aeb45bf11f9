"""How soon a region learns of a major incident: from the POST of the report that crosses
the threshold to the alert being readable over TAXII, on the embedded bus and on Kafka.

    python -m bench.alerts [--rounds 30] [--kafka HOST:PORT]

Each round uses a new domain: member A reports it (and is waited for), then member B's
report is POSTed and the clock runs until B's reader finds the alert in `alerts`. The
baseline, measured in the same rounds, is the same POST until B's reader finds B's own
report in its member feed: so the ratio is what correlating costs on top of routing.
Without --kafka, a broker is started with deploy/kafka/kafka.sh for the Kafka half.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
import orjson

from hub.demo import demo_federation
from hub.federation import Federation
from tests.conftest import KAFKA_SCRIPT, free_port
from tests.correlate.test_alerts import indicator
from tests.hubs import RunningHub, member_identity, running_hub, submit

TAXII = "application/taxii+json;version=2.1"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def adjust(federation: Federation) -> Federation:
    rules = [{"scope": "all", "min_members": 2, "min_countries": 2, "window": "PT1H"}]
    return replace(federation, correlation={"rules": rules})


async def count(session: aiohttp.ClientSession, hub: RunningHub, alias: str, user: str) -> int:
    headers = {
        "Accept": TAXII,
        "Authorization": aiohttp.encode_basic_auth(user, hub.password(user)),
    }
    async with session.get(
        hub.collection_url(alias) + "objects/", params={"limit": "1000"}, headers=headers
    ) as response:
        return len((await response.json(content_type=None)).get("objects", []))


async def rounds(bus_url: str, n: int) -> tuple[list[float], list[float]]:
    """(baseline delays, alert delays) in seconds, one of each per round."""
    with tempfile.TemporaryDirectory() as tmp:
        secrets = Path(tmp, "secrets")
        demo_federation(secrets)
        async with running_hub(
            bus_url,
            Path(tmp, "data"),
            secrets / "demo-accounts.json",
            topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
            adjust=adjust,
        ) as hub:
            baseline, alerting = [], []
            ng, gh = member_identity(hub, "ng-cert"), member_identity(hub, "gh-cert")
            auth = aiohttp.encode_basic_auth("gh-cert-submit", hub.password("gh-cert-submit"))
            post_headers = {"Accept": TAXII, "Content-Type": TAXII, "Authorization": auth}
            async with aiohttp.ClientSession() as session:
                for i in range(n):
                    domain = f"c2-{uuid.uuid4().hex[:10]}.example"
                    assert (
                        await submit(hub, "ng-cert-submit", [indicator(ng, domain)])
                    ).success_count
                    alerts_before = await count(session, hub, "alerts", "gh-cert-read")
                    own_before = await count(session, hub, "member-gh-cert", "gh-cert-read")
                    body = orjson.dumps({"objects": [indicator(gh, domain)]})
                    started = time.perf_counter()
                    async with session.post(
                        hub.collection_url("inbox") + "objects/", data=body, headers=post_headers
                    ) as response:
                        assert response.status == 202
                    seen_own = seen_alert = None
                    while seen_own is None or seen_alert is None:
                        now = time.perf_counter() - started
                        if (
                            seen_own is None
                            and await count(session, hub, "member-gh-cert", "gh-cert-read")
                            > own_before
                        ):
                            seen_own = now
                        if (
                            seen_alert is None
                            and await count(session, hub, "alerts", "gh-cert-read") > alerts_before
                        ):
                            seen_alert = now
                        assert now < 30, "no alert within 30 s"
                        await asyncio.sleep(0.005)
                    baseline.append(seen_own)
                    alerting.append(seen_alert)
                    bus = bus_url.split(":")[0]
                    delays = f"report {seen_own * 1000:.0f} ms, alert {seen_alert * 1000:.0f} ms"
                    progress(f"{bus}: round {i + 1}/{n}: {delays}")
            return baseline, alerting


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--kafka", help="HOST:PORT of a broker (default: start one)")
    args = parser.parse_args()
    results = {"embedded": asyncio.run(rounds("embedded", args.rounds))}
    run_dir = None
    bootstrap = args.kafka
    if bootstrap is None:
        run_dir = tempfile.mkdtemp()
        port = free_port()
        subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "start", "--port", str(port), "--dir", run_dir],
            check=True,
            stdout=sys.stderr,
        )
        bootstrap = f"127.0.0.1:{port}"
    try:
        results["kafka"] = asyncio.run(rounds(f"kafka://{bootstrap}", args.rounds))
    finally:
        if run_dir:
            subprocess.run(["bash", str(KAFKA_SCRIPT), "stop", "--dir", run_dir], stdout=sys.stderr)
    columns = ("report p50", "report p99", "alert p50", "alert p99", "ratio p50")
    print(f"{'bus':<9}" + "".join(f"{c:>12}" for c in columns))
    for bus, (base, alert) in results.items():
        figures = [pct(v, q) * 1000 for v in (base, alert) for q in (50, 99)]
        ratio = pct(alert, 50) / pct(base, 50)
        print(f"{bus:<9}" + "".join(f"{f:>10.0f}ms" for f in figures) + f"{ratio:>11.2f}x")


if __name__ == "__main__":
    main()
