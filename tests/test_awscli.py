"""The real AWS CLI (``aws eks ...``) against ``eks-async emulator`` in its own process.

The CLI reads nothing of this machine's AWS set-up: its config and credentials files are
empty ones, instance metadata is off, and the emulator's test keys come from the
environment, as the emulator's stderr tells users to set them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eks_async.testing import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

from ._emulator_process import HANG_GUARD, Served, emulator_process

AWS = shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI (aws) is not installed")

REGION = "us-west-2"
ROLE = "arn:aws:iam::111122223333:role/payments-api"
OTHER_ROLE = "arn:aws:iam::111122223333:role/payments-api-v2"


class AwsCli:
    """Runs ``aws eks ...`` against one emulator, with nothing from outside."""

    def __init__(self, url: str, home: Path) -> None:
        config = home / "config"
        credentials = home / "credentials"
        config.write_text("", encoding="utf-8")
        credentials.write_text("", encoding="utf-8")
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
        self.env.update(
            AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=TEST_SECRET_ACCESS_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(config),
            AWS_SHARED_CREDENTIALS_FILE=str(credentials),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            HOME=str(home),
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert AWS is not None
        return subprocess.run(
            [AWS, "eks", *args, "--endpoint-url", self.url, "--output", "json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )

    def __call__(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def major_version(self) -> int:
        assert AWS is not None
        result = subprocess.run(
            [AWS, "--version"], env=self.env, capture_output=True, text=True, timeout=HANG_GUARD
        )
        found = re.search(r"aws-cli/(\d+)\.", result.stdout + result.stderr)
        assert found, result.stdout + result.stderr
        return int(found.group(1))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with emulator_process("--cluster", "prod", "--instant") as served:
        yield served


@pytest.fixture
def aws(served: Served, tmp_path: Path) -> AwsCli:
    return AwsCli(served.url, tmp_path)


def test_pod_identity_association_lifecycle(aws: AwsCli) -> None:
    created = aws(
        "create-pod-identity-association", "--cluster-name", "prod", "--namespace", "payments",
        "--service-account", "api", "--role-arn", ROLE, "--tags", '{"team": "payments"}',
    )["association"]
    association_id = created["associationId"]
    assert created["clusterName"] == "prod" and created["roleArn"] == ROLE
    assert created["tags"] == {"team": "payments"}

    described = aws(
        "describe-pod-identity-association", "--cluster-name", "prod",
        "--association-id", association_id,
    )["association"]
    assert described["associationArn"] == created["associationArn"]
    assert described["namespace"] == "payments" and described["serviceAccount"] == "api"

    listed = aws("list-pod-identity-associations", "--cluster-name", "prod",
                 "--namespace", "payments")["associations"]
    assert [a["associationId"] for a in listed] == [association_id]

    updated = aws(
        "update-pod-identity-association", "--cluster-name", "prod",
        "--association-id", association_id, "--role-arn", OTHER_ROLE,
    )["association"]
    assert updated["roleArn"] == OTHER_ROLE

    deleted = aws("delete-pod-identity-association", "--cluster-name", "prod",
                  "--association-id", association_id)["association"]
    assert deleted["associationId"] == association_id
    assert aws("list-pod-identity-associations", "--cluster-name", "prod",
               "--namespace", "payments")["associations"] == []


def test_identity_provider_config_through_its_updates(aws: AwsCli) -> None:
    oidc = {
        "identityProviderConfigName": "okta",
        "issuerUrl": "https://example.okta.com",
        "clientId": "kubernetes",
        "usernameClaim": "email",
        "groupsClaim": "groups",
    }
    config = "type=oidc,name=okta"
    update = aws("associate-identity-provider-config", "--cluster-name", "prod",
                 "--oidc", json.dumps(oidc))["update"]
    assert update["type"] == "AssociateIdentityProviderConfig"
    # --instant: the update has finished by the time anyone asks.
    described = aws("describe-update", "--name", "prod", "--update-id", update["id"])["update"]
    assert described["status"] == "Successful"

    provider = aws("describe-identity-provider-config", "--cluster-name", "prod",
                   "--identity-provider-config", config)["identityProviderConfig"]["oidc"]
    assert provider["identityProviderConfigName"] == "okta"
    assert provider["issuerUrl"] == "https://example.okta.com"
    assert provider["status"] == "ACTIVE"
    listed = aws("list-identity-provider-configs", "--cluster-name", "prod")
    assert listed["identityProviderConfigs"] == [{"type": "oidc", "name": "okta"}]

    gone = aws("disassociate-identity-provider-config", "--cluster-name", "prod",
               "--identity-provider-config", config)["update"]
    assert gone["type"] == "DisassociateIdentityProviderConfig"
    assert aws("describe-update", "--name", "prod",
               "--update-id", gone["id"])["update"]["status"] == "Successful"
    assert aws("list-identity-provider-configs", "--cluster-name", "prod") == {
        "identityProviderConfigs": []
    }


def test_tags_on_the_cluster(aws: AwsCli) -> None:
    arn = aws("describe-cluster", "--name", "prod")["cluster"]["arn"]
    aws("tag-resource", "--resource-arn", arn, "--tags", "env=test,owner=platform")
    assert aws("list-tags-for-resource", "--resource-arn", arn)["tags"] == {
        "env": "test", "owner": "platform"}


def test_a_missing_association_is_a_service_error(aws: AwsCli) -> None:
    result = aws.run("describe-pod-identity-association", "--cluster-name", "prod",
                     "--association-id", "a-0000000000000000a")
    # The AWS CLI's status for an error the service answered: 254 from v2, 255 from v1.
    assert result.returncode == (254 if aws.major_version() >= 2 else 255), result.stderr
    assert "ResourceNotFoundException" in result.stderr
    assert result.stdout == ""

