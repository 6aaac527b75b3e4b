"""``EKSClient``: every EKS operation as a typed coroutine, with waiters and paginators."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._core import ClientCore
from ._generated.client import EKSOperations
from ._generated.paginators import ModelPaginators
from ._generated.waiters import ModelWaiters
from ._paginate import PaginatorCore
from ._waiters.engine import WaiterConfig
from ._waiters.identity import IdentityWaiters

if TYPE_CHECKING:
    from ._auth.token import ClusterToken


class Waiters(IdentityWaiters, ModelWaiters):
    """``eks.waiters``: the identity waiters and the waiters of botocore's model."""

    __slots__ = ()


class Paginators(PaginatorCore, ModelPaginators):
    """``eks.paginate``: async iteration over every paginated operation."""

    __slots__ = ()


class EKSClient(ClientCore, EKSOperations):
    """An asyncio client for the Amazon EKS API.

    Use it as ``async with EKSClient(region="us-west-2") as eks:`` (or call ``aclose()``
    when done); one client serves any number of concurrent tasks over one pool of
    connections. Every argument is optional and keyword-only.

    Args:
        region: The AWS region; else ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, else the
            profile's.
        endpoint_url: Send every call here instead of the endpoint resolved for the region
            (a VPC endpoint, the emulator).
        use_fips: Use the region's FIPS endpoint (default: ``AWS_USE_FIPS_ENDPOINT``).
        use_dualstack: Use the region's dual-stack endpoint (default:
            ``AWS_USE_DUALSTACK_ENDPOINT``).
        aws_access_key_id: Sign with this key (give ``aws_secret_access_key`` with it, and
            ``aws_session_token`` for temporary credentials).
        aws_secret_access_key: The secret of ``aws_access_key_id``.
        aws_session_token: The session token of temporary credentials.
        credentials: A ``Credentials`` or a ``CredentialsProvider`` to sign with, instead of
            keys. With neither, aiobotocore's credential chain finds them.
        profile: The shared config profile the credential chain and the region come from.
        http_client: An ``httpx.AsyncClient`` to send through instead of the built-in pool;
            it stays open when this client closes.
        transport: An httpx transport to send through (respx, a test double,
            ``EKSEmulator.transport()``).
        connect_timeout: Seconds to wait for a connection (``None``: no limit).
        read_timeout: Seconds to wait for an answer (``None``: no limit).
        max_connections: How many connections the built-in pool keeps open at most.
        limits: Bounds on what an answer may hold (``Limits``).
        retry: How calls are retried (``RetryConfig``; standard mode by default).
        on_retry: Called with a ``RetryEvent`` before every retry wait and rate-limiter wait.
    """

    @cached_property
    def waiters(self) -> Waiters:
        """Waiters that poll until a change has propagated (see ``Waiters``)."""
        return Waiters(self)

    @cached_property
    def paginate(self) -> Paginators:
        """Paginators: ``async for item in eks.paginate.list_clusters():``."""
        return Paginators(self)

    async def get_token(
        self,
        *,
        cluster_name: str | None = None,
        cluster_id: str | None = None,
        role_arn: str | None = None,
        session_name: str = "EKSGetTokenAuth",
    ) -> ClusterToken:
        """A bearer token for the cluster's Kubernetes API, as ``aws eks get-token`` makes it.

        Give ``cluster_name``, or ``cluster_id`` for a local cluster on Outposts. With
        ``role_arn`` the role is assumed first. Tokens are signed with this client's
        credentials and cached until a minute before they expire.
        """
        shared = self._shared
        if shared.tokens is None:
            if shared.endpoint is None:
                await shared.setup()
            assert shared.region is not None
            from ._auth.token import TokenSource

            shared.tokens = TokenSource(
                region=shared.region, use_fips=shared.use_fips, credentials=shared.credentials
            )
        return await shared.tokens.get_token(
            cluster_name=cluster_name,
            cluster_id=cluster_id,
            role_arn=role_arn,
            session_name=session_name,
        )

    async def _wait_after(
        self, operation: str, values: tuple[Any, ...], output: Any, config: WaiterConfig | None
    ) -> None:
        waiters = self.waiters
        cluster = values[0]
        if operation in ("CreateAccessEntry", "AssociateAccessPolicy"):
            # wait= waits for THIS client's own token (no STS GetCallerIdentity call to
            # check who the principal is): use it when the principal is the caller.
            await waiters.access_entry_effective(
                cluster_name=cluster,
                expect_groups=(
                    output.access_entry.kubernetes_groups
                    if operation == "CreateAccessEntry"
                    else None
                ),
                can_i=_policy_probe(values[2], values[3])
                if operation == "AssociateAccessPolicy"
                else None,
                config=config,
            )
        elif operation == "CreatePodIdentityAssociation":
            await waiters.pod_identity_association_visible(
                cluster_name=cluster,
                association_id=output.association.association_id,
                config=config,
            )
        elif operation == "UpdatePodIdentityAssociation":
            await waiters.pod_identity_association_updated(
                cluster_name=cluster,
                association_id=output.association.association_id,
                role_arn=output.association.role_arn,
                target_role_arn=output.association.target_role_arn,
                config=config,
            )
        elif operation == "DeletePodIdentityAssociation":
            await waiters.pod_identity_association_deleted(
                cluster_name=cluster,
                association_id=output.association.association_id,
                config=config,
            )
        elif operation == "AssociateIdentityProviderConfig":
            await waiters.update_successful(
                cluster_name=cluster, update_id=output.update.id, config=config
            )
            await waiters.identity_provider_config_active(
                cluster_name=cluster,
                name=values[1].identity_provider_config_name,
                config=config,
            )
        elif operation == "DisassociateIdentityProviderConfig":
            await waiters.update_successful(
                cluster_name=cluster, update_id=output.update.id, config=config
            )
            await waiters.identity_provider_config_deleted(
                cluster_name=cluster,
                name=values[1].name,
                type=values[1].type,
                config=config,
            )
        else:  # pragma: no cover - the generator offers wait= only for the ones above
            raise NotImplementedError(operation)


#: Access policies whose every scope lets its holder list pods (what ``wait=`` checks).
_LISTING_POLICIES = frozenset(
    "arn:aws:eks::aws:cluster-access-policy/" + name
    for name in (
        "AmazonEKSClusterAdminPolicy",
        "AmazonEKSAdminPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSViewPolicy",
        "AmazonEKSAdminViewPolicy",
    )
)


def _policy_probe(policy_arn: str, scope: Any) -> tuple[str, str, str] | None:
    """The action ``associate_access_policy(wait=True)`` checks: listing pods where the
    policy applies (a namespace without wildcards, or cluster-wide); ``None`` (only
    authentication is waited for) for other policies and wildcard-only scopes."""
    if policy_arn not in _LISTING_POLICIES:
        return None
    if str(getattr(scope, "type", "cluster")) != "namespace":
        return ("list", "pods", "")
    plain = [n for n in getattr(scope, "namespaces", None) or () if "*" not in n]
    return ("list", "pods", plain[0]) if plain else None
