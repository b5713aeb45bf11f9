"""The benchmark's results as people read them: a table with ratios, and a PNG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Issue 11's targets on a 2-core machine: (sustained objects/s, p99 ms at 50 %).
TARGETS = {"embedded": (10_000, 250), "kafka": (6_000, 500)}
MEDALLION_TARGET = 20.0
VALIDATE_TARGET = 0.40


def testdata() -> Path:
    """../shared/testdata/stix (or CIRT_HUB_TESTDATA), as the tests find it."""
    given = os.environ.get("CIRT_HUB_TESTDATA")
    root = Path(__file__).resolve().parent.parent
    for candidate in (given, root.parent / "shared" / "testdata" / "stix"):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    raise SystemExit("the shared STIX test data was not found: set CIRT_HUB_TESTDATA")


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, against the ceilings and medallion of this run."""
    ceilings = results.get("ceilings", {})
    sign = ceilings.get("sign", {}).get("ops_per_s")
    validate = ceilings.get("validate", {}).get("ops_per_s")
    out: dict[str, Any] = {}
    if sign and validate:
        out["validate_vs_sign"] = validate / sign
    if sign and (ownership := ceilings.get("ownership", {}).get("ops_per_s")):
        # Per object, the ownership check costs sign / ownership of one Ed25519 signature.
        out["ownership_cost_vs_sign"] = sign / ownership
    for config in results.get("configurations", []):
        phases = {p["phase"]: p for p in config["phases"]}
        sustained = phases["max"]["delivered_per_s"]
        entry = {
            "sustained_per_s": sustained,
            "p99_at_50_ms": phases.get("50%", {}).get("readable_p99_ms"),
        }
        if sign:
            entry["vs_sign"] = sustained / sign
        if validate:
            entry["vs_validate"] = sustained / validate
        out[config["label"]] = entry
    medallion = results.get("medallion")
    if medallion:
        out["medallion"] = (
            medallion["cirt_hub"]["objects_per_s"] / medallion["medallion"]["objects_per_s"]
        )
    return out


def table(results: dict[str, Any]) -> str:
    """Plain-text tables: ceilings, each configuration's phases, medallion, and ratios."""
    lines = [f"cirt-hub benchmark {results['started']} ({results['machine']['cpus']} CPUs)"]
    if install := results.get("hub_install"):
        where = "README's install" if install["readme_install"] else "the benchmark's own venv"
        lines.append(
            f"hub: {where} ({install['python']}); validation: {install['validation_path']}; "
            f"stix2-validator installed: {install['stix2_validator_installed']}"
        )
    lines.append("")
    lines.append("ceilings (one core, the same objects)     ops/s")
    for name, figure in results.get("ceilings", {}).items():
        if isinstance(figure, dict) and "ops_per_s" in figure:
            lines.append(f"  {name:<38} {_num(figure['ops_per_s']):>10}")
    columns = (
        "phase",
        "target/s",
        "accepted/s",
        "delivered/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "POST p99",
        "missing",
        "CPU µs/obj",
        "RSS MB",
    )
    for config in results.get("configurations", []):
        lines.append("")
        idle = config.get("idle", {}).get("percent_of_a_core")
        lines.append(f"{config['label']} (idle: {_num(idle, 2)} % of a core)")
        lines.append("  " + "".join(f"{c:>12}" for c in columns))
        for p in config["phases"]:
            cells = (
                p["phase"],
                _num(p.get("target_per_s")),
                _num(p["accepted_per_s"]),
                _num(p["delivered_per_s"]),
                _num(p["readable_p50_ms"]),
                _num(p["readable_p95_ms"]),
                _num(p["readable_p99_ms"]),
                _num(p["post_p99_ms"]),
                str(p["objects_missing"]),
                _num(p.get("hub_cpu_us_per_object")),
                _num(p.get("hub_rss_peak_mb")),
            )
            lines.append("  " + "".join(f"{c:>12}" for c in cells))
        if replay := config.get("attack_replay"):
            lines.append(
                f"  ATT&CK for ICS replay: {replay['objects']:,} objects readable in "
                f"{replay['readable_seconds']} s ({_num(replay['objects_per_s'])}/s), "
                f"missing {replay['missing']}"
            )
        if back := config.get("read_back"):
            lines.append(
                f"  TAXII read-back: {back['objects']:,} objects in {back['seconds']} s "
                f"({_num(back['objects_per_s'])}/s); equals the streams: {back['matches_stream']}"
            )
    if medallion := results.get("medallion"):
        lines.append("")
        lines.append("add-then-get          objects    add s    get s  first page s   objects/s")
        for name in ("cirt_hub", "medallion"):
            m = medallion[name]
            lines.append(
                f"  {name:<18}{m['objects']:>9,}{m['add_seconds']:>9.2f}{m['get_seconds']:>9.2f}"
                f"{m['first_page_seconds']:>14.2f}{m['objects_per_s']:>12,.0f}"
            )
    lines.append("")
    lines.append("ratios (this run)")
    found = ratios(results)
    if "validate_vs_sign" in found:
        lines.append(
            f"  validation stage / bare Ed25519 sign: {found['validate_vs_sign']:.2f}x "
            f"(target >= {VALIDATE_TARGET:.2f}x)"
        )
    if "ownership_cost_vs_sign" in found:
        lines.append(
            "  ownership check, cost per object / bare Ed25519 sign: "
            f"{found['ownership_cost_vs_sign']:.4f}x"
        )
    for config in results.get("configurations", []):
        entry = found[config["label"]]
        goal, p99_goal = TARGETS[config["bus"]]
        against = "".join(
            f", vs {name} ceiling {entry[key]:.2f}x"
            for name, key in (("sign", "vs_sign"), ("validation", "vs_validate"))
            if key in entry
        )
        lines.append(
            f"  {config['label']}: sustained {_num(entry['sustained_per_s'])} objects/s "
            f"(target {goal:,}), p99 at 50 % {_num(entry['p99_at_50_ms'])} ms (target "
            f"< {p99_goal}){against}"
        )
    if "medallion" in found:
        lines.append(
            f"  add-then-get throughput cirt-hub / medallion: {found['medallion']:.1f}x "
            f"(target >= {MEDALLION_TARGET:.0f}x)"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Delivered objects/s against POST-to-readable latency (p50 and p99), one line per
    configuration through its 25-100 % phases."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 5.5), dpi=110)
    for config in results.get("configurations", []):
        levels = [p for p in config["phases"] if "level" in p and p["readable_p99_ms"]]
        if not levels:
            continue
        x = [p["delivered_per_s"] for p in levels]
        (line,) = axes.plot(
            x, [p["readable_p99_ms"] for p in levels], marker="o", label=f"{config['label']} p99"
        )
        axes.plot(
            x,
            [p["readable_p50_ms"] for p in levels],
            marker=".",
            linestyle="--",
            color=line.get_color(),
            label=f"{config['label']} p50",
        )
        for p, xv in zip(levels, x, strict=True):
            axes.annotate(f"{p['level']}%", (xv, p["readable_p99_ms"]), fontsize=7)
    axes.set_xlabel("delivered objects/s (open-loop at 25, 50, 75, 100 % of the maximum)")
    axes.set_ylabel("POST to readable on the live stream (ms)")
    axes.set_yscale("log")
    axes.set_title(f"cirt-hub throughput vs latency ({results['started']})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
