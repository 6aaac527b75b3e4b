"""The public API's types, checked by ``mypy --strict`` (tests/test_static.py); never run.

Each function uses one part of the API the way its users do and states, with
``assert_type``, what a type checker must infer. Lines a checker must refuse carry a
``# type: ignore[code]``: under ``--strict`` (``warn_unused_ignores``) an ignore that is
not needed is itself an error, so these lines fail the check when the API starts
accepting what it should not.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal, assert_type

import eks_async
from eks_async import (
    ClusterToken,
    Credentials,
    CredentialsProvider,
    EKSAsyncError,
    EKSClient,
    InvalidParameterException,
    Paginator,
    ResourceNotFoundException,
    ResponseMetadata,
    ResponseParseError,
    RetryConfig,
    RetryEvent,
    ServiceError,
    TransportError,
    WaiterConfig,
    WaiterFailureError,
    WaiterTimeoutError,
    WaitProgress,
)
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    CallCounts,
    Delays,
    EKSEmulator,
    EmulatorServer,
    EmulatorTransport,
    Fault,
    ManualClock,
    run_emulator_server,
)

# --- building a client ---------------------------------------------------------------------


def construction() -> None:
    assert_type(EKSClient(region="us-west-2"), EKSClient)
    assert_type(
        EKSClient(
            region="eu-west-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            aws_session_token="token",
            use_fips=True,
            connect_timeout=5.0,
            read_timeout=None,
            max_connections=10,
        ),
        EKSClient,
    )
    credentials = Credentials(
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret",
        expiry=datetime.datetime.now(datetime.UTC),
    )
    assert_type(credentials.session_token, str | None)
    assert_type(credentials.expiry, datetime.datetime | None)
    EKSClient(region="us-west-2", credentials=credentials)
    EKSClient(region="us-west-2", profile="dev", endpoint_url="http://127.0.0.1:8000")
    client = EKSClient(region="us-west-2")
    assert_type(client.region, str | None)
    assert_type(client.endpoint_url, str | None)
    EKSClient(region=7)  # type: ignore[arg-type]


class VaultCredentials:
    """A caller's own credential source: anything with ``get_credentials``."""

    async def get_credentials(self) -> Credentials:
        return Credentials(access_key_id="AKID", secret_access_key="secret")


def a_credentials_provider() -> None:
    provider: CredentialsProvider = VaultCredentials()
    EKSClient(region="us-west-2", credentials=provider)
    EKSClient(region="us-west-2", credentials="AKID:secret")  # type: ignore[arg-type]


# --- operations and their outputs ----------------------------------------------------------


async def operations(eks: EKSClient) -> None:
    async with EKSClient(region="us-west-2") as opened:
        assert_type(opened, EKSClient)
    described = await eks.describe_cluster(name="prod")
    assert_type(described, eks_async.DescribeClusterResponse)
    assert_type(described.cluster, eks_async.Cluster | None)
    if described.cluster is not None:
        assert_type(described.cluster.name, str | None)
        assert_type(described.cluster.created_at, datetime.datetime | None)
        assert_type(described.cluster.tags, dict[str, str] | None)

    created = await eks.create_pod_identity_association(
        cluster_name="prod",
        namespace="payments",
        service_account="api",
        role_arn="arn:aws:iam::111122223333:role/payments-api",
        tags={"team": "payments"},
        wait=WaiterConfig(max_wait=60),
    )
    assert_type(created, eks_async.CreatePodIdentityAssociationResponse)
    assert_type(created.association, eks_async.PodIdentityAssociation | None)
    await eks.create_pod_identity_association(
        cluster_name="prod", namespace="payments", service_account="api", role_arn="r", wait=True
    )

    started = await eks.associate_identity_provider_config(
        cluster_name="prod",
        oidc=eks_async.OidcIdentityProviderConfigRequest(
            identity_provider_config_name="okta",
            issuer_url="https://example.okta.com",
            client_id="kubernetes",
        ),
    )
    assert_type(started.update, eks_async.Update | None)
    if started.update is not None:
        assert_type(started.update.status, eks_async.UpdateStatus | str | None)

    listed = await eks.list_clusters(max_results=10)
    assert_type(listed.clusters, list[str] | None)
    assert_type(listed.next_token, str | None)

    # The generic form takes boto3's names and gives the typed output too (as Any).
    assert_type(await eks.call("DescribeCluster", {"name": "prod"}), Any)

    await eks.describe_cluster("prod")  # type: ignore[call-arg]
    await eks.describe_cluster(name=3)  # type: ignore[arg-type]
    await eks.describe_cluster(cluster_name="prod")  # type: ignore[call-arg]


async def response_metadata(eks: EKSClient) -> None:
    out = await eks.list_clusters()
    # Typed ``ResponseMetadata | None`` until the models say it is always there; the
    # check below holds either way.
    metadata = out.response_metadata
    assert metadata is not None
    assert_type(metadata, ResponseMetadata)
    assert_type(metadata.request_id, str | None)
    assert_type(metadata.http_status, int)
    assert_type(metadata.attempts, int)
    assert_type(metadata.retry_wait, float)


# --- waiters -------------------------------------------------------------------------------


async def waiters(eks: EKSClient) -> None:
    seen: list[WaitProgress] = []

    def on_progress(progress: WaitProgress) -> None:
        assert_type(progress.attempt, int)
        assert_type(progress.elapsed, float)
        assert_type(progress.state, str)
        assert_type(progress.next_delay, float | None)
        seen.append(progress)

    config = WaiterConfig(min_delay=1, max_delay=10, max_wait=120, jitter=False)
    assert_type(config.max_wait, float)
    update = await eks.waiters.update_successful(
        cluster_name="prod", update_id="u-1", config=config, on_progress=on_progress
    )
    assert_type(update, eks_async.DescribeUpdateResponse)
    visible = await eks.waiters.pod_identity_association_visible(
        cluster_name="prod",
        association_id="a-1",
        on_progress=lambda p: print(p.state, p.next_delay),
    )
    assert_type(visible, eks_async.DescribePodIdentityAssociationResponse)
    active = await eks.waiters.cluster_active(name="prod", config=config)
    assert_type(active, eks_async.DescribeClusterResponse)
    idp = await eks.waiters.identity_provider_config_active(
        cluster_name="prod", name="okta"
    )
    assert_type(idp, eks_async.DescribeIdentityProviderConfigResponse)
    await eks.waiters.update_successful(cluster_name="prod")  # type: ignore[call-arg]
    await eks.waiters.cluster_active(name="prod", config=30)  # type: ignore[arg-type]


async def waiter_errors(eks: EKSClient) -> None:
    try:
        await eks.waiters.update_successful(cluster_name="prod", update_id="u-1")
    except WaiterFailureError as failed:
        assert_type(failed.errors, list[Any])
        assert_type(failed.error, EKSAsyncError | None)
        assert_type(failed.waiter, str)
        assert_type(failed.polls, int)
    except WaiterTimeoutError as late:
        assert_type(late.last_error, EKSAsyncError | None)
        assert_type(late.elapsed, float)


# --- paginators ----------------------------------------------------------------------------


async def paginators(eks: EKSClient) -> None:
    associations = eks.paginate.list_pod_identity_associations(cluster_name="prod")
    assert_type(
        associations,
        Paginator[
            eks_async.PodIdentityAssociationSummary,
            eks_async.ListPodIdentityAssociationsResponse,
        ],
    )
    async for summary in associations:
        assert_type(summary, eks_async.PodIdentityAssociationSummary)
    async for page in eks.paginate.list_clusters(max_results=50).pages():
        assert_type(page, eks_async.ListClustersResponse)
    async for name in eks.paginate.list_clusters():
        assert_type(name, str)


# --- retries -------------------------------------------------------------------------------


async def retries(eks: EKSClient) -> None:
    events: list[RetryEvent] = []
    config = RetryConfig(mode="adaptive", max_attempts=8, max_backoff=5, deadline=30, quota=None)
    assert_type(config.mode, Literal["standard", "adaptive"])
    assert_type(config.deadline, float | None)
    client = EKSClient(region="us-west-2", retry=config, on_retry=events.append)
    view = client.with_options(retry=RetryConfig(max_attempts=1), on_retry=events.append)
    assert_type(view, EKSClient)
    await eks.with_options(retry=RetryConfig(deadline=30)).describe_cluster(name="prod")
    for event in events:
        assert_type(event.operation, str)
        assert_type(event.attempt, int)
        assert_type(event.reason, str)
        assert_type(event.delay, float)
        assert_type(event.kind, str)
    with eks_async.instant_retries():
        pass
    eks_async.set_instant_retries(False)
    RetryConfig(mode="legacy")  # type: ignore[arg-type]
    RetryConfig(max_attempts="3")  # type: ignore[arg-type]
    client.with_options(on_retry=lambda event, extra: None)  # type: ignore[arg-type,misc]


async def limits_and_transport_errors(eks: EKSClient) -> None:
    limits = eks_async.Limits(max_body=1 << 20, max_headers=50)
    assert_type(limits.max_body, int)
    EKSClient(region="us-west-2", limits=limits)
    EKSClient(region="us-west-2", limits=1 << 20)  # type: ignore[arg-type]
    try:
        await eks.list_clusters()
    except eks_async.ProtocolError as broken:
        assert_type(broken, eks_async.ProtocolError)
        assert_type(broken.retry_kind, Literal["throttling", "transient", "timeout", "connection"] | None)


# --- errors --------------------------------------------------------------------------------


async def errors(eks: EKSClient) -> None:
    try:
        await eks.describe_cluster(name="prod")
    except ResourceNotFoundException as missing:
        assert_type(missing.code, str)
        assert_type(missing.message, str | None)
        assert_type(missing.cluster_name, str | None)
    except InvalidParameterException as bad:
        assert_type(bad.fargate_profile_name, str | None)
    except ServiceError as error:
        assert_type(error.http_status, int)
        assert_type(error.request_id, str | None)
        assert_type(error.operation, str | None)
        assert_type(error.retry_after, float | None)
        assert_type(error.is_throttling, bool)
        assert_type(error.is_retryable, bool)
        assert_type(error.attempts, int)
        assert_type(error.retry_wait, float)
        error.cluster_name  # type: ignore[attr-defined]  # noqa: B018
    except ResponseParseError as unreadable:
        assert_type(unreadable.http_status, int)
    except eks_async.TimeoutError_ as slow:
        assert_type(slow, eks_async.TimeoutError_)
    except TransportError as unreachable:
        assert_type(unreachable.operation, str | None)
    except eks_async.ParamValidationError as rejected:
        assert_type(rejected.path, str)
        assert_type(rejected.problem, str)
    except EKSAsyncError as other:
        assert_type(other.attempts, int)


# --- Kubernetes tokens ---------------------------------------------------------------------


async def tokens(eks: EKSClient) -> None:
    token = await eks.get_token(cluster_name="prod")
    assert_type(token, ClusterToken)
    assert_type(token.token, str)
    assert_type(token.expires_at, datetime.datetime)
    await eks.get_token(cluster_id="0123", role_arn="arn:aws:iam::1:role/x", session_name="me")
    await eks.get_token("prod")  # type: ignore[call-arg]


# --- the emulator --------------------------------------------------------------------------


async def emulator_in_process() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=Delays(association_create=5), seed=7)
    assert_type(emulator.add_cluster("prod"), str)
    emulator.register_credentials("AKIDOTHER", "secret", session_token="t", account_id="1" * 12)
    emulator.script("DescribeUpdate", Fault.SERVER_ERROR, times=2)
    async with emulator.client() as eks:
        assert_type(eks, EKSClient)
        await eks.list_clusters()
        emulator.advance(5)
    assert_type(emulator.settle(), float)
    assert_type(emulator.calls("ListClusters"), CallCounts)
    assert_type(emulator.calls("ListClusters").total, int)
    assert_type(emulator.transport(), EmulatorTransport)
    EKSClient(region="us-west-2", transport=emulator.transport())
    emulator.advance("5")  # type: ignore[arg-type]


async def emulator_served() -> None:
    emulator = EKSEmulator(verify_signatures=False)
    async with emulator.serve(port=0) as url:
        assert_type(url, str)
        EKSClient(
            region="us-west-2",
            endpoint_url=url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        )
    with run_emulator_server() as server:
        assert_type(server, EmulatorServer)
        assert_type(server.url, str)
        assert_type(server.emulator, EKSEmulator)


async def a_test_with_the_plugins_fixtures(
    eks_emulator: EKSEmulator, eks_client: EKSClient
) -> None:
    # The shape of a test using eks_async.testing.pytest_plugin's fixtures.
    eks_emulator.add_cluster("prod")
    out = await eks_client.describe_cluster(name="prod")
    assert_type(out, eks_async.DescribeClusterResponse)


async def eks_auth_client() -> None:
    from eks_async.eks_auth import (
        AssumeRoleForPodIdentityResponse,
        InvalidTokenException,
    )
    from eks_async.eks_auth import (
        Credentials as PodCredentials,
    )

    async with eks_async.EKSAuthClient(region="us-west-2") as auth:
        assert_type(auth, eks_async.EKSAuthClient)
        try:
            out = await auth.assume_role_for_pod_identity(cluster_name="prod", token="a.b.c")
        except InvalidTokenException as error:
            assert_type(error.code, str)
            return
        assert_type(out, AssumeRoleForPodIdentityResponse)
        assert out.credentials is not None
        assert_type(out.credentials, PodCredentials)
        assert_type(out.credentials.secret_access_key, str)
        await auth.assume_role_for_pod_identity(cluster_name="prod")  # type: ignore[call-arg]
