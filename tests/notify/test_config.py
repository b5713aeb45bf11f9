"""A `notify` block that cannot work stops `cirt-hub serve` (exit code 2) naming the field:
the SMTP password is read from a file or the environment, never the file itself, and a
login never crosses the network in clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

CLI = [sys.executable, "-m", "hub"]
SMTP = {"host": "smtp.hub.example", "from": "cirt-hub@hub.example", "username": "cirt-hub"}


def serve(tmp_path: Path, notify: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    federation = yaml.safe_load((ROOT / "examples" / "federation.yaml").read_text())
    federation["notify"] = notify
    config = tmp_path / "federation.yaml"
    config.write_text(yaml.safe_dump(federation))
    environment = {**os.environ, "CIRT_HUB_KEY_PASSPHRASE": "test-only passphrase"}
    environment.pop("CIRT_HUB_SMTP_PASSWORD", None)
    return subprocess.run(
        [*CLI, "serve", "--config", str(config), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )


@pytest.mark.parametrize(
    ("notify", "named"),
    [
        (
            {"smtp": {**SMTP, "password_file": "/nonexistent/smtp-password"}},
            "notify.smtp.password_file: cannot read /nonexistent/smtp-password",
        ),
        (
            {"smtp": {**SMTP, "password_env": "CIRT_HUB_SMTP_PASSWORD"}},
            "notify.smtp.password_env: CIRT_HUB_SMTP_PASSWORD is not set",
        ),
        ({"smtp": SMTP}, "notify.smtp.password_file or password_env:"),
        (
            {"smtp": {**SMTP, "password_env": "HOME", "starttls": False}},
            "notify.smtp.starttls: the password would cross the network in clear",
        ),
        ({"smtp": {**SMTP, "password": "hunter2"}}, "notify.smtp:"),
        ({"smtp": {**SMTP, "port": "submission"}}, "notify.smtp.port:"),
        ({"webhook_prefixes": ["ftp://x/"]}, "notify.webhook_prefixes[0]:"),
        ({"digest_interval": "hourly"}, "notify.digest_interval:"),
    ],
)
def test_a_notify_block_that_cannot_work_stops_startup_naming_the_field(
    tmp_path: Path, notify: dict[str, Any], named: str
) -> None:
    result = serve(tmp_path, notify)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr, result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
