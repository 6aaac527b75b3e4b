"""Shared test set-up: no test reads the machine's AWS configuration or reaches AWS."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Before any botocore session exists: no config, no instance metadata, fixed region.
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name in (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
):
    os.environ.pop(_name, None)


# Hypothesis measures wall time: a 200 ms deadline per example and a "too slow" health
# check on data generation. On a loaded machine both fire on tests that are correct, so
# neither applies here (tests that need a bound on time say so themselves).
settings.register_profile(
    "eks_async", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("eks_async")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch for tests that set AWS variables of their own."""
    yield monkeypatch
