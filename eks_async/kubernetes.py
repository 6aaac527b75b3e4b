"""kubernetes_asyncio clients for EKS clusters, with tokens that renew themselves.

Needs the optional extra: ``pip install 'eks-async[kubernetes]'`` (kubernetes_asyncio):

    from kubernetes_asyncio import client
    from eks_async import EKSClient
    from eks_async.kubernetes import api_client

    async with EKSClient(region="us-west-2") as eks:
        async with api_client(eks, "prod") as api:
            core = client.CoreV1Api(api)
            accounts = await core.list_namespaced_service_account("default")

``api_client`` describes the cluster once for its endpoint and CA, and authenticates every
request with a bearer token from ``eks.get_token`` (the same credentials and SigV4 code as
every EKS call). Tokens are cached by the EKS client until a minute before they expire,
and the ApiClient asks for one before each request, so a client kept open for hours never
sends an expired token. The CA is written to a private temporary file for the lifetime of
the block (kubernetes_asyncio reads CAs only from files) and removed afterwards.

kubernetes_asyncio sets no request timeout and does not retry: pass
``_request_timeout=`` on calls that must not hang, and retry 429s and 5xx where it matters
(``examples/batch_onboard.py`` shows both).

kubernetes_asyncio's objects are typed ``Any`` here: its hints are partial at best.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import os
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._auth.token import DEFAULT_SESSION_NAME
from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._client import EKSClient

__all__ = ["api_client"]

_TOKEN_KEY = "BearerToken"


def _kubernetes_client() -> Any:
    # Through importlib, so the module is Any to type checkers whether or not the installed
    # version ships hints (kubernetes_asyncio's hints are partial at best).
    try:
        return importlib.import_module("kubernetes_asyncio.client")
    except ImportError as exc:
        raise ImportError(
            "eks_async.kubernetes needs kubernetes_asyncio: "
            "pip install 'eks-async[kubernetes]' (or kubernetes_asyncio)"
        ) from exc


def _ca_pem(data: str | None, cluster_name: str) -> bytes:
    if not data:
        raise ConfigurationError(f"cluster {cluster_name!r} reports no certificate authority yet")
    try:
        pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"cluster {cluster_name!r}: certificateAuthority.data is not base64"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigurationError(
            f"cluster {cluster_name!r}: certificateAuthority.data holds no PEM certificate"
        )
    return pem


@contextlib.asynccontextmanager
async def api_client(
    eks: EKSClient,
    cluster_name: str,
    *,
    role_arn: str | None = None,
    session_name: str = DEFAULT_SESSION_NAME,
) -> AsyncIterator[Any]:
    """A ``kubernetes_asyncio.client.ApiClient`` for the cluster, closed when the block ends.

    ``async with api_client(eks, "prod") as api:`` — then ``client.CoreV1Api(api)`` and so on.
    The cluster must be ACTIVE (it must have an endpoint). Each request carries a token for
    the cluster made by ``eks.get_token``, signed with ``role_arn``'s credentials when given
    (assumed under ``session_name``, as ``aws eks get-token --role-arn`` does). For a local
    cluster on AWS Outposts the token names the cluster's id, as EKS expects.

    Raises ``ConfigurationError`` when the cluster has no endpoint or CA yet, and
    ``ImportError`` without kubernetes_asyncio; EKS errors come from DescribeCluster.
    """
    k8s = _kubernetes_client()
    described = await eks.describe_cluster(name=cluster_name)
    cluster = described.cluster
    if cluster is None or not cluster.endpoint:
        status = getattr(cluster, "status", None)
        raise ConfigurationError(
            f"cluster {cluster_name!r} has no Kubernetes endpoint yet"
            + (f" (status {status})" if status else "")
        )
    authority = cluster.certificate_authority
    ca = _ca_pem(authority.data if authority is not None else None, cluster_name)
    if cluster.outpost_config is not None and cluster.id:
        target: dict[str, str] = {"cluster_id": cluster.id}
    else:
        target = {"cluster_name": cluster_name}

    async def token() -> str:
        made = await eks.get_token(**target, role_arn=role_arn, session_name=session_name)
        return made.token

    async def refresh(configuration: Any) -> None:
        # kubernetes_asyncio calls this before every request that needs the key; the
        # EKS client hands out its cached token until a minute before it expires.
        configuration.api_key[_TOKEN_KEY] = await token()

    first = await token()
    folder = tempfile.mkdtemp(prefix="eks-async-ca-")
    try:
        ca_path = os.path.join(folder, "ca.crt")
        fd = os.open(ca_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(ca)
        configuration = k8s.Configuration(
            host=cluster.endpoint.rstrip("/"),
            api_key={_TOKEN_KEY: first},
            api_key_prefix={_TOKEN_KEY: "Bearer"},
        )
        configuration.ssl_ca_cert = ca_path
        configuration.verify_ssl = True
        configuration.refresh_api_key_hook = refresh
        api = k8s.ApiClient(configuration=configuration)
        try:
            yield api
        finally:
            await api.close()
    finally:
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, "ca.crt"))
        with contextlib.suppress(OSError):
            os.rmdir(folder)
