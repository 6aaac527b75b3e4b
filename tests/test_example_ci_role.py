"""``examples/onboard_ci_role.py`` against the served emulator (EKS, and each cluster's
Kubernetes API over HTTPS), on a ManualClock the waiter's sleep advances: the access entry
and the policy reach the cluster 20 s and 45 s after they are made, and the job's Kubernetes
calls as the CI role come only after ``access_entry_effective`` saw the role allowed; the
call outside the namespace is refused; a rerun keeps what exists; ``main --emulator`` runs
the whole job; no secret of the CI role shows in the report.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from eks_async import Credentials, WaiterConfig, WaitProgress
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    Delays,
    EKSEmulator,
    EmulatorRequest,
    EmulatorResponse,
    ManualClock,
)
from examples import onboard_ci_role
from examples.onboard_ci_role import Report, Step
from examples.onboard_ci_role import onboard_ci_role as onboard

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/{TEST_ACCESS_KEY_ID}"
CI_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"
CI_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/pipeline-42"
CI = Credentials(
    access_key_id="ASIACIROLEEXAMPLE042",
    secret_access_key="ci/secret+KEYexample0123456789abcdefghij",
    session_token="IQoJb3JpZ2luX2VjCIsessionTOKENexample0123456789",
)
ENTRY_DELAY, POLICY_DELAY = 20.0, 45.0
MAX_DELAY = 10.0
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@attrs.frozen
class KubeCall:
    at: float
    method: str
    path: str
    status: int


@attrs.define
class Served:
    emulator: EKSEmulator
    clock: ManualClock
    kube: list[KubeCall]

    def wait(self) -> WaiterConfig:
        return WaiterConfig(
            min_delay=2.0, max_delay=MAX_DELAY, max_wait=300.0, clock=self.clock.monotonic,
            sleep=self.clock.sleep, rng=random.Random(3).random,
        )

    def ci_client(self, creds: Credentials) -> Any:
        return self.emulator.client(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
        )


@pytest.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    clock = ManualClock()
    delays = attrs.evolve(
        Delays.none(), access_entry_create=ENTRY_DELAY, access_policy_associate=POLICY_DELAY
    )
    emulator = EKSEmulator(seed=8, clock=clock, delays=delays)
    emulator.add_cluster("prod", authentication_mode="API", admin_principal=ADMIN)
    emulator.register_credentials(
        CI.access_key_id, CI.secret_access_key, session_token=CI.session_token, arn=CI_SESSION
    )
    kube: list[KubeCall] = []
    real = emulator.handle_kubernetes

    def recording(request: EmulatorRequest, **kwargs: Any) -> EmulatorResponse:
        answer = real(request, **kwargs)
        kube.append(KubeCall(clock.monotonic(), request.method, request.path, answer.status))
        return answer

    monkeypatch.setattr(emulator, "handle_kubernetes", recording)
    async with emulator.serve():
        yield Served(emulator, clock, kube)


async def _run(served: Served, **kwargs: Any) -> tuple[Report, list[tuple[float, Step]]]:
    steps: list[tuple[float, Step]] = []
    async with served.emulator.client() as eks:
        report = await onboard(
            eks, cluster="prod", role_arn=CI_ROLE, namespace="ci", ci_credentials=CI,
            ci_client=served.ci_client, create_namespace=True, wait=served.wait(),
            on_step=lambda step: steps.append((served.clock.monotonic(), step)), **kwargs,
        )
    return report, steps


async def test_each_step_and_kubernetes_only_after_the_wait(served: Served) -> None:
    polls: list[WaitProgress] = []
    start = served.clock.monotonic()
    report, steps = await _run(served, on_progress=polls.append)
    effective_at = start + POLICY_DELAY  # the entry (20 s) is seen before the policy (45 s)

    assert report.ok, report.summary()
    assert [(s.name, s.detail) for _, s in steps] == [
        ("namespace", "created ci"),
        ("access entry", "created"),
        ("access policy", "AmazonEKSEditPolicy in namespace ci"),
        ("in effect", f"{CI_SESSION} may create serviceaccounts in namespace ci"),
        ("service account", "created ci/ci-deployer"),
        ("listed", "2 in ci: ci-deployer, default"),
        ("outside namespace", "listing in default refused (403)"),
    ]
    # The wait went through the 401 and 403 windows, and ended within one maximum delay.
    states = [p.state for p in polls]
    assert states[0] == "Unauthorized (401)" and "Forbidden (403)" in states
    assert states[-1] == "allowed"
    in_effect_at = next(at for at, s in steps if s.name == "in effect")
    assert effective_at <= in_effect_at <= effective_at + MAX_DELAY

    # The Kubernetes calls as the CI role came after the wait's last review, none before.
    reviews = [c for c in served.kube if c.path in (SSR, SSAR)]
    account_calls = [c for c in served.kube if "/serviceaccounts" in c.path]
    assert reviews[-1].path == SSAR and reviews[-1].status == 201
    last_review = served.kube.index(reviews[-1])
    assert all(served.kube.index(c) > last_review for c in account_calls)
    assert all(c.at >= effective_at for c in account_calls)
    assert [(c.method, c.path, c.status) for c in account_calls] == [
        ("POST", "/api/v1/namespaces/ci/serviceaccounts", 201),
        ("GET", "/api/v1/namespaces/ci/serviceaccounts", 200),
        ("GET", "/api/v1/namespaces/default/serviceaccounts", 403),
    ]
    # Before the policy was seen the reviews were refused: 401 (no entry), then 403.
    early = [c.status for c in reviews if c.at < start + ENTRY_DELAY]
    assert early and set(early) == {401}

    # EKS holds the entry and the namespace-scoped policy.
    async with served.emulator.client() as eks:
        policies = await eks.list_associated_access_policies(
            cluster_name="prod", principal_arn=CI_ROLE
        )
    (policy,) = policies.associated_access_policies or []
    assert policy.policy_arn.endswith("/AmazonEKSEditPolicy")
    assert policy.access_scope is not None and policy.access_scope.namespaces == ["ci"]

    # No secret of the CI role in what the job shows.
    shown = report.summary() + repr(report) + repr(steps)
    for secret in (CI.secret_access_key, CI.session_token, CI.access_key_id):
        assert secret not in shown


async def test_a_rerun_keeps_what_exists(served: Served) -> None:
    first, _ = await _run(served)
    assert first.ok
    second, steps = await _run(served)
    assert second.ok
    details = {s.name: s.detail for _, s in steps}
    assert details["namespace"] == "ci already present"
    assert details["access entry"] == "already present"
    assert details["service account"] == "ci/ci-deployer already present"
    # The entry and policy were in effect already: the second wait needed one poll.
    in_effect = [c for c in served.kube if c.path == SSAR]
    assert in_effect[-1].status == 201


async def test_a_failed_step_stops_the_job(served: Served) -> None:
    report, steps = await _run(served, policy="AmazonEKSNoSuchPolicy")
    assert not report.ok
    assert [s.name for _, s in steps] == ["namespace", "access entry", "access policy"]
    failed = report.step("access policy")
    assert failed is not None and not failed.ok
    assert "InvalidParameterException" in failed.detail
    assert "FAILED access policy" in report.summary()
    # Nothing was tried as the CI role.
    assert not [c for c in served.kube if "/serviceaccounts" in c.path]


def test_main_runs_the_job_against_the_embedded_emulator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert onboard_ci_role.main(["--emulator", "--namespace", "builds"]) == 0
    out = capsys.readouterr().out
    assert "in effect: arn:aws:sts::123456789012:assumed-role/ci-deployer/" in out
    assert "ok  service account: created builds/ci-deployer" in out
    assert "ok  outside namespace: listing in default refused (403)" in out
    assert out.rstrip().endswith("done")


def test_main_needs_a_cluster_and_a_role_without_the_emulator() -> None:
    with pytest.raises(SystemExit) as exit_info:
        onboard_ci_role.main(["--cluster", "prod"])
    assert exit_info.value.code == 2
