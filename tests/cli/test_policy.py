"""`cirt-hub policy explain|check|diff` as an analyst runs them on the demo federation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.stixdata import TLP2, incident_report

CLI = [sys.executable, "-m", "hub"]
EXAMPLE = Path(ROOT, "examples", "federation.yaml")


def cirt_hub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_explain_says_per_recipient_allowed_or_denied_and_the_deciding_rule(tmp_path: Path) -> None:
    identity = "identity--ddd9b2a2-73bc-4e51-a85e-9017793831a5"  # CERT-GH in the demo
    report = incident_report(identity, "CERT-GH", TLP2["amber"])
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": report}))
    result = cirt_hub("policy", "explain", str(path), "--sender", "gh-cert")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    incident = lines.index(f"{report[1]['id']} (TLP:AMBER) from gh-cert:")
    block = "\n".join(lines[incident : incident + 9])
    rule = "sharing.recipients.amber: TLP:AMBER: sharing.recipients.amber"
    assert f"ng-cert   allowed  {rule} names member:ng-cert" in block
    named = "[member:ng-cert, member:sn-cert]"
    assert f"ke-cirt   denied   {rule} = {named} does not include ke-cirt" in block
    assert "gh-cert   allowed  own: the sender's own object" in block
    assert "delivered to: member-gh-cert, member-ng-cert, member-sn-cert" in block

    only = cirt_hub("policy", "explain", str(path), "--sender", "gh-cert", "--to", "sn-cert")
    assert only.returncode == 0 and "sn-cert   allowed" in only.stdout
    assert "ng-cert   allowed" not in only.stdout
    unknown = cirt_hub("policy", "explain", str(path), "--sender", "xx-cert")
    assert unknown.returncode == 2 and "'xx-cert' is not a member" in unknown.stderr


def test_check_summarises_each_members_rules_and_refuses_a_bad_file(tmp_path: Path) -> None:
    result = cirt_hub("policy", "check", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "  TLP:AMBER → region:east-africa (ke-cirt, tz-cert)" in result.stdout
    assert "  TLP:RED → account:ke-cirt-read (ke-cirt)" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("region:east-africa]", "region:sahel]"))
    refused = cirt_hub("policy", "check", str(bad))
    assert (
        refused.returncode == 2 and "'sahel' is not a region declared in regions" in refused.stderr
    )


def test_diff_lists_member_pairs_that_gain_or_lose_a_level(tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(
        EXAMPLE.read_text()
        .replace(
            "amber: [member:ng-cert, member:sn-cert]", "amber: [member:ng-cert, member:ke-cirt]"
        )
        .replace("        red: [account:ke-cirt-read]\n", "")
    )
    result = cirt_hub("policy", "diff", str(EXAMPLE), str(new))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "+ ke-cirt gains TLP:AMBER from gh-cert",
        "- sn-cert loses TLP:AMBER from gh-cert",
        "- ke-cirt loses TLP:RED from rw-csirt",
    ]


def test_explain_marks_unmarked_objects_as_the_pipeline_does(tmp_path: Path) -> None:
    report = incident_report(
        "identity--c4801c91-a321-4d5c-9a4f-aee9b0f362a2", "ngCERT", TLP2["red"]
    )
    for obj in report:
        obj.pop("object_marking_refs")
    path = tmp_path / "unmarked.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": report}))
    # ng-cert's default_tlp is amber: explained as the pipeline would route it.
    marked = cirt_hub("policy", "explain", str(path), "--sender", "ng-cert")
    assert marked.returncode == 0, marked.stderr
    assert f"{report[1]['id']} (TLP:AMBER) from ng-cert:" in marked.stdout
    assert "no TLP marking" not in marked.stdout
    # A member without a default: the pipeline refuses such objects, and so does explain.
    refused = cirt_hub("policy", "explain", str(path), "--sender", "sn-cert")
    assert refused.returncode == 0, refused.stderr
    assert f"{report[1]['id']}: refused:" in refused.stdout
    assert "has no TLP marking" in refused.stdout
