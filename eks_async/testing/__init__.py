"""A local, in-memory EKS for tests: ``eks_async.testing``.

The emulator answers the identity part of the EKS API (clusters, pod identity
associations, OIDC identity provider configs, their updates, tags) the way EKS does on the
wire, including the parts that make real code hard to test: eventual consistency,
throttling and server errors, dropped connections and SigV4 checks. Everything random is
drawn from a seed, and time can be moved by hand, so tests are fast and repeatable.

In-process (no sockets):

    emulator = EKSEmulator(clock=ManualClock())
    async with emulator.client() as eks:      # or EKSClient(transport=emulator.transport(), ...)
        ...
        emulator.advance(30)                  # 30 s of EKS time pass

Over HTTP, for any client (aiobotocore, boto3, the AWS CLI):

    async with emulator.serve() as url: ...           # on the running event loop
    with run_emulator_server() as server: ...         # in a background thread
    python -m eks_async.testing --port 8000           # in its own process

Requests must be signed with ``TEST_ACCESS_KEY_ID`` / ``TEST_SECRET_ACCESS_KEY`` (or keys
added with ``register_credentials``) unless ``verify_signatures=False``. Operations the
emulator does not implement answer ``InvalidRequestException`` naming the operation.
While served, each cluster's Kubernetes API is served too, over HTTPS on a port of its own
(``https://127.0.0.1:PORT``, no path; ``kubernetes_endpoints()``) with a CA the emulator
makes (``kubernetes_ca_pem``): DescribeCluster's ``endpoint`` and ``certificateAuthority``
point there, so kubectl, kubernetes_asyncio or ``eks_async.kubernetes`` reach it as they
would EKS. It knows namespaces, service accounts, TokenRequest, SelfSubjectReview and
SelfSubjectAccessReview, with discovery and ``kubectl get``'s tables, in JSON or
Kubernetes' protobuf (the ``protobuf`` package), and checks bearer tokens the way EKS's
authenticator does (``review_token``, ``token_reviews``; ``max_token_age`` and
``token_clock`` to make tokens expire sooner); a refused token gets 401.
For pytest, add ``pytest_plugins = ["eks_async.testing.pytest_plugin"]`` to a conftest.py:
it provides ``eks_emulator`` (on a ``ManualClock``) and ``eks_client``.

Where EKS's answer is not documented, the emulator chooses (and tests hold it to):

- a ``clientRequestToken`` reused with other parameters: 400 ``InvalidRequestException``
  ("idempotency token reused with different parameters"); reused with the same ones: the
  first answer again;
- a malformed request (missing member, wrong type, size or enum value, bad query value):
  400 ``InvalidParameterException`` naming the member (``BadRequestException`` for the
  tag operations, whose model lists that instead);
- a second OIDC config on a cluster, or an Update while another runs: 409
  ``ResourceInUseException``; changing associations or configs of a cluster that is not
  ACTIVE: 400 ``InvalidRequestException``;
- a path no operation has: 404 ``UnknownOperationException``.
"""

from ._clock import Clock, ManualClock, ScaledClock
from ._config import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    DelayRange,
    Delays,
    EmulatorConfig,
    Fault,
    FaultRates,
    RateLimit,
)
from ._eks_auth import POD_AUDIENCE, pod_identity_agent_url
from ._emulator import ADMIN_PREFIX, CallCounts, EKSEmulator, Exchange
from ._kube_auth import KubernetesIdentity, TokenReview
from ._service import EMULATED_OPERATIONS
from ._signing import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from ._threaded import EmulatorServer, run_emulator_server
from ._transport import EmulatorTransport
from ._wire import EmulatorRequest, EmulatorResponse

#: The account the test credentials and unsigned requests use.
TEST_ACCOUNT_ID = DEFAULT_ACCOUNT_ID
#: The region of requests that carry no (checked) credential scope, unsigned ones among them.
TEST_REGION = DEFAULT_REGION

__all__ = [
    "ADMIN_PREFIX",
    "EMULATED_OPERATIONS",
    "POD_AUDIENCE",
    "TEST_ACCESS_KEY_ID",
    "TEST_ACCOUNT_ID",
    "TEST_REGION",
    "TEST_SECRET_ACCESS_KEY",
    "CallCounts",
    "Clock",
    "DelayRange",
    "Delays",
    "EKSEmulator",
    "EmulatorConfig",
    "EmulatorRequest",
    "EmulatorResponse",
    "EmulatorServer",
    "EmulatorTransport",
    "Exchange",
    "Fault",
    "FaultRates",
    "KubernetesIdentity",
    "ManualClock",
    "RateLimit",
    "ScaledClock",
    "TokenReview",
    "pod_identity_agent_url",
    "run_emulator_server",
]
