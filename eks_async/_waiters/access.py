"""``access_entry_effective``: wait until a principal's access entry works in the cluster.

EKS answers CreateAccessEntry and AssociateAccessPolicy at once, but the cluster's
authenticator and authorizer see the change seconds (up to a few minutes) later: until
then the principal's requests get 401 (no entry yet) or 403 (no policy yet). This waiter
asks the cluster itself, with a token made from the principal's credentials:

* ``SelfSubjectReview`` (``POST /apis/authentication.k8s.io/v1/selfsubjectreviews``):
  the token authenticates, as the expected user name and with the expected groups;
* ``SelfSubjectAccessReview`` (``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``)
  when ``can_i`` is given: the action is allowed.

The requests go over the client's own ``PoolTransport`` with an ``ssl.SSLContext`` that
trusts only the cluster's CA (from DescribeCluster); no Kubernetes client library is used.
Everything here is imported only when the waiter runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import ConfigurationError, EKSAsyncError, ServiceError
from .engine import Decision, Waiter, WaiterConfig, WaiterTimeoutError, WaitProgress

if TYPE_CHECKING:
    from .._auth.credentials import Credentials, CredentialsProvider
    from .._client import EKSClient
    from .._transports.pool import PoolTransport

__all__ = [
    "ACCESS_DEFAULTS",
    "AccessCheck",
    "CanI",
    "KubernetesAPIError",
    "access_entry_effective",
]

#: Polls from 2 s growing to 10 s, for up to 3 minutes: access entries and policies take
#: effect within seconds on EKS, rarely over a minute; 3 minutes leaves room for that with
#: a clear timeout rather than the engine's general 10 minutes.
ACCESS_DEFAULTS = WaiterConfig(min_delay=2.0, max_delay=10.0, max_wait=180.0)

_SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
_SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@attrs.frozen(kw_only=True, slots=True)
class CanI:
    """An action to check, as ``kubectl auth can-i VERB RESOURCE -n NAMESPACE`` would.

    ``namespace=""`` asks cluster-wide.
    """

    verb: str
    resource: str
    namespace: str = ""
    group: str = ""
    subresource: str = ""
    name: str = ""

    @classmethod
    def of(cls, value: CanI | Sequence[str]) -> CanI:
        """``value`` itself, or ``(verb, resource)`` / ``(verb, resource, namespace)``."""
        if isinstance(value, CanI):
            return value
        if isinstance(value, str) or len(value) not in (2, 3):
            raise ConfigurationError(
                "can_i must be a CanI or a (verb, resource[, namespace]) tuple"
            )
        return cls(verb=value[0], resource=value[1], namespace=value[2] if len(value) > 2 else "")

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {self.resource}{where}"


@attrs.frozen(kw_only=True, slots=True)
class AccessCheck:
    """What the cluster said of the principal on the last poll (no token in it)."""

    #: The user name the cluster authenticated the token as.
    username: str
    #: The groups the cluster gave the user (with ``system:authenticated``).
    groups: tuple[str, ...]
    #: Whether ``can_i`` was allowed (``None`` when no action was asked).
    allowed: bool | None = None
    #: Why the poll is not yet a success (``None``: it is).
    mismatch: str | None = None


class KubernetesAPIError(EKSAsyncError):
    """The cluster's Kubernetes API refused a review request.

    401 (not authenticated yet) and 403 (not authorized yet; also a review that says
    "not allowed") are the propagation window of an access entry; 429 and 5xx slow the
    waiter down; anything else ends the wait.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        if status == 429 or status >= 500:
            self.retry_kind = "throttling"  # the waiter slows down, as for EKS throttling
        super().__init__(f"Kubernetes API: HTTP {status} {reason}: {message}")

    @property
    def code(self) -> str:
        """``Unauthorized``, ``Forbidden``...: the answer's ``reason``, or its status."""
        return self.reason or str(self.status)


def _ssl_context(data: str | None, cluster_name: str) -> ssl.SSLContext:
    if not data:
        raise ConfigurationError(f"cluster {cluster_name!r} reports no certificate authority yet")
    try:
        pem = base64.b64decode(data, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"cluster {cluster_name!r}: certificateAuthority.data is not base64 PEM"
        ) from None
    try:
        return ssl.create_default_context(cadata=pem)
    except ssl.SSLError:
        raise ConfigurationError(
            f"cluster {cluster_name!r}: certificateAuthority.data holds no usable CA"
        ) from None


class ClusterAPI:
    """A cluster's Kubernetes API as the waiters call it: endpoint and CA from DescribeCluster,
    a pool that trusts only that CA, JSON POSTs with a bearer token. Holds no token."""

    __slots__ = ("cluster_name", "endpoint", "token_target", "transport")

    def __init__(self, cluster_name: str) -> None:
        self.cluster_name = cluster_name
        self.endpoint: str | None = None
        #: What ``get_token`` needs for this cluster (an Outposts cluster signs its id).
        self.token_target: dict[str, str] = {"cluster_name": cluster_name}
        self.transport: PoolTransport | None = None

    async def open(self, client: EKSClient) -> None:
        from .._transports.pool import PoolTransport

        described = await client.describe_cluster(name=self.cluster_name)
        cluster = described.cluster
        if cluster is None or not cluster.endpoint:
            raise ConfigurationError(f"cluster {self.cluster_name!r} has no Kubernetes endpoint yet")
        authority = cluster.certificate_authority
        context = _ssl_context(authority.data if authority else None, self.cluster_name)
        if cluster.outpost_config is not None and cluster.id:
            self.token_target = {"cluster_id": cluster.id}
        self.transport = PoolTransport(max_connections=2, ssl_context=context)
        self.endpoint = cluster.endpoint.rstrip("/")

    async def post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        """The JSON answer of a 200/201; ``KubernetesAPIError`` for any other status.

        Sent again on a stale connection on its own (``retry_safe``): the waiters only POST
        reviews and short-lived token requests, which change nothing.
        """
        from .._transports.base import Timeouts

        assert self.transport is not None and self.endpoint is not None
        status, _, data = await self.transport.send(
            "POST",
            self.endpoint + path,
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json.dumps(body).encode(),
            timeouts=Timeouts(connect=10.0, read=30.0),
            retry_safe=True,
        )
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status != 201 and status != 200:
            raise KubernetesAPIError(
                status, str(answer.get("reason") or ""), str(answer.get("message") or "")[:500]
            )
        return answer

    async def aclose(self) -> None:
        if self.transport is not None:
            await self.transport.aclose()


class _Probe:
    """One wait's connection to the cluster. Holds no token between polls."""

    def __init__(
        self,
        client: EKSClient,
        cluster_name: str,
        principal_arn: str | None,
        expect_username: str | None,
        expect_groups: Sequence[str] | None,
        can_i: CanI | None,
        token: Callable[..., Awaitable[str]],
    ) -> None:
        self.client = client
        self.cluster_name = cluster_name
        self.principal_arn = principal_arn
        self.expect_username = expect_username
        self.expect_groups = None if expect_groups is None else tuple(expect_groups)
        self.can_i = can_i
        self.token = token
        self.api = ClusterAPI(cluster_name)
        self.last_refusal: KubernetesAPIError | None = None

    def __repr__(self) -> str:
        return f"_Probe(cluster_name={self.cluster_name!r}, endpoint={self.api.endpoint!r})"

    async def _setup(self) -> None:
        """Each step once, on the first poll that gets through it (a throttled
        DescribeAccessEntry after DescribeCluster is asked again on the next poll)."""
        if self.api.transport is None:
            await self.api.open(self.client)
        if self.principal_arn is not None and self.expect_groups is None:
            entry = await self.client.describe_access_entry(
                cluster_name=self.cluster_name, principal_arn=self.principal_arn
            )
            groups = entry.access_entry.kubernetes_groups if entry.access_entry else None
            self.expect_groups = tuple(groups or ())

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.api.post(path, body, await self.token(**self.api.token_target))

    async def poll(self) -> AccessCheck:
        await self._setup()
        review = await self._post(
            _SSR_PATH, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        info = (review.get("status") or {}).get("userInfo") or {}
        username = str(info.get("username") or "")
        groups = tuple(str(g) for g in info.get("groups") or ())
        if self.expect_username is not None and username != self.expect_username:
            return AccessCheck(
                username=username, groups=groups,
                mismatch=f"authenticated as {username!r}, not {self.expect_username!r}",
            )
        if self.expect_groups is not None:
            missing = [g for g in self.expect_groups if g not in groups]
            if missing:
                return AccessCheck(
                    username=username, groups=groups,
                    mismatch=f"groups lack {', '.join(missing)}",
                )
        if self.can_i is None:
            return AccessCheck(username=username, groups=groups)
        can = self.can_i
        attributes = {
            k: v
            for k, v in (
                ("verb", can.verb), ("resource", can.resource), ("namespace", can.namespace),
                ("group", can.group), ("subresource", can.subresource), ("name", can.name),
            )
            if v
        }
        access = await self._post(
            _SSAR_PATH,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            },
        )
        status = access.get("status") or {}
        if not status.get("allowed"):
            reason = str(status.get("reason") or "no policy allows it")
            raise KubernetesAPIError(403, "Forbidden", f"{username} may not {can} ({reason})")
        return AccessCheck(username=username, groups=groups, allowed=True)

    def decide(self, output: Any, error: EKSAsyncError | None) -> Decision:
        if error is None:
            assert isinstance(output, AccessCheck)
            if output.mismatch is not None:
                return "retry", output.mismatch
            return "success", "allowed" if output.allowed else "authenticated"
        if isinstance(error, KubernetesAPIError) and error.status in (401, 403):
            self.last_refusal = error
            return "retry", f"{error.code} ({error.status})"
        if isinstance(error, ServiceError):
            return None, error.code
        return None, getattr(error, "code", None) or type(error).__name__

    async def aclose(self) -> None:
        await self.api.aclose()


async def access_entry_effective(
    client: EKSClient,
    *,
    cluster_name: str,
    principal_arn: str | None,
    expect_username: str | None,
    expect_groups: Sequence[str] | None,
    can_i: CanI | Sequence[str] | None,
    credentials: Credentials | CredentialsProvider | None,
    config: WaiterConfig | None,
    on_progress: Callable[[WaitProgress], None] | None,
) -> AccessCheck:
    """See ``IdentityWaiters.access_entry_effective``."""
    wanted = None if can_i is None else CanI.of(can_i)
    if credentials is None:

        async def token(**target: str) -> str:
            return (await client.get_token(**target)).token

    else:
        from .._auth.credentials import Credentials, StaticCredentialsProvider
        from .._auth.token import TokenSource

        provider = (
            StaticCredentialsProvider(credentials)
            if isinstance(credentials, Credentials)
            else credentials
        )
        shared = client._shared
        if shared.endpoint is None:
            await shared.setup()
        assert shared.region is not None
        source = TokenSource(region=shared.region, use_fips=shared.use_fips, credentials=provider)

        async def token(**target: str) -> str:
            return (await source.get_token(**target)).token

    probe = _Probe(
        client, cluster_name, principal_arn, expect_username, expect_groups, wanted, token
    )
    try:
        return await Waiter(
            "access_entry_effective", probe.poll, probe.decide, config or ACCESS_DEFAULTS,
            on_progress,
        ).run()
    except WaiterTimeoutError as exc:
        if probe.last_refusal is not None:  # the last 401/403, not a throttle after it
            exc.last_error = probe.last_refusal
        raise
    finally:
        await probe.aclose()
