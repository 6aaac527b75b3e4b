"""``EKSClient``: every EKS operation as a typed coroutine, with waiters and paginators."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ._generated.client import EKSOperations
from ._generated.paginators import ModelPaginators
from ._generated.waiters import ModelWaiters
from ._waiter_api import IdentityWaiters


class Waiters(IdentityWaiters, ModelWaiters):
    """``eks.waiters``: the identity waiters and the waiters of botocore's model."""

    __slots__ = ()


class Paginators(ModelPaginators):
    """``eks.paginate``: async iteration over every paginated operation."""

    __slots__ = ()


class EKSClient(EKSOperations):
    """An asyncio client for the Amazon EKS API.

    Use it as ``async with EKSClient(region="us-west-2") as eks:``; one client serves
    any number of concurrent tasks over one pool of connections.
    """

    @cached_property
    def waiters(self) -> Waiters:
        """Waiters that poll until a change has propagated (see ``Waiters``)."""
        return Waiters(self)

    @cached_property
    def paginate(self) -> Paginators:
        """Paginators: ``async for item in eks.paginate.list_clusters():``."""
        return Paginators(self)

    async def _wait_after(self, operation: str, values: tuple[Any, ...], output: Any) -> None:
        waiters = self.waiters
        cluster = values[0]
        if operation == "CreatePodIdentityAssociation":
            await waiters.pod_identity_association_visible(
                cluster_name=cluster, association_id=output.association.association_id
            )
        elif operation == "UpdatePodIdentityAssociation":
            await waiters.pod_identity_association_updated(
                cluster_name=cluster,
                association_id=output.association.association_id,
                role_arn=output.association.role_arn,
                target_role_arn=output.association.target_role_arn,
            )
        elif operation == "DeletePodIdentityAssociation":
            await waiters.pod_identity_association_deleted(
                cluster_name=cluster, association_id=output.association.association_id
            )
        elif operation == "AssociateIdentityProviderConfig":
            await waiters.update_successful(cluster_name=cluster, update_id=output.update.id)
            await waiters.identity_provider_config_active(
                cluster_name=cluster, name=values[1].identity_provider_config_name
            )
        elif operation == "DisassociateIdentityProviderConfig":
            await waiters.update_successful(cluster_name=cluster, update_id=output.update.id)
            await waiters.identity_provider_config_deleted(
                cluster_name=cluster,
                name=values[1].name,
                type=values[1].type,
            )
        else:  # pragma: no cover - the generator offers wait= only for the ones above
            raise NotImplementedError(operation)
