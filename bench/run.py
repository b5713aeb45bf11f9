"""The hub end to end under load, with its ceilings and OASIS medallion in the same run.

    python -m bench                      # the full run (~30 min on 2 cores)
    python -m bench --smoke              # seconds: checks the harness, not the hub's speed

For each configuration (embedded bus or Kafka, 1 or 2 pipeline worker processes): a hub
as real processes, member clients POSTing incident bundles over TAXII in their own
processes, readers on every collection's live stream. First closed-loop (the hub's
maximum), then open-loop at 25, 50, 75 and 100 % of the maximum delivered rate; then a
replay of the shared ATT&CK for ICS bundle and a TAXII read-back of every collection.
The same run measures the ceilings on the same objects (bench/ceilings.py) and medallion
against the hub on the same add-then-get workload (bench/medallion_compare.py). Prints
a table, writes results.json and throughput-latency.png to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import install, report
from bench.load import READERS, TAXII, PostPlan, StreamReaders, collection_ids, post
from bench.nodes import Hub, kafka_broker, progress
from bench.workload import DEMO_SENDERS, Generator, attack_objects

LEVELS = (25, 50, 75, 100)


@dataclass(frozen=True)
class Options:
    seconds: float  # the closed-loop (maximum) phase
    level_seconds: float  # each open-loop phase
    clients: int  # load-generating processes
    connections: int  # concurrent POSTs per client process (closed-loop)
    drain: float  # how long to wait for accepted objects to become readable
    medallion_objects: int
    ceiling_seconds: float
    attack: bool
    out: Path
    hub_python: str  # the hub's interpreter: README's install (bench.install) unless told
    idle_seconds: float  # hub CPU measured with no load, before the first phase


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def summarize(
    name: str, started: float, seconds: float, results: list[dict], readers: StreamReaders
) -> dict[str, Any]:
    """One phase's figures from what the clients sent and the readers saw."""
    requests = [r for result in results for r in result["requests"]]
    accepted: dict[str, float] = {}
    for result in results:
        accepted.update(result["accepted"])
    statuses: dict[str, int] = {}
    for _, _, status, _ in requests:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    posted = sum(r[3] for r in requests)
    first = readers.first
    readable = [first[i] for i in accepted if i in first]
    # Every delivery of this phase's objects, to every collection it reached.
    latencies = [
        t - accepted[i]
        for deliveries in readers.seen.values()
        for i, t in deliveries
        if i in accepted
    ]
    to_first = [first[i] - accepted[i] for i in accepted if i in first]
    last = max(readable, default=started)
    answer = [done - sent for sent, done, status, _ in requests if status == 202]
    return {
        "phase": name,
        "seconds": seconds,
        "requests": len(requests),
        "statuses": statuses,
        "objects_posted": posted,
        "objects_accepted": len(accepted),
        "objects_readable": len(readable),
        "objects_missing": len(accepted) - len(readable),
        "deliveries": len(latencies),
        "accepted_per_s": len(accepted) / seconds,
        # Until the last of them was readable: a backlog the pipeline could not keep up
        # with stretches this window, so this is the rate the hub sustained end to end.
        "delivered_per_s": len(readable) / max(seconds, last - started),
        "post_p50_ms": _ms(_percentile(answer, 50)),
        "post_p99_ms": _ms(_percentile(answer, 99)),
        "readable_p50_ms": _ms(_percentile(latencies, 50)),
        "readable_p95_ms": _ms(_percentile(latencies, 95)),
        "readable_p99_ms": _ms(_percentile(latencies, 99)),
        "first_readable_p50_ms": _ms(_percentile(to_first, 50)),
        "first_readable_p99_ms": _ms(_percentile(to_first, 99)),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def hub_rss_bytes(pids: dict[str, int]) -> int:
    """Resident memory of the hub's processes together (VmRSS, /proc)."""
    total = 0
    for pid in pids.values():
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class PeakRss:
    """The highest resident memory of the hub's processes while a phase runs (every 0.25 s)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = hub_rss_bytes(pids)
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.peak = max(self.peak, hub_rss_bytes(self.pids))

    def __enter__(self) -> PeakRss:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, hub_rss_bytes(self.pids))


async def idle_cpu(hub: Hub, seconds: float) -> dict[str, float]:
    """The hub's CPU with no load (its readers' streams open): percent of one core, after
    as long again to settle (workers joining their group, catching up after /readyz)."""
    await asyncio.sleep(seconds)
    pids = hub.pids()
    before, started = hub_cpu_seconds(pids), time.perf_counter()
    await asyncio.sleep(seconds)
    used, elapsed = hub_cpu_seconds(pids) - before, time.perf_counter() - started
    return {"seconds": round(elapsed, 1), "percent_of_a_core": round(100 * used / elapsed, 2)}


def hub_cpu_seconds(pids: dict[str, int]) -> float:
    """User plus system CPU seconds the hub's processes (API node, pipeline workers) used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids.values():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                # Fields after the command name (which may hold spaces): utime, stime at 14, 15.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that ended: its time is lost with it
        total += int(fields[11]) + int(fields[12])
    return total / ticks


async def phase(
    hub: Hub,
    readers: StreamReaders,
    options: Options,
    name: str,
    seconds: float,
    rate: float | None,
    seed: int,
    work: Path,
) -> dict[str, Any]:
    """One load phase: clients post for `seconds`, then the readers drain what was accepted."""
    passwords = hub.passwords()
    plans = [
        PostPlan(
            base_url=hub.base_url,
            passwords=passwords,
            seed=seed * 100 + n,
            seconds=seconds,
            connections=options.connections,
            rate=None if rate is None else rate / options.clients,
            out=work / f"{name}-{n}.json",
        )
        for n in range(options.clients)
    ]
    target = "as fast as answered" if rate is None else f"{rate:,.0f} objects/s"
    progress(f"  {name}: {options.clients} clients, {seconds:.0f} s, {target}")
    pids = hub.pids()
    cpu = hub_cpu_seconds(pids)
    with PeakRss(pids) as memory:
        start_at, results = await post(plans)
        accepted = {i for result in results for i in result["accepted"]}
        missing = await readers.wait_for(accepted, options.drain)
    if missing:
        progress(f"  {name}: {len(missing)} accepted objects not readable after the drain")
    cpu = hub_cpu_seconds(pids) - cpu
    figures = summarize(name, start_at, seconds, results, readers)
    # From the first POST until every accepted object was readable, the live streams'
    # reads included: what the hub spent per object it took in.
    figures["hub_cpu_seconds"] = round(cpu, 3)
    figures["hub_cpu_us_per_object"] = round(cpu * 1e6 / len(accepted)) if accepted else None
    figures["hub_rss_peak_mb"] = round(memory.peak / 1e6, 1)
    progress(
        f"  {name}: accepted {figures['accepted_per_s']:,.0f}/s, delivered "
        f"{figures['delivered_per_s']:,.0f}/s, readable p50 {figures['readable_p50_ms']} ms "
        f"p99 {figures['readable_p99_ms']} ms, POST p50 {figures['post_p50_ms']} ms "
        f"p99 {figures['post_p99_ms']} ms, hub CPU {figures['hub_cpu_us_per_object']} µs/object, "
        f"RSS peak {figures['hub_rss_peak_mb']} MB"
    )
    return figures


async def attack_replay(hub: Hub, readers: StreamReaders, objects: list[dict]) -> dict[str, Any]:
    """The shared ATT&CK for ICS bundle POSTed as KE-CIRT relaying it; until all readable."""
    username = "ke-cirt-submit"
    headers = {
        "Authorization": aiohttp.encode_basic_auth(username, hub.passwords()[username]),
        "Content-Type": TAXII,
        "Accept": TAXII,
    }
    started = time.time()
    accepted = 0
    async with aiohttp.ClientSession() as http:
        for i in range(0, len(objects), 500):
            chunk = objects[i : i + 500]
            async with http.post(
                f"{hub.base_url}/taxii2/hub/collections/inbox/objects/",
                data=orjson.dumps({"objects": chunk}),
                headers=headers,
            ) as response:
                await response.read()
                if response.status == 202:
                    accepted += len(chunk)
    posted = time.time()
    # Relayed objects keep their ids; TLP-less ATT&CK takes KE-CIRT's default (AMBER).
    missing = await readers.wait_for({o["id"] for o in objects}, 120)
    last = max((readers.first.get(o["id"], posted) for o in objects), default=posted)
    return {
        "objects": len(objects),
        "accepted_requests_objects": accepted,
        "post_seconds": round(posted - started, 3),
        "readable_seconds": round(last - started, 3),
        "objects_per_s": round(len(objects) / max(last - started, 1e-9), 1),
        "missing": len(missing),
    }


async def read_back(hub: Hub, readers: StreamReaders) -> dict[str, Any]:
    """Every collection paged over TAXII as its reader: counts, and whether each matches
    what its live stream delivered."""
    passwords = hub.passwords()
    out: dict[str, Any] = {"collections": {}}
    total, started = 0, time.perf_counter()
    async with aiohttp.ClientSession() as http:
        ids = await collection_ids(http, hub.base_url, passwords)
        for alias, username in READERS.items():
            headers = {
                "Authorization": aiohttp.encode_basic_auth(username, passwords[username]),
                "Accept": TAXII,
            }
            url = f"{hub.base_url}/taxii2/hub/collections/{ids[alias]}/objects/"
            count, params = 0, {"limit": "1000"}
            while True:
                async with http.get(url, params=params, headers=headers) as response:
                    response.raise_for_status()
                    page = orjson.loads(await response.read())
                count += len(page.get("objects", []))
                if not page.get("more"):
                    break
                params = {"limit": "1000", "next": page["next"]}
            out["collections"][alias] = {
                "taxii": count,
                "stream": len(readers.seen[alias]),
            }
            total += count
    elapsed = time.perf_counter() - started
    out["objects"] = total
    out["seconds"] = round(elapsed, 3)
    out["objects_per_s"] = round(total / elapsed, 1)
    out["matches_stream"] = all(c["taxii"] == c["stream"] for c in out["collections"].values())
    return out


async def configuration(
    bus_url: str, workers: int, options: Options, attack: list[dict] | None, work: Path
) -> dict[str, Any]:
    """One hub configuration through every phase."""
    label = f"{'kafka' if bus_url.startswith('kafka') else 'embedded'}, {workers} worker(s)"
    progress(f"configuration: {label}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-hub-", dir=work))
    hub = Hub(
        data_dir,
        bus_url,
        workers,
        topic_prefix=f"bench{time.time_ns()}.",
        python=options.hub_python,
    )
    await hub.start()
    readers = StreamReaders(hub.base_url, hub.passwords())
    result: dict[str, Any] = {"bus": label.split(",")[0], "workers": workers, "label": label}
    try:
        await readers.start()
        result["pids"] = hub.pids()
        result["idle"] = await idle_cpu(hub, options.idle_seconds)
        progress(f"  idle: {result['idle']['percent_of_a_core']} % of a core")
        phases = [await phase(hub, readers, options, "max", options.seconds, None, 1, work)]
        sustained = phases[0]["delivered_per_s"]
        for n, level in enumerate(LEVELS, start=2):
            rate = sustained * level / 100
            phases.append(
                await phase(
                    hub, readers, options, f"{level}%", options.level_seconds, rate, n, work
                )
            )
            phases[-1]["level"] = level
            phases[-1]["target_per_s"] = round(rate, 1)
        result["phases"] = phases
        if attack:
            progress("  ATT&CK for ICS replay")
            result["attack_replay"] = await attack_replay(hub, readers, attack)
        progress("  TAXII read-back of every collection")
        result["read_back"] = await read_back(hub, readers)
    except Exception:
        progress(hub.log_tail())
        raise
    finally:
        await readers.stop()
        hub.stop()
    return result


async def medallion_side_by_side(
    objects: list[dict], work: Path, options: Options
) -> dict[str, Any]:
    """The same add-then-get workload on medallion and on an embedded hub."""
    from bench import medallion_compare

    progress(f"medallion vs cirt-hub: add then get {len(objects):,} objects")
    hub = Hub(
        Path(tempfile.mkdtemp(prefix="bench-medallion-hub-", dir=work)),
        "embedded",
        1,
        python=options.hub_python,
    )
    await hub.start()
    try:
        passwords = hub.passwords()
        on_hub = await medallion_compare.run_hub(
            hub.base_url,
            ("ke-cirt-submit", passwords["ke-cirt-submit"]),
            ("ke-cirt-read", passwords["ke-cirt-read"]),
            "member-ke-cirt",
            objects,
        )
    finally:
        hub.stop()
    on_medallion = await asyncio.to_thread(medallion_compare.run_medallion, objects)
    return {"cirt_hub": on_hub, "medallion": on_medallion}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds per part (CI)")
    parser.add_argument("--kafka", help="HOST:PORT of a broker (default: start one)")
    parser.add_argument(
        "--configs",
        default=None,
        help="comma-separated BUS:WORKERS (default embedded:1,embedded:2,kafka:1,kafka:2; "
        "smoke: embedded:1,kafka:1)",
    )
    parser.add_argument("--seconds", type=float, help="closed-loop phase (default 60)")
    parser.add_argument("--level-seconds", type=float, help="each open-loop phase (default 20)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--connections", type=int, default=4, help="per client (default 4)")
    parser.add_argument("--medallion-objects", type=int, help="add-then-get size (10,000)")
    parser.add_argument("--no-attack", action="store_true", help="skip the ATT&CK replay")
    parser.add_argument(
        "--parts",
        default="ceilings,hub,medallion",
        help="which parts to run (default: ceilings,hub,medallion)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument(
        "--hub-python",
        default=None,
        help="the hub's interpreter: 'readme' (default: README's command 1 into "
        "bench/.hub-venv, made once), 'current' (this venv; the smoke run's default) or a path",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    out = args.out or Path("bench") / "results" / time.strftime("%Y%m%d-%H%M%S")
    options = Options(
        seconds=args.seconds or (2.0 if smoke else 60.0),
        level_seconds=args.level_seconds or (1.0 if smoke else 20.0),
        clients=args.clients,
        connections=args.connections,
        drain=60.0 if smoke else 180.0,
        medallion_objects=args.medallion_objects or (200 if smoke else 10_000),
        ceiling_seconds=0.3 if smoke else 3.0,
        attack=not args.no_attack,
        out=out,
        hub_python=_hub_python(args.hub_python or ("current" if smoke else "readme")),
        idle_seconds=1.0 if smoke else 10.0,
    )
    if smoke:
        options = replace(options, attack=False)
    if args.configs is None:
        args.configs = "embedded:1,kafka:1" if smoke else "embedded:1,embedded:2,kafka:1,kafka:2"
    return args, options


def _hub_python(choice: str) -> str:
    if choice == "current":
        return sys.executable
    if choice == "readme":
        return str(install.install())
    if not Path(choice).is_file():
        raise SystemExit(f"--hub-python: {choice!r} is not 'readme', 'current' or an interpreter")
    return choice


def configs_of(text: str) -> list[tuple[str, int]]:
    found = []
    for part in text.split(","):
        bus, _, workers = part.strip().partition(":")
        if bus not in ("embedded", "kafka") or not workers.isdigit() or int(workers) < 1:
            raise SystemExit(f"--configs: {part!r} is not BUS:WORKERS (embedded:1, kafka:2)")
        found.append((bus, int(workers)))
    return found


async def main_async(args: argparse.Namespace, options: Options) -> dict[str, Any]:
    configs = configs_of(args.configs)
    parts = set(args.parts.split(","))
    if unknown := parts - {"ceilings", "hub", "medallion"}:
        raise SystemExit(f"--parts: unknown part(s) {', '.join(sorted(unknown))}")
    if "hub" not in parts:
        configs = []
    options.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    # Enough that no ceiling passes over the same object twice in its few seconds.
    sample = Generator(seed=7).objects(2_000 if args.smoke else 60_000)
    attack = attack_objects(report.testdata()) if options.attack else None
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "smoke": args.smoke,
        "hub_install": install.describe(Path(options.hub_python)),
        "configurations": [],
    }
    needs_kafka = any(bus == "kafka" for bus, _ in configs) or (
        "ceilings" in parts and "kafka" in args.configs
    )
    with kafka_broker(args.kafka) if needs_kafka else nullcontext(None) as bootstrap:
        if "ceilings" in parts:
            progress("ceilings on the same objects")
            from bench import ceilings

            results["ceilings"] = await asyncio.to_thread(
                ceilings.measure,
                sample,
                seconds=options.ceiling_seconds,
                kafka_bootstrap=bootstrap,
            )
        for bus, workers in configs:
            bus_url = "embedded" if bus == "embedded" else f"kafka://{bootstrap}"
            results["configurations"].append(
                await configuration(bus_url, workers, options, attack, work)
            )
    if "medallion" in parts:
        # One sender's reports (KE-CIRT's), posted by it: medallion has no senders.
        kenya = tuple(s for s in DEMO_SENDERS if s.member == "ke-cirt")
        objects = Generator(seed=9, senders=kenya).objects(options.medallion_objects)
        results["medallion"] = await medallion_side_by_side(
            objects[: options.medallion_objects], work, options
        )
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return results


def main(argv: list[str] | None = None) -> None:
    args, options = parse_args(argv)
    try:
        import uvloop

        results = uvloop.run(main_async(args, options))
    except ImportError:
        results = asyncio.run(main_async(args, options))
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "results.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    report.plot(results, options.out / "throughput-latency.png")
    print(report.table(results))
    progress(f"results: {options.out / 'results.json'}, {options.out / 'throughput-latency.png'}")
