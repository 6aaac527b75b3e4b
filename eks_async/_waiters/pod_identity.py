"""``pod_identity_association_effective``: wait until EKS Auth hands out the association's role.

EKS answers CreatePodIdentityAssociation (and Update) at once, but EKS Auth, which the EKS
Pod Identity Agent calls for every pod, sees the change seconds later. This waiter does
what the agent does, on each poll:

* a service-account token from the cluster's TokenRequest
  (``POST /api/v1/namespaces/NS/serviceaccounts/SA/token``, audience
  ``pods.eks.amazonaws.com``, 10 minutes), asked with this client's own cluster token;
* ``AssumeRoleForPodIdentity`` with that token, on an ``EKSAuthClient`` made for the same
  region, credentials provider, endpoint_url and transport as this client.

The credentials EKS Auth returns are dropped at once: only the association id, the role
ARN and the subject are kept. Everything here is imported only when the waiter runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from .._exceptions import ConfigurationError, EKSAsyncError, ServiceError
from .access import ClusterAPI, KubernetesAPIError
from .engine import Decision, Waiter, WaiterConfig, WaiterTimeoutError, WaitProgress

if TYPE_CHECKING:
    from .._client import EKSClient
    from .._eks_auth import EKSAuthClient

__all__ = ["POD_IDENTITY_DEFAULTS", "PodIdentityCheck", "pod_identity_association_effective"]

#: Polls from 2 s growing to 10 s, for up to 3 minutes: EKS Auth sees an association within
#: seconds (pods get credentials after about 5-10 s).
POD_IDENTITY_DEFAULTS = WaiterConfig(min_delay=2.0, max_delay=10.0, max_wait=180.0)

POD_AUDIENCE = "pods.eks.amazonaws.com"
#: The shortest expiry Kubernetes grants a TokenRequest.
_TOKEN_SECONDS = 600


@attrs.frozen(kw_only=True, slots=True)
class PodIdentityCheck:
    """What EKS Auth answered on the last poll, without the credentials."""

    #: The association EKS Auth used (``None`` when it did not say).
    association_id: str | None
    #: The role the association names (its ``targetRoleArn``, else its ``roleArn``), or,
    #: when waiting by service account alone, the ARN of the assumed-role session.
    role_arn: str
    namespace: str
    service_account: str
    #: Why the poll is not yet a success (``None``: it is).
    mismatch: str | None = None


def _role_name(arn: str) -> str:
    """``payments-api`` of ``arn:...:role/path/payments-api`` or of
    ``arn:...:assumed-role/payments-api/session``."""
    resource = arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        return resource.split("/")[1]
    return resource.rpartition("/")[2]


class _Probe:
    """One wait's connections to the cluster and to EKS Auth. Holds no token nor credentials."""

    def __init__(
        self,
        client: EKSClient,
        cluster_name: str,
        association_id: str | None,
        namespace: str | None,
        service_account: str | None,
        not_yet_codes: Sequence[str],
    ) -> None:
        self.client = client
        self.cluster_name = cluster_name
        self.association_id = association_id
        self.namespace = namespace
        self.service_account = service_account
        self.not_yet_codes = frozenset(not_yet_codes)
        self.api = ClusterAPI(cluster_name)
        self.auth: EKSAuthClient | None = None
        self.last_auth_error: ServiceError | None = None

    def __repr__(self) -> str:
        return (
            f"_Probe(cluster_name={self.cluster_name!r}, association_id={self.association_id!r},"
            f" endpoint={self.api.endpoint!r})"
        )

    async def _setup(self) -> None:
        from .._eks_auth import EKSAuthClient

        await self.api.open(self.client)
        shared = self.client._shared
        if shared.endpoint is None:
            await shared.setup()
        overridden = shared.endpoint_override is not None
        self.auth = EKSAuthClient(
            region=shared.region,
            endpoint_url=shared.endpoint_override,
            use_fips=False if overridden else shared.use_fips,
            use_dualstack=False if overridden else shared.use_dualstack,
            credentials=shared.credentials,
            http_client=shared._http_client,
            transport=shared._user_transport,
            retry=self.client._options.retry,
        )

    async def _expected(self) -> tuple[str, str, str | None]:
        """The association's namespace, service account and role ARN (``None``: any)."""
        if self.association_id is None:
            assert self.namespace is not None and self.service_account is not None
            return self.namespace, self.service_account, None
        described = await self.client.describe_pod_identity_association(
            cluster_name=self.cluster_name, association_id=self.association_id
        )
        assoc = described.association
        if assoc is None or not assoc.namespace or not assoc.service_account:
            raise ConfigurationError(f"association {self.association_id!r} is not described")
        role = assoc.target_role_arn or assoc.role_arn
        return assoc.namespace, assoc.service_account, role

    async def _service_account_token(self, namespace: str, service_account: str) -> str:
        cluster_token = (await self.client.get_token(**self.api.token_target)).token
        path = (
            f"/api/v1/namespaces/{quote(namespace, safe='')}/serviceaccounts/"
            f"{quote(service_account, safe='')}/token"
        )
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [POD_AUDIENCE], "expirationSeconds": _TOKEN_SECONDS},
        }
        answer = await self.api.post(path, body, cluster_token)
        token = (answer.get("status") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise KubernetesAPIError(201, "NoToken", "TokenRequest answered without a token")
        return token

    async def poll(self) -> PodIdentityCheck:
        if self.auth is None:
            await self._setup()
        assert self.auth is not None
        namespace, service_account, role_arn = await self._expected()
        token = await self._service_account_token(namespace, service_account)
        try:
            out = await self.auth.assume_role_for_pod_identity(
                cluster_name=self.cluster_name, token=token
            )
        except ServiceError as exc:
            if exc.code in self.not_yet_codes:
                self.last_auth_error = exc
            raise
        finally:
            del token
        # Keep what identifies the answer; the credentials go with ``out``, at once.
        got_id = out.pod_identity_association.association_id if (
            out.pod_identity_association is not None
        ) else None
        assumed = out.assumed_role_user.arn if out.assumed_role_user is not None else ""
        del out
        mismatch = None
        if self.association_id is not None and got_id != self.association_id:
            mismatch = f"association {got_id} answered, not {self.association_id}"
        elif role_arn is not None and _role_name(assumed) != _role_name(role_arn):
            mismatch = f"role {_role_name(assumed)} answered, not {_role_name(role_arn)}"
        return PodIdentityCheck(
            association_id=got_id,
            role_arn=role_arn or assumed,
            namespace=namespace,
            service_account=service_account,
            mismatch=mismatch,
        )

    def decide(self, output: Any, error: EKSAsyncError | None) -> Decision:
        if error is None:
            assert isinstance(output, PodIdentityCheck)
            if output.mismatch is not None:
                return "retry", output.mismatch
            return "success", "effective"
        if isinstance(error, ServiceError) and error.code in self.not_yet_codes:
            return "retry", error.code
        return None, getattr(error, "code", None) or type(error).__name__

    async def aclose(self) -> None:
        try:
            if self.auth is not None:
                await self.auth.aclose()
        finally:
            await self.api.aclose()


async def pod_identity_association_effective(
    client: EKSClient,
    *,
    cluster_name: str,
    association_id: str | None,
    namespace: str | None,
    service_account: str | None,
    config: WaiterConfig | None,
    on_progress: Callable[[WaitProgress], None] | None,
    not_yet_codes: Sequence[str],
) -> PodIdentityCheck:
    """See ``IdentityWaiters.pod_identity_association_effective``."""
    if association_id is None and (namespace is None or service_account is None):
        raise ConfigurationError("give association_id, or namespace and service_account")
    if association_id is not None and (namespace is not None or service_account is not None):
        raise ConfigurationError("give association_id or namespace and service_account, not both")
    if isinstance(not_yet_codes, str):
        raise ConfigurationError("not_yet_codes must be a sequence of error codes")
    probe = _Probe(client, cluster_name, association_id, namespace, service_account, not_yet_codes)
    try:
        return await Waiter(
            "pod_identity_association_effective", probe.poll, probe.decide,
            config or POD_IDENTITY_DEFAULTS, on_progress,
        ).run()
    except WaiterTimeoutError as exc:
        if probe.last_auth_error is not None:  # the last EKS Auth refusal, not a throttle
            exc.last_error = probe.last_auth_error
        raise
    finally:
        await probe.aclose()
