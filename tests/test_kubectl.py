"""The real ``kubectl`` against the emulator, through a kubeconfig ``eks-async kubeconfig`` wrote.

Each cluster's endpoint is ``https://127.0.0.1:PORT`` with no path, as EKS's, so kubectl's
discovery, tables, protobuf bodies (``create``, ``auth whoami``, ``auth can-i`` send
``application/vnd.kubernetes.protobuf``) and errors all go as they would against EKS. The
same again with the exec plugin ``aws eks get-token`` (kubeconfig by ``aws eks
update-kubeconfig``). Skipped, with the reason, where kubectl (or aws) is not on PATH.
Each kubectl call has a 60 s timeout as a hang guard only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from eks_async import AccessScope, AccessScopeType
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCOUNT_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    run_emulator_server,
)

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")

REGION = "us-west-2"
ROOT = Path(__file__).resolve().parents[1]
CALLER_ARN = f"arn:aws:iam::{TEST_ACCOUNT_ID}:user/{TEST_ACCESS_KEY_ID}"
DEFAULT_NAMESPACES = ["default", "kube-node-lease", "kube-public", "kube-system"]


class Kubectl:
    """kubectl with one kubeconfig, its own discovery cache and the test credentials."""

    def __init__(self, emulator: EKSEmulator, eks_url: str, kubeconfig: Path, home: Path) -> None:
        self.emulator = emulator
        self.eks_url = eks_url
        self.kubeconfig = kubeconfig
        self.home = home
        self.env = {
            **os.environ,
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_EKS": eks_url,
            # The exec plugin `python -m eks_async` runs this checkout's eks_async.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        self.env.pop("KUBECONFIG", None)
        self.env.pop("KUBERNETES_EXEC_INFO", None)

    def __call__(
        self, *args: str, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig or self.kubeconfig),
                "--cache-dir",
                str(self.home / "kube-cache"),
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


def _run(argv: Sequence[str], env: dict[str, str]) -> None:
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def _served() -> Iterator[tuple[EKSEmulator, str]]:
    emulator = EKSEmulator(seed=13)
    emulator.add_cluster("prod")
    emulator.add_cluster("staging")
    with run_emulator_server(emulator) as server:
        yield emulator, server.url


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """kubectl with a kubeconfig by ``eks-async kubeconfig`` (exec plugin ``eks-async token``)."""
    home = tmp_path_factory.mktemp("kubectl")
    with _served() as (emulator, url):
        runner = Kubectl(emulator, url, home / "config", home)
        _run(
            [
                sys.executable,
                "-m",
                "eks_async",
                "--region",
                REGION,
                "--endpoint-url",
                url,
                "kubeconfig",
                "--cluster-name",
                "prod",
                "--kubeconfig",
                str(runner.kubeconfig),
                "--exec-command",
                f"{sys.executable} -m eks_async",
            ],
            runner.env,
        )
        yield runner


# --------------------------------------------------------------------------- the kubeconfig


def test_the_kubeconfig_points_at_the_clusters_own_path_free_endpoint(kubectl: Kubectl) -> None:
    config = yaml.safe_load(kubectl.kubeconfig.read_text(encoding="utf-8"))
    server = config["clusters"][0]["cluster"]["server"]
    assert server == kubectl.emulator.kubernetes_endpoints()["prod"]
    assert server.startswith("https://127.0.0.1:") and server.count("/") == 2
    assert kubectl.emulator.kubernetes_endpoints()["staging"] != server
    exec_entry = config["users"][0]["user"]["exec"]
    assert exec_entry["args"][-3:] == ["token", "--cluster-name", "prod"]


# --------------------------------------------------------------------------- commands


def test_kubectl_version_shows_the_server_version(kubectl: Kubectl) -> None:
    out = kubectl.ok("version")
    server = [line for line in out.splitlines() if line.startswith("Server Version:")]
    assert server == ["Server Version: v1.33.0-eks-emulator"], out


def test_kubectl_get_namespaces_prints_the_servers_table(kubectl: Kubectl) -> None:
    rows = _rows(kubectl.ok("get", "namespaces"))
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    assert [row[0] for row in rows[1:]] == DEFAULT_NAMESPACES
    assert {row[1] for row in rows[1:]} == {"Active"}
    assert all(row[2].endswith(("s", "m", "h", "d")) for row in rows[1:])


def test_kubectl_get_serviceaccounts_in_all_namespaces(kubectl: Kubectl) -> None:
    rows = _rows(kubectl.ok("get", "serviceaccounts", "-A"))
    assert rows[0] == ["NAMESPACE", "NAME", "SECRETS", "AGE"]
    defaults = [row[:3] for row in rows[1:] if row[1] == "default"]
    assert defaults == [[ns, "default", "0"] for ns in DEFAULT_NAMESPACES]


def test_kubectl_create_then_delete_a_serviceaccount(kubectl: Kubectl) -> None:
    created = kubectl("create", "serviceaccount", "builder", "-n", "kube-public")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "serviceaccount/builder created"
    shown = json.loads(
        kubectl.ok("get", "serviceaccount", "builder", "-n", "kube-public", "-o", "json")
    )
    assert shown["kind"] == "ServiceAccount" and shown["metadata"]["namespace"] == "kube-public"
    assert shown["metadata"]["uid"] and shown["metadata"]["creationTimestamp"]

    again = kubectl("create", "serviceaccount", "builder", "-n", "kube-public")
    assert again.returncode == 1
    assert 'serviceaccounts "builder" already exists' in again.stderr

    deleted = kubectl("delete", "serviceaccount", "builder", "-n", "kube-public")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == 'serviceaccount "builder" deleted'
    gone = kubectl("get", "serviceaccount", "builder", "-n", "kube-public")
    assert gone.returncode == 1
    assert 'Error from server (NotFound): serviceaccounts "builder" not found' in gone.stderr
    rows = _rows(kubectl.ok("get", "serviceaccounts", "-n", "kube-public"))
    assert [row[0] for row in rows[1:]] == ["default"]


def test_kubectl_create_in_a_missing_namespace_is_not_found(kubectl: Kubectl) -> None:
    result = kubectl("create", "serviceaccount", "builder", "-n", "nowhere")
    assert result.returncode == 1
    assert 'namespaces "nowhere" not found' in result.stderr


def test_kubectl_auth_whoami_shows_the_callers_arn(kubectl: Kubectl) -> None:
    rows = {row[0]: row[1:] for row in _rows(kubectl.ok("auth", "whoami"))}
    assert rows["Username"] == [CALLER_ARN]
    assert rows["Groups"] == ["[system:authenticated]"]
    review = json.loads(kubectl.ok("auth", "whoami", "-o", "json"))
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"]["extra"]["arn"] == [CALLER_ARN]


def test_kubectl_auth_can_i_create_serviceaccounts(kubectl: Kubectl) -> None:
    assert kubectl.ok("auth", "can-i", "create", "serviceaccounts").strip() == "yes"
    assert kubectl.ok("auth", "can-i", "delete", "sa", "-n", "kube-system").strip() == "yes"


def test_kubectl_get_raw_lists_the_namespaces(kubectl: Kubectl) -> None:
    listed = json.loads(kubectl.ok("get", "--raw", "/api/v1/namespaces"))
    assert listed["kind"] == "NamespaceList" and listed["apiVersion"] == "v1"
    assert [item["metadata"]["name"] for item in listed["items"]] == DEFAULT_NAMESPACES


def test_kubectl_get_raw_token_request(kubectl: Kubectl, tmp_path: Path) -> None:
    body = tmp_path / "request.json"
    body.write_text(
        json.dumps(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 900},
            }
        ),
        encoding="utf-8",
    )
    answer = json.loads(
        kubectl.ok(
            "create",
            "--raw",
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            "-f",
            str(body),
        )
    )
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"]["audiences"] == ["sts.amazonaws.com"]
    assert answer["spec"]["expirationSeconds"] == 900
    assert answer["status"]["token"].count(".") == 2 and answer["status"]["expirationTimestamp"]


def test_kubectl_with_a_refused_token_is_unauthorized(kubectl: Kubectl, tmp_path: Path) -> None:
    config = yaml.safe_load(kubectl.kubeconfig.read_text(encoding="utf-8"))
    config["users"][0]["user"] = {"token": "k8s-aws-v1.bm90LWEtdG9rZW4"}
    bad = tmp_path / "config"
    bad.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = kubectl("get", "serviceaccounts", "-n", "default", kubeconfig=bad)
    assert result.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in result.stderr


def test_kubectl_under_an_access_entry_with_the_view_policy(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    # staging (not prod, which the other tests use): the caller gets an entry with View,
    # seen at once (no propagation delay), and kubectl shows what the entry allows.
    emulator = kubectl.emulator
    emulator.configure(delays=Delays.none())

    async def grant() -> None:
        async with emulator.client() as eks:
            await eks.create_access_entry(
                cluster_name="staging",
                principal_arn=CALLER_ARN,
                kubernetes_groups=["viewers"],
                username="viewer:{{AccountID}}",
            )
            await eks.associate_access_policy(
                cluster_name="staging",
                principal_arn=CALLER_ARN,
                policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                access_scope=AccessScope(type=AccessScopeType.CLUSTER),
            )

    asyncio.run(grant())
    config = tmp_path / "config"
    _run(
        [
            sys.executable,
            "-m",
            "eks_async",
            "--region",
            REGION,
            "--endpoint-url",
            kubectl.eks_url,
            "kubeconfig",
            "--cluster-name",
            "staging",
            "--kubeconfig",
            str(config),
            "--exec-command",
            f"{sys.executable} -m eks_async",
        ],
        kubectl.env,
    )
    who = {
        row[0]: row[1:] for row in _rows(kubectl.ok("--kubeconfig", str(config), "auth", "whoami"))
    }
    assert who["Username"] == [f"viewer:{TEST_ACCOUNT_ID}"]
    assert who["Groups"] == ["[viewers", "system:authenticated]"]
    listed = kubectl("get", "serviceaccounts", "-n", "kube-system", kubeconfig=config)
    assert listed.returncode == 0, listed.stderr
    created = kubectl("create", "serviceaccount", "builder", "-n", "default", kubeconfig=config)
    assert created.returncode == 1
    assert (
        "error: failed to create serviceaccount: serviceaccounts is forbidden: User "
        f'"viewer:{TEST_ACCOUNT_ID}" cannot create resource "serviceaccounts" in API group "" '
        'in the namespace "default"'
    ) in created.stderr
    can_create = kubectl("auth", "can-i", "create", "serviceaccounts", kubeconfig=config)
    assert (can_create.returncode, can_create.stdout.strip()) == (1, "no")
    can_list = kubectl("auth", "can-i", "list", "serviceaccounts", kubeconfig=config)
    assert (can_list.returncode, can_list.stdout.strip()) == (0, "yes")


# --------------------------------------------------------------------------- aws eks get-token


@pytest.fixture(scope="module")
def aws_kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """kubectl with a kubeconfig by ``aws eks update-kubeconfig`` (exec: ``aws eks get-token``)."""
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI (aws) is not on PATH")
    home = tmp_path_factory.mktemp("aws-kubectl")
    with _served() as (emulator, url):
        runner = Kubectl(emulator, url, home / "config", home)
        _run(
            [
                "aws",
                "--region",
                REGION,
                "--endpoint-url",
                url,
                "eks",
                "update-kubeconfig",
                "--name",
                "prod",
                "--kubeconfig",
                str(runner.kubeconfig),
            ],
            runner.env,
        )
        yield runner


def test_aws_update_kubeconfig_points_at_the_clusters_endpoint(aws_kubectl: Kubectl) -> None:
    config = yaml.safe_load(aws_kubectl.kubeconfig.read_text(encoding="utf-8"))
    assert (
        config["clusters"][0]["cluster"]["server"]
        == (aws_kubectl.emulator.kubernetes_endpoints()["prod"])
    )
    exec_entry = config["users"][0]["user"]["exec"]
    assert exec_entry["command"] == "aws" and "get-token" in exec_entry["args"]


def test_kubectl_with_aws_eks_get_token(aws_kubectl: Kubectl) -> None:
    rows = _rows(aws_kubectl.ok("get", "namespaces"))
    assert [row[0] for row in rows[1:]] == DEFAULT_NAMESPACES
    who = {row[0]: row[1:] for row in _rows(aws_kubectl.ok("auth", "whoami"))}
    assert who["Username"] == [CALLER_ARN]
    assert aws_kubectl.ok("auth", "can-i", "create", "serviceaccounts").strip() == "yes"
    created = aws_kubectl.ok("create", "serviceaccount", "from-aws", "-n", "default")
    assert created.strip() == "serviceaccount/from-aws created"
    deleted = aws_kubectl.ok("delete", "serviceaccount", "from-aws", "-n", "default")
    assert deleted.strip() == 'serviceaccount "from-aws" deleted'
    reviews = aws_kubectl.emulator.token_reviews()
    assert reviews and all(r.authenticated and r.cluster == "prod" for r in reviews)
