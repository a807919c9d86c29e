"""Tokens (hashed, scoped, expiring, revocable), the policy table and the request limits, as units."""

from __future__ import annotations

import datetime
import math
import time
from pathlib import Path

import pytest
import yaml

from slicebroker.core.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated
from slicebroker.core.reasons import Reason
from slicebroker.runtime.auth import Authenticator, append_entries, hash_secret, issue_token, main, verify_secret
from slicebroker.runtime.context import ANONYMOUS_ADMIN, Principal
from slicebroker.runtime.limits import Bounds, RateLimiter, check_request
from slicebroker.runtime.policy import (
    DEFAULT_RULE,
    POLICY,
    authorize,
    require_tenant_access,
    scope_institution,
    scope_project,
)
from slicebroker.v1 import (
    accounting_pb2,
    audit_pb2,
    broker_pb2,
    inventory_pb2,
    quota_pb2,
)

ADMIN = Principal("ops", "facility-admin")
SVC = Principal("broker", "service")
SNU_ADMIN = Principal("snu-admin", "institution-admin", "snu")
SNU_LLM = Principal("alice", "project-member", "snu", ("snu-llm",))
KAIST = Principal("bob", "institution-admin", "kaist")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_secrets_are_stored_salted_and_verified_in_constant_time() -> None:
    a, b = hash_secret("s3cret"), hash_secret("s3cret")
    assert a != b and "s3cret" not in a  # a fresh salt each time
    assert verify_secret("s3cret", a) and not verify_secret("s3cret!", a)
    assert not verify_secret("x", "md5$00$00") and not verify_secret("x", "sha256$zz$00")


def test_hashed_plaintext_and_certificate_entries(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    issued = issue_token("alice", "project-member", "snu", ["snu-llm"])
    append_entries(path, {issued.token_id: issued.entry, "plain": {"name": "ops", "role": "admin"}})
    append_entries(path, {"cert:operator": {"name": "operator", "role": "service"}})
    assert issued.token not in path.read_text()
    auth = Authenticator(path)
    assert auth.authenticate(bearer(issued.token)) == Principal("alice", "project-member", "snu", ("snu-llm",))
    # The legacy role name loads as its new one.
    assert auth.authenticate(bearer("plain")) == Principal("ops", "facility-admin")
    assert auth.authenticate({}, cert_names=["operator"]) == Principal("operator", "service")
    for metadata, cause in (
        ({}, "missing"),
        (bearer("nope"), "unknown"),
        (bearer(issued.token + "x"), "unknown"),
        # A hashed entry's key is its public id, never a token.
        (bearer(issued.token_id), "unknown"),
        (bearer("cert:operator"), "unknown"),
    ):
        with pytest.raises(Unauthenticated) as info:
            auth.authenticate(metadata)
        assert info.value.metadata["cause"] == cause


def test_expired_and_revoked_tokens_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    issued = issue_token("alice", "institution-admin", "snu", expires=soon)
    append_entries(path, {issued.token_id: issued.entry})
    auth = Authenticator(path)
    assert auth.authenticate(bearer(issued.token)).institution == "snu"
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(bearer(issued.token), now_s=soon.timestamp() + 1)
    # Revocation is picked up from the file without a restart.
    main(["revoke", str(path), issued.token_id])
    auth._checked = 0.0  # skip the once-a-second throttle
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(bearer(issued.token))


def test_bad_token_files_are_refused_loudly(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    for bad in ({"t": {"role": "root"}}, {"t": {"role": "project-member", "institution": "snu"}}, {"t": "x"}):
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ValueError):
            Authenticator(path)


def test_issue_cli_prints_the_token_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens.yaml"
    main(["issue", str(path), "--name", "ci", "--role", "service", "--days", "1"])
    token = capsys.readouterr().out.strip()
    assert token.startswith("sb_") and token not in path.read_text()
    assert Authenticator(path).authenticate(bearer(token)).role == "service"


def _methods(*modules: object) -> set[str]:
    names: set[str] = set()
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():  # type: ignore[attr-defined]
            names |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return names


def test_every_rpc_of_inventory_quota_accounting_and_audit_has_a_rule() -> None:
    missing = _methods(inventory_pb2, quota_pb2, accounting_pb2, audit_pb2) - set(POLICY)
    assert not missing, f"add these to slicebroker.runtime.policy: {sorted(missing)}"
    # The broker's methods of today; new broker RPCs fall back to operators only until listed.
    broker = {f"/slicebroker.v1.BrokerService/{m}" for m in ("RequestGrant", "GetGrant", "ListGrants")}
    assert broker <= set(POLICY)
    assert DEFAULT_RULE.roles == frozenset({"facility-admin", "service"})


ADMIN_ONLY = [
    "/slicebroker.v1.InventoryService/LoadFacility",
    "/slicebroker.v1.QuotaService/UpsertTenant",
    "/slicebroker.v1.QuotaService/SetQuota",
    "/slicebroker.v1.AccountingService/PublishPriceBook",
    "/slicebroker.v1.AccountingService/ClosePeriod",
    "/slicebroker.v1.AuditService/ListAudit",
]
SERVICE_ONLY = [
    "/slicebroker.v1.InventoryService/Claim",
    "/slicebroker.v1.InventoryService/Release",
    "/slicebroker.v1.QuotaService/Reserve",
    "/slicebroker.v1.QuotaService/Commit",
    "/slicebroker.v1.QuotaService/Cancel",
]


@pytest.mark.parametrize("method", ADMIN_ONLY)
def test_admin_only_methods(method: str) -> None:
    assert authorize(ADMIN, method).mutating or method.endswith("ListAudit")
    for who in (SNU_ADMIN, SNU_LLM):
        with pytest.raises(PermissionDenied, match="not allowed for role"):
            authorize(who, method)


@pytest.mark.parametrize("method", SERVICE_ONLY)
def test_service_only_methods(method: str) -> None:
    authorize(SVC, method)
    for who in (ADMIN, SNU_ADMIN, SNU_LLM):
        with pytest.raises(PermissionDenied):
            authorize(who, method)


def test_local_development_caller_passes_everything() -> None:
    for method in [*ADMIN_ONLY, *SERVICE_ONLY, "/x.Y/Unlisted"]:
        authorize(ANONYMOUS_ADMIN, method)
    with pytest.raises(PermissionDenied):
        authorize(SNU_ADMIN, "/x.Y/Unlisted")


@pytest.mark.parametrize(
    ("who", "institution", "project", "allowed"),
    [
        (ADMIN, "kaist", "kaist-vision", True),
        (SVC, "kaist", "kaist-vision", True),
        (SNU_ADMIN, "snu", "snu-bio", True),
        (SNU_ADMIN, "kaist", "kaist-vision", False),
        (SNU_ADMIN, "", "", False),
        (SNU_LLM, "snu", "snu-llm", True),
        (SNU_LLM, "snu", "snu-bio", False),
        (SNU_LLM, "kaist", "snu-llm", False),
        (Principal("x", "institution-admin", ""), "", "", False),
    ],
)
def test_require_tenant_access(who: Principal, institution: str, project: str, allowed: bool) -> None:
    if allowed:
        require_tenant_access(who, institution, project)
    else:
        with pytest.raises(PermissionDenied) as info:
            require_tenant_access(who, institution, project)
        assert info.value.reason is Reason.PERMISSION_DENIED and info.value.message


def test_scoping_of_reads() -> None:
    assert scope_institution(ADMIN, "") == "" and scope_institution(ADMIN, "kaist") == "kaist"
    assert scope_institution(SNU_ADMIN, "") == "snu" and scope_institution(SNU_ADMIN, "snu") == "snu"
    with pytest.raises(PermissionDenied):
        scope_institution(SNU_ADMIN, "kaist")
    assert scope_project(SNU_ADMIN, "") == "" and scope_project(SNU_LLM, "") == "snu-llm"
    with pytest.raises(PermissionDenied):
        scope_project(SNU_LLM, "snu-bio")
    with pytest.raises(PermissionDenied, match="several"):
        scope_project(Principal("c", "project-member", "snu", ("a", "b")), "")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (quota_pb2.GetProjectRequest(id="x" * 5000), "id"),
        (broker_pb2.ListGrantsRequest(page_size=-1), "page_size"),
        (broker_pb2.ListGrantsRequest(page_size=5000), "page_size"),
        (broker_pb2.ListGrantsRequest(state=99), "state"),
        (quota_pb2.CommitRequest(grant_ids=["g"] * 10_001), "grant_ids"),
        (quota_pb2.CommitRequest(grant_ids=["ok", "y" * 5000]), "grant_ids[1]"),
        (inventory_pb2.ClaimRequest(claims=[{"nodes": [{"node_id": "n" * 5000}]}]), "claims[0].nodes[0].node_id"),
        (quota_pb2.UpsertProjectRequest(device_caps={"k" * 5000: 1}), "device_caps[key]"),
        (
            accounting_pb2.PublishPriceBookRequest(book={"institution_tiers": {"snu": "t" * 5000}}),
            "book.institution_tiers[snu]",
        ),
        (accounting_pb2.UsageRow(device_seconds=math.nan), "device_seconds"),
        (accounting_pb2.UsageRow(device_seconds=-math.inf), "device_seconds"),
    ],
)
def test_request_bounds_name_the_field(request_: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_request(request_, Bounds())  # type: ignore[arg-type]
    assert info.value.field == field


def test_request_bounds_pass_ordinary_requests_and_documents() -> None:
    check_request(broker_pb2.ListGrantsRequest(page_size=1000, project="snu-llm", state=2), Bounds())
    check_request(inventory_pb2.LoadFacilityRequest(yaml="x" * 100_000), Bounds(), max_string=1 << 24)


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    now = time.monotonic()
    for _ in range(5):
        limiter.take("a", now)
    with pytest.raises(ResourceExhausted) as info:
        limiter.take("a", now)
    assert info.value.reason is Reason.RATE_LIMITED and info.value.metadata["retry_after_ms"] == "100"
    limiter.take("b", now)  # another principal is not affected
    limiter.take("a", now + 0.101)  # one token back after 1/rate seconds
    RateLimiter(rate=0, burst=0).take("a")  # disabled


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (accounting_pb2.QueryLedgerRequest(start={"seconds": -(2**63)}), "start"),
        (accounting_pb2.QueryLedgerRequest(end={"seconds": 1, "nanos": -1}), "end"),
        (broker_pb2.RequestGrantRequest(lease={"seconds": 10**15}), "lease"),
        (broker_pb2.RequestGrantRequest(lease={"seconds": 1, "nanos": -5}), "lease"),
    ],
)
def test_times_and_durations_out_of_range_name_the_field(request_: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_request(request_, Bounds())  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_mesh_launcher_writes_hashed_tokens_and_keeps_them_across_restarts(tmp_path: Path) -> None:
    from slicebroker.mesh.launcher import Mesh

    first = Mesh(run_dir=tmp_path)
    first._write_tokens()
    text = (tmp_path / "tokens.yaml").read_text()
    for token in (first.admin_token, first.service_token, first.operator_token):
        assert token.startswith("sb_") and token not in text
    auth = Authenticator(tmp_path / "tokens.yaml")
    assert auth.authenticate(bearer(first.admin_token)).role == "facility-admin"
    assert auth.authenticate(bearer(first.service_token)) == Principal("broker", "service")
    assert auth.authenticate(bearer(first.operator_token)) == Principal("operator", "service")
    again = Mesh(run_dir=tmp_path)
    again._write_tokens()
    assert (again.admin_token, again.service_token) == (first.admin_token, first.service_token)
    tenant = again.issue_token("snu-admin", "institution-admin", "snu")
    auth._checked = 0.0
    assert auth.authenticate(bearer(tenant)).institution == "snu"
    again.revoke_token(tenant)
    auth._checked = 0.0
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(bearer(tenant))
