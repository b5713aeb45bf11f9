"""Routing's cost per object on the bench workload: the hub's router against the one it replaced.

    python -m bench.routing [--objects 20000] [--passes 5] [--seed 1]

Workload: incident reports from bench/workload.py (the same generator as `python -m bench`),
routed under the bench federation (bench/nodes.py: the demo members, each naming recipients
for every TLP level) with no earlier deliveries, one submission at a time as the pipeline's
route stage does. Both routers route the same submissions in the same run, one thread,
taking turns, best of `--passes` in CPU time (the machine may be busy with other work). The
old one is the reference copy the differential test checks against
(tests/policy/reference_routing.py). Their results are compared first: a router that is
faster but decides otherwise is no result.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from bench.nodes import bench_federation
from bench.workload import Generator
from hub.federation import Member, parse_federation
from hub.policy.entitlement import Policy
from hub.policy.routing import NoHistory, Router
from tests.policy import reference_routing

RECEIVED = "2026-12-01T08:00:00.000000Z"
KEY = b"bench routing key"

Submissions = list[tuple[Member, list[dict[str, Any]]]]
RouteFn = Callable[[Member, Sequence[Mapping[str, Any]]], Sequence[Any]]


def workload(policy: Policy, objects: int, seed: int) -> Submissions:
    """Whole incident reports, at least `objects` objects in all."""
    generator, found, count = Generator(seed), [], 0
    while count < objects:
        sender, bundle = generator.incident_bundle()
        found.append((policy.federation.member(sender.member), bundle))
        count += len(bundle)
    return found


def seconds(routers: Sequence[RouteFn], submissions: Submissions, passes: int) -> list[float]:
    """Per router, the best of `passes` CPU times (this process's) to route every submission;
    the routers take turns, so a machine busy with something else slows both alike."""
    best = [float("inf")] * len(routers)
    for _ in range(passes):
        for n, route in enumerate(routers):
            start = time.process_time()
            for sender, objects in submissions:
                route(sender, objects)
            best[n] = min(best[n], time.process_time() - start)
    return best


def main(objects: int, passes: int, seed: int) -> None:
    federation = parse_federation(yaml.safe_dump(bench_federation()), "bench federation")
    policy = Policy(federation)
    submissions = workload(policy, objects, seed)
    total = sum(len(bundle) for _, bundle in submissions)

    # Each as its route stage held it: main's made a router per submission, the hub's keeps one.
    router = Router(policy, KEY)

    def new(sender: Member, bundle: Sequence[Mapping[str, Any]]) -> Sequence[Any]:
        return router.route(sender, bundle, RECEIVED, NoHistory())

    def old(sender: Member, bundle: Sequence[Mapping[str, Any]]) -> Sequence[Any]:
        reference = reference_routing.Router(policy, KEY)
        return reference.route(sender, bundle, RECEIVED, reference_routing.NoHistory())

    for sender, bundle in submissions:
        got = [(r.deliveries, r.verdicts) for r in new(sender, bundle)]
        want = [(r.deliveries, r.verdicts) for r in old(sender, bundle)]
        if got != want:
            raise SystemExit(f"the routers disagree on a submission of {sender.id}")
    print(f"{total:,} objects in {len(submissions):,} reports; same results from both routers")
    before, after = (t / total * 1e6 for t in seconds([old, new], submissions, passes))
    print(f"{'router (one thread)':<44} {'µs/object':>10}")
    print(f"{'before: tests/policy/reference_routing.py':<44} {before:>10.1f}")
    print(f"{'after:  hub/policy/routing.py':<44} {after:>10.1f}")
    print(f"after / before: {after / before:.2f}x ({before / after:.1f} times as fast)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    main(args.objects, args.passes, args.seed)
