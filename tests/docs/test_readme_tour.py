"""The README's five-minute tour, run as a newcomer runs it, against a real hub: its shell
blocks list the collections, find the inbox by id and post the report; its Python block
reads every page of every collection the reader may read with taxii2-client. Only the
address and the data dir are changed, to the test hub's. The getting-started page holds
the same tour."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.stix.predefined import predefined
from tests.conftest import ROOT
from tests.hubs import read_all, running_hub

INDICATOR = "indicator--3f0c6c5e-4c7a-4f9e-9a57-1d2b3c4d5e6f"
CLI = str(Path(sys.executable).parent / "cirt-hub")


def tour_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the tour section."""
    start = markdown.index("## A five-minute tour")
    end = markdown.index("\n## ", start + 1)
    return re.findall(r"```(sh|python)\n(.*?)```", markdown[start:end], re.S)


def test_the_getting_started_page_has_the_readmes_tour() -> None:
    readme = tour_blocks((ROOT / "README.md").read_text())
    page = tour_blocks((ROOT / "docs" / "getting-started.md").read_text())
    assert readme and page == readme


def _for(code: str, base_url: str, data_dir: Path) -> str:
    """The block as it would run against the test hub: its address, its data dir."""
    code = code.replace("http://127.0.0.1:8080", base_url).replace(".venv/bin/cirt-hub", CLI)
    code = code.replace("demo accounts --json", f"demo accounts --data-dir {data_dir} --json")
    python_args = '"demo", "accounts", "--json"]'
    return code.replace(python_args, f'"demo", "accounts", "--json", "--data-dir", "{data_dir}"]')


def _run(command: list[str]) -> str:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_readme_tour_posts_and_reads_back_every_page(
    tmp_path: Path, demo_secrets: Path
) -> None:
    blocks = tour_blocks((ROOT / "README.md").read_text())
    shell = "\n".join(code for language, code in blocks if language == "sh")
    (python,) = [code for language, code in blocks if language == "python"]
    data = tmp_path / "data"
    async with running_hub("embedded", data, demo_secrets) as hub:
        script = "set -euo pipefail\n" + _for(shell, hub.base_url, data)
        out = await asyncio.to_thread(_run, ["bash", "-c", script])
        inbox = hub.collection_url("inbox").rstrip("/").rsplit("/", 1)[-1]
        assert f"{inbox} inbox" in out, "the collection list names the inbox by id"
        assert '"total_count":1' in out and '"status":"pending"' in out, out
        for _ in range(100):
            if any(
                o["id"] == INDICATOR
                for o in await read_all(hub, "region-west-africa", "gh-cert-read")
            ):
                break
            await asyncio.sleep(0.1)
        read = await asyncio.to_thread(
            _run, [sys.executable, "-c", _for(python, hub.base_url, data)]
        )
    lines = {line.split()[0]: line for line in read.splitlines()}
    assert set(lines) == {"public", "alerts", "region-west-africa", "member-gh-cert"}, read
    assert INDICATOR in lines["region-west-africa"]
    assert f" {len(predefined())} objects " in lines["public"]  # the hub's own definitions


@pytest.mark.timeout(300)
async def test_the_tours_read_back_follows_more_and_next(
    tmp_path: Path, demo_secrets: Path
) -> None:
    """More objects than one page holds: the tour's snippet still counts them all."""
    (python,) = [c for lang, c in tour_blocks((ROOT / "README.md").read_text()) if lang == "python"]
    data = tmp_path / "data"
    async with running_hub("embedded", data, demo_secrets, page_limit=7) as hub:
        read = await asyncio.to_thread(
            _run, [sys.executable, "-c", _for(python, hub.base_url, data)]
        )
    lines = {line.split()[0]: line for line in read.splitlines()}
    assert len(predefined()) > 7, "more than one page of the hub's own definitions"
    assert f" {len(predefined())} objects " in lines["public"], read
