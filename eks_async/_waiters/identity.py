"""``eks.waiters``: the model's waiters and the identity waiters no AWS SDK offers.

The identity waiters absorb the eventual consistency of EKS's identity surface: a new Pod
Identity association that Describe and List do not yet show, an update or delete seen late,
and identity provider associations whose cluster update stays ``InProgress`` for tens of
minutes. Their defaults fit EKS's real timings; every one can be overridden per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._exceptions import EKSAsyncError, ServiceError
from .._generated import models
from .._operation import OperationSpec, WaiterSpec
from .engine import (
    Decision,
    Waiter,
    WaiterConfig,
    WaitProgress,
    acceptor_decider,
)

if TYPE_CHECKING:
    from .._auth.credentials import Credentials, CredentialsProvider
    from .._client import EKSClient
    from .._generated.models import (
        DescribeIdentityProviderConfigResponse,
        DescribePodIdentityAssociationResponse,
        DescribeUpdateResponse,
    )
    from .access import AccessCheck, CanI
    from .pod_identity import PodIdentityCheck

Progress = Callable[[WaitProgress], None] | None
T = TypeVar("T")

#: Seconds: associations show within seconds (pods get credentials after about 5-10 s).
ASSOCIATION_DEFAULTS = WaiterConfig(min_delay=2.0, max_delay=10.0, max_wait=120.0)
#: Identity provider updates: tens of minutes (Terraform's default timeout is 40 minutes).
UPDATE_DEFAULTS = WaiterConfig(min_delay=5.0, max_delay=60.0, max_wait=45 * 60.0)


def _default_config(spec: WaiterSpec) -> WaiterConfig:
    """Growing delays starting well under the model's fixed one, over the same total."""
    return WaiterConfig(
        min_delay=max(1.0, spec.delay / 4),
        max_delay=float(spec.delay) * 2,
        max_wait=float(spec.delay * spec.max_attempts),
    )


def _code(error: EKSAsyncError | None) -> str | None:
    return error.code if isinstance(error, ServiceError) else None


def _merge(base: WaiterConfig, given: WaiterConfig | None) -> WaiterConfig:
    return given if given is not None else base


class WaiterCore:
    """What every waiter needs: the client to poll with."""

    __slots__ = ("_client",)

    def __init__(self, client: EKSClient) -> None:
        self._client = client

    async def _model_wait(
        self,
        name: str,
        op: OperationSpec[T],
        values: tuple[Any, ...],
        config: WaiterConfig | None,
        on_progress: Progress,
    ) -> T:
        from .._generated.waiters import WAITERS

        spec = WAITERS[name]

        async def poll() -> T:
            return await self._client._invoke(op, values)

        failure_errors = _update_errors if op.name == "DescribeUpdate" else None
        return await Waiter(
            name,
            poll,
            acceptor_decider(spec.acceptors, op.output_shape),
            _merge(_default_config(spec), config),
            on_progress,
            failure_errors,
        ).run()


def _update_errors(output: Any) -> list[Any]:
    update = getattr(output, "update", None)
    return list(getattr(update, "errors", None) or [])


class IdentityWaiters(WaiterCore):
    """The identity waiters, hand-written on the same engine as the model's."""

    __slots__ = ()

    async def update_successful(
        self,
        *,
        cluster_name: str,
        update_id: str,
        nodegroup_name: str | None = None,
        addon_name: str | None = None,
        capability_name: str | None = None,
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> DescribeUpdateResponse:
        """Poll DescribeUpdate until the update is ``Successful``.

        ``Failed`` or ``Cancelled`` raise ``WaiterFailureError`` whose ``errors`` are the
        update's. Give ``nodegroup_name``, ``addon_name`` or ``capability_name`` for those
        kinds of update. Default: up to 45 minutes, polls from 5 s growing to 60 s.
        """
        async def poll() -> DescribeUpdateResponse:
            return await self._client.describe_update(
                name=cluster_name,
                update_id=update_id,
                nodegroup_name=nodegroup_name,
                addon_name=addon_name,
                capability_name=capability_name,
            )

        def decide(output: Any, error: EKSAsyncError | None) -> Decision:
            if error is not None:
                # Just after the call that started it, the update may not be readable yet.
                if _code(error) == "ResourceNotFoundException":
                    return "retry", "ResourceNotFoundException"
                return None, _code(error) or type(error).__name__
            status = str(output.update.status) if output.update else "unknown"
            if status == "Successful":
                return "success", status
            if status in ("Failed", "Cancelled"):
                return "failure", status
            return "retry", status

        return await Waiter(
            "update_successful",
            poll,
            decide,
            _merge(UPDATE_DEFAULTS, config),
            on_progress,
            _update_errors,
        ).run()

    async def identity_provider_config_active(
        self,
        *,
        cluster_name: str,
        name: str,
        type: str = "oidc",
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> DescribeIdentityProviderConfigResponse:
        """Poll DescribeIdentityProviderConfig until the config is ``ACTIVE``.

        Not found just after the association is the propagation window: it is polled
        through. ``DELETING`` fails the wait.
        """
        result: DescribeIdentityProviderConfigResponse = await self._idp_wait(
            "identity_provider_config_active", cluster_name, name, type, config, on_progress,
            deleted=False,
        )
        return result

    async def identity_provider_config_deleted(
        self,
        *,
        cluster_name: str,
        name: str,
        type: str = "oidc",
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> None:
        """Poll DescribeIdentityProviderConfig until the config is gone."""
        await self._idp_wait("identity_provider_config_deleted", cluster_name, name, type,
                             config, on_progress, deleted=True)

    async def _idp_wait(
        self,
        waiter: str,
        cluster_name: str,
        name: str,
        kind: str,
        config: WaiterConfig | None,
        on_progress: Progress,
        *,
        deleted: bool,
    ) -> Any:
        config_ref = models.IdentityProviderConfig(type=kind, name=name)

        async def poll() -> DescribeIdentityProviderConfigResponse:
            return await self._client.describe_identity_provider_config(
                cluster_name=cluster_name, identity_provider_config=config_ref
            )

        def decide(output: Any, error: EKSAsyncError | None) -> Decision:
            if error is not None:
                code = _code(error)
                if code == "ResourceNotFoundException":
                    return ("success" if deleted else "retry"), code
                return None, code or type(error).__name__
            oidc = output.identity_provider_config and output.identity_provider_config.oidc
            status = str(oidc.status) if oidc and oidc.status else "unknown"
            if deleted:
                return ("failure" if status in ("ACTIVE", "CREATING") else "retry"), status
            if status == "ACTIVE":
                return "success", status
            if status == "DELETING":
                return "failure", status
            return "retry", status

        return await Waiter(waiter, poll, decide, _merge(UPDATE_DEFAULTS, config),
                            on_progress).run()

    async def access_entry_effective(
        self,
        *,
        cluster_name: str,
        principal_arn: str | None = None,
        expect_username: str | None = None,
        expect_groups: Sequence[str] | None = None,
        can_i: CanI | Sequence[str] | None = None,
        credentials: Credentials | CredentialsProvider | None = None,
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> AccessCheck:
        """Wait until a principal's access entry (and policies) work in the cluster.

        Polls the cluster's Kubernetes API with a token made from the principal's
        credentials: this client's own (``eks.get_token``), or ``credentials`` (a
        ``Credentials`` or a provider). Success: ``SelfSubjectReview`` authenticates the
        token, as ``expect_username`` when given and with every group of
        ``expect_groups`` (or, with ``principal_arn`` and no ``expect_groups``, the
        groups of that principal's access entry); then, with ``can_i`` (a ``CanI`` or
        ``(verb, resource[, namespace])``), ``SelfSubjectAccessReview`` allows the action.
        Returns the last ``AccessCheck`` (user name and groups; never the token).

        401, 403 and a review that says "not allowed" are the propagation window: polled
        through. 429 and 5xx of the Kubernetes API slow the polls down, as EKS throttling
        does. Anything else raises ``WaiterFailureError``. Running out of time raises
        ``WaiterTimeoutError`` whose ``last_error`` is the last 401/403
        (``KubernetesAPIError``). Default: polls from 2 s growing to 10 s, up to 3 minutes
        (``ACCESS_DEFAULTS``). The endpoint and CA come from DescribeCluster.
        """
        from .access import access_entry_effective

        return await access_entry_effective(
            self._client,
            cluster_name=cluster_name,
            principal_arn=principal_arn,
            expect_username=expect_username,
            expect_groups=expect_groups,
            can_i=can_i,
            credentials=credentials,
            config=config,
            on_progress=on_progress,
        )

    async def pod_identity_association_effective(
        self,
        *,
        cluster_name: str,
        association_id: str | None = None,
        namespace: str | None = None,
        service_account: str | None = None,
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
        not_yet_codes: Sequence[str] = ("ResourceNotFoundException", "AccessDeniedException"),
    ) -> PodIdentityCheck:
        """Wait until EKS Auth hands the association's role to its service account's pods.

        Give ``association_id`` (its namespace, service account and role come from
        DescribePodIdentityAssociation on each poll), or ``namespace`` and
        ``service_account`` (then any role EKS Auth hands out is a success). Each poll does
        what the EKS Pod Identity Agent does: a service-account token from the cluster's
        TokenRequest (audience ``pods.eks.amazonaws.com``, 10 minutes; asked with this
        client's own cluster token, so this client needs that right in the cluster), then
        EKS Auth's ``AssumeRoleForPodIdentity`` with it, on an ``EKSAuthClient`` with this
        client's region, credentials provider, endpoint_url and transport. Success: EKS Auth
        answers with credentials for the association's role (its ``targetRoleArn``, else its
        ``roleArn``, compared by role name) and, with ``association_id``, names that
        association. Returns a ``PodIdentityCheck`` (association id, role ARN, subject): the
        credentials are dropped at once, never kept, logged nor shown.

        What it proves: EKS Auth would now hand credentials for that role to a pod of that
        service account. What it does not: pods started before the association (or before
        an update) keep what they had; they need a restart to pick up the association, and
        the agent may cache credentials it fetched earlier.

        ``not_yet_codes`` from EKS Auth (or from Describe) are the propagation window:
        polled through. Throttling (EKS Auth's, or the Kubernetes API's 429/5xx) slows the
        polls down. Anything else raises ``WaiterFailureError``, among them the Kubernetes
        API refusing the TokenRequest (``KubernetesAPIError``: 404 when the service account
        does not exist, 401/403 when this client may not ask for its tokens). Running out of
        time raises ``WaiterTimeoutError`` whose ``last_error`` is the last EKS Auth not-yet
        error. Default: polls from 2 s growing to 10 s, up to 3 minutes (``POD_IDENTITY_DEFAULTS``).
        """
        from .pod_identity import pod_identity_association_effective

        return await pod_identity_association_effective(
            self._client,
            cluster_name=cluster_name,
            association_id=association_id,
            namespace=namespace,
            service_account=service_account,
            config=config,
            on_progress=on_progress,
            not_yet_codes=not_yet_codes,
        )

    async def pod_identity_association_visible(
        self,
        *,
        cluster_name: str,
        association_id: str,
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> DescribePodIdentityAssociationResponse:
        """Wait until Describe finds the association and List (filtered by its namespace
        and service account) includes it; returns the Describe output.

        ResourceNotFoundException is the propagation window after a create, so it is
        polled through. Default: up to 2 minutes, polls from 2 s growing to 10 s.
        """

        async def poll() -> DescribePodIdentityAssociationResponse | None:
            described = await self._describe_association(cluster_name, association_id)
            assoc = described.association
            assert assoc is not None
            listing = self._client.paginate.list_pod_identity_associations(
                cluster_name=cluster_name,
                namespace=assoc.namespace,
                service_account=assoc.service_account,
            )
            async for summary in listing:
                if summary.association_id == association_id:
                    return described
            return None  # described, but not listed yet

        def decide(output: Any, error: EKSAsyncError | None) -> Decision:
            if error is not None:
                code = _code(error)
                if code == "ResourceNotFoundException":
                    return "retry", "not found"
                return None, code or type(error).__name__
            if output is None:
                return "retry", "described, not listed"
            return "success", "visible"

        result = await Waiter("pod_identity_association_visible", poll, decide,
                              _merge(ASSOCIATION_DEFAULTS, config), on_progress).run()
        return cast("DescribePodIdentityAssociationResponse", result)

    async def pod_identity_association_updated(
        self,
        *,
        cluster_name: str,
        association_id: str,
        role_arn: str | None = None,
        target_role_arn: str | None = None,
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> DescribePodIdentityAssociationResponse:
        """Wait until Describe shows the association's new role ARN and target role ARN."""

        async def poll() -> DescribePodIdentityAssociationResponse:
            return await self._describe_association(cluster_name, association_id)

        def decide(output: Any, error: EKSAsyncError | None) -> Decision:
            if error is not None:
                return None, _code(error) or type(error).__name__
            assoc = output.association
            if role_arn is not None and assoc.role_arn != role_arn:
                return "retry", "old role"
            if target_role_arn is not None and assoc.target_role_arn != target_role_arn:
                return "retry", "old target role"
            return "success", "updated"

        return await Waiter("pod_identity_association_updated", poll, decide,
                            _merge(ASSOCIATION_DEFAULTS, config), on_progress).run()

    async def pod_identity_association_deleted(
        self,
        *,
        cluster_name: str,
        association_id: str,
        config: WaiterConfig | None = None,
        on_progress: Progress = None,
    ) -> None:
        """Wait until Describe no longer finds the association."""

        async def poll() -> DescribePodIdentityAssociationResponse:
            return await self._describe_association(cluster_name, association_id)

        def decide(output: Any, error: EKSAsyncError | None) -> Decision:
            if error is not None:
                code = _code(error)
                if code == "ResourceNotFoundException":
                    return "success", "deleted"
                return None, code or type(error).__name__
            return "retry", "still described"

        await Waiter("pod_identity_association_deleted", poll, decide,
                     _merge(ASSOCIATION_DEFAULTS, config), on_progress).run()

    async def _describe_association(
        self, cluster_name: str, association_id: str
    ) -> DescribePodIdentityAssociationResponse:
        return await self._client.describe_pod_identity_association(
            cluster_name=cluster_name, association_id=association_id
        )
