"""The federation file: the example holds, and a bad file says where it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.federation import FederationError, load_federation, parse_federation
from tests.conftest import ROOT

EXAMPLE = Path(ROOT, "examples", "federation.yaml")
TEXT = EXAMPLE.read_text()


def line_of(text: str, needle: str, nth: int = 0) -> int:
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


def test_example_federation_is_a_real_region() -> None:
    federation = load_federation(EXAMPLE)
    assert len(federation.members) >= 5
    assert len({m.country for m in federation.members}) >= 4
    assert len(federation.regions) >= 2
    for region in federation.regions:
        assert len(federation.members_of(region.id)) >= 2
    for member in federation.members:
        roles = [a.roles for a in member.accounts]
        assert frozenset({"submit"}) in roles and frozenset({"read"}) in roles
    assert [a.username for a in federation.hub.accounts if a.can("operate")]


def problems(text: str) -> str:
    with pytest.raises(FederationError) as caught:
        parse_federation(text, "fed.yaml")
    return str(caught.value)


def test_an_undeclared_region_is_named_with_its_line() -> None:
    text = TEXT.replace("regions: [east-africa]", "regions: [north-africa]", 1)
    line = line_of(text, "regions: [north-africa]")
    assert (
        f"fed.yaml:{line}: members[3].regions[0]: 'north-africa' is not a region declared"
        in problems(text)
    )


def test_duplicates_are_refused() -> None:
    text = TEXT.replace("username: gh-cert-read", "username: ng-cert-read")
    assert "username 'ng-cert-read' is used twice" in problems(text)
    first = TEXT.split("identity: identity--")[2].split("\n")[0]
    text = TEXT.replace(TEXT.split("identity: identity--")[3].split("\n")[0], first)
    assert "is already the identity of member 'ng-cert'" in problems(text)


def test_schema_errors_name_the_field() -> None:
    text = TEXT.replace("roles: [read]", "roles: [admin]", 1)
    message = problems(text)
    assert f"fed.yaml:{line_of(text, 'roles: [admin]')}: members[0].accounts[1].roles[0]" in message
    assert "'admin' is not one of" in message
    assert "Additional properties are not allowed ('colour'" in problems(TEXT + "colour: red\n")


def test_unknown_sharing_rules_are_not_silently_ignored() -> None:
    text = TEXT.replace("default_tlp: amber", "colour: red", 1)
    assert "members[0].sharing: Additional properties are not allowed ('colour'" in problems(text)
    text = TEXT.replace("default_tlp: amber", "default_tlp: purple", 1)
    line = line_of(text, "default_tlp: purple")
    assert f"fed.yaml:{line}: members[0].sharing.default_tlp: 'purple' is not one of" in problems(
        text
    )


def test_yaml_syntax_errors_give_the_line() -> None:
    text = TEXT.replace("  - id: west-africa", "  - id: [west-africa", 1)
    assert "not valid YAML" in problems(text)
    assert "fed.yaml:" in problems(text)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FederationError, match=r"missing\.yaml: .*cannot read"):
        load_federation(tmp_path / "missing.yaml")


def test_a_member_may_require_signatures_on_what_it_sends() -> None:
    rule = "default_tlp: amber\n      require_signature: true"
    text = TEXT.replace("default_tlp: amber", rule, 1)
    sharing = parse_federation(text, "fed.yaml").members[0].sharing
    assert sharing == {"default_tlp": "amber", "require_signature": True}
    text = TEXT.replace("default_tlp: amber", "require_signature: yes please", 1)

    assert "members[0].sharing.require_signature: 'yes please' is not of type 'boolean'" in (
        problems(text)
    )


def test_sharing_rules_must_name_declared_regions_members_and_reader_accounts() -> None:
    text = TEXT.replace(
        "        amber: [member:ng-cert, member:sn-cert]",
        "        amber: [member:ng-cert, region:sahel]\n        red: [account:gh-cert-submit]",
    )
    found = problems(text)
    line = line_of(text, "region:sahel")
    assert (
        f"fed.yaml:{line}: members[1].sharing.recipients.amber[1]: 'sahel' is not a region" in found
    )
    red = "members[1].sharing.recipients.red[0]: 'gh-cert-submit' is not a member account"
    assert f"{red} with the read role" in found


def test_a_sharing_rule_of_the_wrong_shape_is_refused_by_the_schema() -> None:
    found = problems(
        TEXT.replace("        red: [account:ke-cirt-read]", "        red: [member:ke-cirt]")
    )
    assert "members[4].sharing.recipients.red[0]: 'member:ke-cirt' does not match" in found
    assert "TLP:RED goes to named reader accounts only" in found
    found = problems(TEXT.replace("min_confidence: 30", "min_confidence: 30\n      embargo: 6h"))
    assert "members[2].sharing.embargo: '6h' does not match" in found


def test_intake_limits_are_read_and_bounded_naming_the_field() -> None:
    text = TEXT.replace("max_depth: 32", "max_depth: 64", 1).replace(
        "max_object_bytes: 4194304", "max_object_bytes: 2048", 1
    )
    limits = parse_federation(text, "fed.yaml").hub.limits
    assert (limits.max_depth, limits.max_object_bytes) == (64, 2048)
    # Past 100 levels the JSON encoder and the libraries that walk objects come too near.
    deep = TEXT.replace("max_depth: 32", "max_depth: 101", 1)
    line = line_of(deep, "max_depth: 101")
    assert f"fed.yaml:{line}: hub.limits.max_depth: 101 is greater than the maximum of 100" in (
        problems(deep)
    )
    tiny = TEXT.replace("max_object_bytes: 4194304", "max_object_bytes: 100", 1)
    line = line_of(tiny, "max_object_bytes: 100")
    assert f"fed.yaml:{line}: hub.limits.max_object_bytes: 100 is less than the minimum" in (
        problems(tiny)
    )


def test_pattern_limits_are_read_and_bounded_naming_the_field() -> None:
    text = TEXT.replace("max_pattern_length: 65536", "max_pattern_length: 4096", 1).replace(
        "max_pattern_comparisons: 512", "max_pattern_comparisons: 20", 1
    )
    limits = parse_federation(text, "fed.yaml").hub.limits
    assert (limits.max_pattern_length, limits.max_pattern_comparisons) == (4096, 20)
    # Past ~970 chained comparisons the pattern grammar's parser gives up (recursion).
    many = TEXT.replace("max_pattern_comparisons: 512", "max_pattern_comparisons: 2000", 1)
    line = line_of(many, "max_pattern_comparisons: 2000")
    assert (
        f"fed.yaml:{line}: hub.limits.max_pattern_comparisons: 2000 is greater than the maximum"
        in problems(many)
    )


def test_an_object_limit_that_leaves_no_room_in_a_bus_record_is_refused() -> None:
    # 32 MiB objects would not fit the bus's 32 MiB records once marked and signed.
    text = TEXT.replace("max_object_bytes: 4194304", "max_object_bytes: 33554432", 1)
    line = line_of(text, "max_object_bytes: 33554432")
    assert (
        f"fed.yaml:{line}: hub.limits.max_object_bytes: 33554432 is greater than the maximum"
        in (problems(text))
    )


@pytest.mark.parametrize("reserved", ["anonymous", "hub", "afr-hub"])
def test_a_member_cannot_take_an_id_records_use_for_others(reserved: str) -> None:
    # A member "anonymous" would pass its objects off as unattributed; "hub" or the hub's
    # id, as the hub's own (the submitter records and provenance name).
    text = TEXT.replace("  - id: ng-cert", f"  - id: {reserved}", 1)
    line = line_of(text, f"  - id: {reserved}")
    assert f"fed.yaml:{line}: members[0].id: {reserved!r} cannot be a member id" in problems(text)


def test_points_of_contact_are_read_and_a_bad_one_is_named_by_field_and_line() -> None:
    federation = load_federation(EXAMPLE)
    [desk] = federation.member("ng-cert").contacts
    assert (desk.role, desk.email, desk.phone, desk.languages) == (
        "24/7 duty officer",
        "incident@ngcert.example",
        "+234 9 000 0000",
        ("en",),
    )
    assert desk.key is not None and desk.key.kind == "pgp"
    assert federation.member("sn-cert").contacts[0].key.kind == "smime"  # type: ignore[union-attr]
    for wrong, right, field in (
        ("email: soc@certgh.example", "email: soc at certgh", "members[1].contacts[0].email"),
        ('phone: "+233 30 000 0000"', 'phone: "030 000 0000"', "members[1].contacts[0].phone"),
        ("languages: [en]\n", "languages: [English]\n", "members[1].contacts[0].languages[0]"),
        ("kind: pgp", "kind: gpg", "members[0].contacts[0].key.kind"),
        ('fingerprint: "3A1F', 'fingerprint: "ZZ1F', "members[0].contacts[0].key.fingerprint"),
        ("name: CERT-GH operations", "nom: CERT-GH operations", "members[1].contacts[0]:"),
    ):
        text = TEXT.replace(wrong, right, 1) if field.startswith("members[0]") else None
        if text is None:
            gh = TEXT.index("  - id: gh-cert")
            text = TEXT[:gh] + TEXT[gh:].replace(wrong, right, 1)
        assert text != TEXT, wrong
        message = problems(text)
        line = line_of(text, right.strip().splitlines()[0])
        # A missing field is named on its contact's first line, a wrong one on its own.
        assert f"fed.yaml:{line}: {field}" in message or (
            f"fed.yaml:{line - 1}: {field} 'name' is a required property" in message
        ), message
