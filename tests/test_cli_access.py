"""``eks-async access-entry ...`` and ``eks-async pod-identity wait`` against the emulator's
HTTP server (EKS over HTTP, each cluster's Kubernetes API over HTTPS with the test CA).

The emulator runs on a ManualClock and the CLI's waiters sleep on that same clock
(``_cli_common.waiter_clock``), so every ``--wait`` really waits through the propagation
window in EKS time, and no assertion depends on the machine's speed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from eks_async import _cli_common
from eks_async._cli import main
from eks_async._waiters.access import ACCESS_DEFAULTS
from eks_async._waiters.pod_identity import POD_IDENTITY_DEFAULTS
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    ManualClock,
    run_emulator_server,
)

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/{TEST_ACCESS_KEY_ID}"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"
KEY, SECRET = "AKIDDEPLOYER", "deployer-secret"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/payments-api"
ENTRY_DELAY, POLICY_DELAY = 12.0, 25.0
CREATE_DELAY, AUTH_DELAY = 2.0, 3.0


@attrs.define
class Served:
    emulator: EKSEmulator
    clock: ManualClock
    base: list[str]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    clock = ManualClock()
    delays = attrs.evolve(
        Delays.none(),
        access_entry_create=ENTRY_DELAY,
        access_policy_associate=POLICY_DELAY,
        association_create=CREATE_DELAY,
        pod_identity_auth=AUTH_DELAY,
    )
    emulator = EKSEmulator(seed=7, clock=clock, delays=delays)
    emulator.add_cluster("prod", authentication_mode="API", admin_principal=ADMIN)
    emulator.register_credentials(KEY, SECRET, arn=SESSION_ARN)
    monkeypatch.setattr(_cli_common, "waiter_clock", clock)
    _as(monkeypatch, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    with run_emulator_server(emulator) as srv:
        yield Served(emulator, clock, ["--region", "us-west-2", "--endpoint-url", srv.url])


def _as(monkeypatch: pytest.MonkeyPatch, key: str, secret: str) -> None:
    """Run the next commands with these credentials (the caller the waits check)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        data = json.loads(out) if out.strip() else None
    except ValueError:
        data = out
    return code, data, err


def _states(err: str, waiter: str) -> list[str]:
    return re.findall(rf"^{waiter}: (.+?) \(poll", err, flags=re.MULTILINE)


def test_every_access_entry_command_with_waits_through_the_propagation_windows(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, clock = served.base, served.clock
    ae = [*base, "access-entry"]
    target = ["--cluster-name", "prod", "--principal-arn", DEPLOYER]
    _as(monkeypatch, KEY, SECRET)  # a CI role setting up its own access: the caller is it

    start = clock.monotonic()
    code, out, err = run(capsys, *ae, "create", *target, "--kubernetes-group", "deployers",
                         "--tag", "team=ci", "--wait")
    assert code == 0, err
    assert out["accessEntry"]["principalArn"] == DEPLOYER
    assert out["accessEntry"]["kubernetesGroups"] == ["deployers"]
    assert out["accessEntry"]["tags"] == {"team": "ci"}
    states = _states(err, "access_entry_effective")
    assert states[0] == "Unauthorized (401)" and states[-1] == "authenticated"
    # It waited through the window on the emulator's clock, and no longer than a poll more.
    assert ENTRY_DELAY <= clock.monotonic() - start <= ENTRY_DELAY + ACCESS_DEFAULTS.max_delay

    code, out, err = run(capsys, *ae, "describe", *target)
    assert code == 0, err
    assert out["accessEntry"]["username"] == SESSION_ARN.replace("/ci-run", "/{{SessionName}}")
    code, out, _ = run(capsys, *ae, "list", "--cluster-name", "prod")
    assert sorted(out["accessEntries"]) == sorted([ADMIN, DEPLOYER])
    code, out, _ = run(capsys, *base, "--output", "table", "access-entry", "list",
                       "--cluster-name", "prod")
    assert code == 0 and DEPLOYER in out

    code, out, err = run(capsys, *ae, "update", *target, "--kubernetes-group", "deployers",
                         "--kubernetes-group", "auditors", "--wait")
    assert code == 0, err
    assert out["accessEntry"]["kubernetesGroups"] == ["deployers", "auditors"]
    assert _states(err, "access_entry_effective")[-1] == "authenticated"

    start = clock.monotonic()
    code, out, err = run(capsys, *ae, "associate-policy", *target, "--policy-arn", VIEW,
                         "--access-scope-type", "namespace", "--namespace", "ci", "--wait")
    assert code == 0, err
    assert out["associatedAccessPolicy"]["accessScope"] == {"type": "namespace",
                                                            "namespaces": ["ci"]}
    states = _states(err, "access_entry_effective")
    # The view policy lets its holder list pods in ci: 403 until the authorizer sees it.
    assert states[0] == "Forbidden (403)" and states[-1] == "allowed"
    assert POLICY_DELAY <= clock.monotonic() - start <= POLICY_DELAY + ACCESS_DEFAULTS.max_delay

    code, out, _ = run(capsys, *ae, "list-policies", *target)
    assert [p["policyArn"] for p in out["associatedAccessPolicies"]] == [VIEW]
    assert out["principalArn"] == DEPLOYER and out["clusterName"] == "prod"
    code, out, _ = run(capsys, *ae, "list-access-policies")
    assert VIEW in [p["arn"] for p in out["accessPolicies"]]
    code, out, err = run(capsys, *ae, "wait", *target, "--can-i", "get", "pods", "ci")
    assert code == 0, err
    assert out["allowed"] is True and "deployers" in out["groups"]

    code, out, err = run(capsys, *ae, "disassociate-policy", *target, "--policy-arn", VIEW,
                         "--wait")
    assert code == 0, err
    assert out == {}
    assert _states(err, "access_policy_disassociated")[-1] == "disassociated"
    code, out, _ = run(capsys, *ae, "list-policies", *target)
    assert out["associatedAccessPolicies"] == []

    code, out, err = run(capsys, *ae, "delete", *target, "--wait")
    assert code == 0, err
    assert _states(err, "access_entry_deleted")[-1] == "deleted"
    code, _, err = run(capsys, *ae, "describe", *target)
    assert code == 1 and "ResourceNotFoundException" in err


def test_a_wait_resumed_by_principal_after_a_create_without_wait(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ["--cluster-name", "prod", "--principal-arn", DEPLOYER]
    code, _, err = run(capsys, *served.base, "access-entry", "create", *target,
                       "--kubernetes-group", "deployers")
    assert code == 0, err
    created_at = served.clock.monotonic()
    _as(monkeypatch, KEY, SECRET)  # later, as the principal itself
    code, out, err = run(capsys, "access-entry", "wait", *target, *served.base)
    assert code == 0, err
    assert out == {"clusterName": "prod", "principalArn": DEPLOYER, "username": SESSION_ARN,
                   "groups": out["groups"]}
    assert "deployers" in out["groups"]
    assert _states(err, "access_entry_effective")[0] == "Unauthorized (401)"
    assert served.clock.monotonic() - created_at >= ENTRY_DELAY


def test_a_timed_out_wait_prints_the_command_that_resumes_it(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ["--cluster-name", "prod", "--principal-arn", DEPLOYER]
    _as(monkeypatch, KEY, SECRET)
    code, out, err = run(capsys, *served.base, "access-entry", "create", *target, "--wait",
                         "--can-i", "create", "deployments.apps", "ci", "--max-wait", "20")
    assert code == 1
    # The entry exists: its output is printed all the same, and how to go on waiting.
    assert out["accessEntry"]["principalArn"] == DEPLOYER
    assert "WaiterTimeoutError" in err or "access_entry_effective" in err
    line = next(x for x in err.splitlines() if "access-entry wait" in x)
    assert line.strip().endswith(
        f"access-entry wait --cluster-name prod --principal-arn {DEPLOYER} "
        "--can-i create deployments.apps ci --max-wait 20"
    )
    assert f"--endpoint-url {served.base[3]}" in line and "--region us-west-2" in line


def test_access_entry_flag_errors_exit_2(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--cluster-name", "prod", "--principal-arn", DEPLOYER]
    ae = [*served.base, "access-entry"]
    with pytest.raises(SystemExit) as info:
        main([*ae, "create", *target, "--wait", "--can-i", "list"])
    assert info.value.code == 2 and "VERB RESOURCE [NAMESPACE]" in capsys.readouterr().err
    code, _, err = run(capsys, *ae, "create", *target, "--can-i", "list", "pods")
    assert code == 2 and "--can-i: only with --wait" in err
    code, _, err = run(capsys, *ae, "associate-policy", *target, "--policy-arn", VIEW,
                       "--access-scope-type", "cluster", "--namespace", "ci")
    assert code == 2 and "--namespace" in err
    with pytest.raises(SystemExit) as info:
        main([*ae, "associate-policy", *target, "--policy-arn", VIEW])
    assert info.value.code == 2 and "--access-scope-type" in capsys.readouterr().err
    # Nothing was created by the refused commands.
    code, out, _ = run(capsys, *ae, "list", "--cluster-name", "prod")
    assert out["accessEntries"] == [ADMIN]


def test_pod_identity_wait_resumed_by_id_then_effective(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    base, clock = served.base, served.clock
    code, out, err = run(capsys, *base, "pod-identity", "create", "--cluster-name", "prod",
                         "--namespace", "default", "--service-account", "default",
                         "--role-arn", ROLE)
    assert code == 0, err
    assoc_id = out["association"]["associationId"]
    start = clock.monotonic()
    ids = ["--cluster-name", "prod", "--association-id", assoc_id]

    code, out, err = run(capsys, *base, "pod-identity", "wait", *ids)
    assert code == 0, err
    assert out["association"]["associationId"] == assoc_id
    states = _states(err, "pod_identity_association_visible")
    assert states[0] == "not found" and states[-1] == "visible"
    assert clock.monotonic() - start >= CREATE_DELAY

    code, out, err = run(capsys, *base, "pod-identity", "wait", *ids, "--effective")
    assert code == 0, err
    assert out == {"associationId": assoc_id, "namespace": "default",
                   "serviceAccount": "default", "roleArn": ROLE, "effective": True}
    assert _states(err, "pod_identity_association_effective")[-1] == "effective"
    effective_at = start + CREATE_DELAY + AUTH_DELAY
    assert effective_at <= clock.monotonic() <= effective_at + 2 * POD_IDENTITY_DEFAULTS.max_delay

    code, _, err = run(capsys, *base, "pod-identity", "delete", *ids)
    assert code == 0, err
    code, out, err = run(capsys, *base, "pod-identity", "wait", *ids, "--deleted")
    assert code == 0, err
    assert out == {"associationId": assoc_id, "deleted": True}


def test_pod_identity_create_wait_effective(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    start = served.clock.monotonic()
    code, out, err = run(capsys, *served.base, "pod-identity", "create", "--cluster-name",
                         "prod", "--namespace", "default", "--service-account", "default",
                         "--role-arn", ROLE, "--effective")  # --effective implies --wait
    assert code == 0, err
    assert out["association"]["roleArn"] == ROLE
    assert _states(err, "pod_identity_association_visible")[-1] == "visible"
    states = _states(err, "pod_identity_association_effective")
    assert states[0] == "ResourceNotFoundException" and states[-1] == "effective"
    assert served.clock.monotonic() - start >= CREATE_DELAY + AUTH_DELAY


def test_pod_identity_update_wait_effective_and_idp_wait(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    base = served.base
    code, out, err = run(capsys, *base, "pod-identity", "create", "--cluster-name", "prod",
                         "--namespace", "default", "--service-account", "default",
                         "--role-arn", ROLE, "--effective")
    assert code == 0, err
    ids = ["--cluster-name", "prod", "--association-id", out["association"]["associationId"]]
    code, out, err = run(capsys, *base, "pod-identity", "update", *ids, "--role-arn",
                         ROLE + "-v2", "--wait", "--effective")
    assert code == 0, err
    assert out["association"]["roleArn"] == ROLE + "-v2"
    assert _states(err, "pod_identity_association_updated")[-1] == "updated"
    states = _states(err, "pod_identity_association_effective")
    # EKS Auth hands out the old role until it sees the update.
    assert states[0] == "role payments-api answered, not payments-api-v2"
    assert states[-1] == "effective"

    idp = ["--cluster-name", "prod", "--name", "okta"]
    code, out, err = run(capsys, *base, "idp", "associate", *idp, "--issuer-url",
                         "https://example.okta.com", "--client-id", "k8s")
    assert code == 0, err
    code, out, err = run(capsys, *base, "idp", "wait", *idp)
    assert code == 0, err
    assert out["identityProviderConfig"]["oidc"]["status"] == "ACTIVE"
    code, out, err = run(capsys, *base, "idp", "disassociate", *idp)
    assert code == 0, err
    code, out, err = run(capsys, *base, "idp", "wait", *idp, "--deleted")
    assert code == 0, err
    assert out == {"name": "okta", "deleted": True}
    assert _states(err, "identity_provider_config_deleted")[-1] == "ResourceNotFoundException"
