"""The hub's CPU with no load: `python -m bench.idle`.

    python -m bench.idle [--runs 3] [--seconds 30] [--workers 1] [--streams]

Each run starts a fresh hub as the benchmark runs it (`cirt-hub serve --workers N`,
embedded bus unless `--bus` says otherwise, README's install unless `--hub-python` says
otherwise), lets it settle, then reads /proc over `--seconds`: user + system CPU of the
API node and of each pipeline worker, in percent of one core, and how often their threads
were woken (voluntary context switches per second, summed over each process's threads:
every timer, poll and thread hand-off of an idle process is one or more of them). With
`--streams` the nine live streams of the benchmark's readers stay open meanwhile, as in
the main benchmark's idle line. Prints one line per run and the spread of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from bench.load import StreamReaders
from bench.nodes import Hub, kafka_broker, progress
from bench.run import _hub_python, hub_cpu_seconds


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of `pid` so far (a thread that ended
    takes its count with it)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


async def one_run(
    bus_url: str, workers: int, seconds: float, settle: float, streams: bool, python: str
) -> dict[str, dict[str, float]]:
    """Per process (and `total`): percent of a core and wake-ups per second over `seconds`."""
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    hub = Hub(work / "hub", bus_url, workers, topic_prefix=f"idle{time.time_ns()}.", python=python)
    await hub.start()
    readers = StreamReaders(hub.base_url, hub.passwords()) if streams else None
    try:
        if readers is not None:
            await readers.start()
        await asyncio.sleep(settle)
        pids = hub.pids()
        cpu = {name: hub_cpu_seconds({name: pid}) for name, pid in pids.items()}
        woken = {name: wakeups(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        result = {
            name: {
                "percent_of_a_core": 100 * (hub_cpu_seconds({name: pid}) - cpu[name]) / elapsed,
                "wakeups_per_s": (wakeups(pid) - woken[name]) / elapsed,
            }
            for name, pid in pids.items()
        }
    finally:
        if readers is not None:
            await readers.stop()
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["total"] = {
        key: sum(r[key] for r in result.values()) for key in ("percent_of_a_core", "wakeups_per_s")
    }
    return result


async def main_async(args: argparse.Namespace) -> None:
    python = _hub_python(args.hub_python)
    with kafka_broker(args.kafka) if args.bus == "kafka" else nullcontext("") as broker:
        bus_url = f"kafka://{broker}" if args.bus == "kafka" else "embedded"
        runs = []
        for n in range(1, args.runs + 1):
            progress(f"run {n}/{args.runs}: {args.bus}, {args.workers} worker(s)")
            runs.append(
                await one_run(
                    bus_url, args.workers, args.seconds, args.settle, args.streams, python
                )
            )
    names = list(runs[0])
    print(
        f"idle, {args.bus} bus, {args.workers} worker(s), {args.seconds:g} s per run"
        f"{', nine live streams open' if args.streams else ''}; load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"{'run':>5}" + "".join(f"{name + ' %':>14}{'wakes/s':>9}" for name in names))
    for n, run in enumerate(runs, start=1):
        print(
            f"{n:>5}"
            + "".join(
                f"{run[name]['percent_of_a_core']:>14.2f}{run[name]['wakeups_per_s']:>9.1f}"
                for name in names
            )
        )
    totals = [run["total"]["percent_of_a_core"] for run in runs]
    print(
        f"total % of a core: min {min(totals):.2f}, median {statistics.median(totals):.2f},"
        f" max {max(totals):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.idle", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=3, help="fresh hubs measured (default 3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per run (default 30)")
    parser.add_argument("--settle", type=float, default=10.0, help="before measuring (10)")
    parser.add_argument("--workers", type=int, default=1, help="pipeline workers (default 1)")
    parser.add_argument("--bus", choices=("embedded", "kafka"), default="embedded")
    parser.add_argument("--kafka", help="HOST:PORT of a broker (default: start one)")
    parser.add_argument("--streams", action="store_true", help="keep nine live streams open")
    parser.add_argument(
        "--hub-python", default="readme", help="'readme' (default), 'current' or a path"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
