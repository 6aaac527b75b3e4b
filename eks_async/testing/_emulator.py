"""``EKSEmulator``: one emulated EKS endpoint, whatever carries its requests.

A request goes through the same steps however it arrives (the in-process transport, the
HTTP server): the admin API under ``/_emulator/`` is answered first; otherwise the route
is found, the signature checked, a fault decided (scripted, then seeded chance), the input
decoded and checked, the operation run against the state under a lock, and the outcome
counted and shown to listeners. A dropped connection is an answer marked ``drop``; the
carrier turns it into a closed socket or an ``httpx`` transport error.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import email.utils
import logging
import random
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._clock import Clock, ManualClock, ScaledClock
from ._config import EmulatorConfig, Fault
from ._eks_auth import (
    AGENT_PATH,
    AUTH_OPERATION,
    AUTH_PATH,
    AuthError,
    agent_error_answer,
    agent_token,
    answer_agent,
    answer_eks_auth,
    auth_error_answer,
    auth_pending_until,
    fault_error,
    token_scope,
)
from ._faults import FaultPlanner, ScriptedFault
from ._kube_auth import DEFAULT_MAX_TOKEN_AGE, KeyRecord, TokenReview
from ._service import EMULATED_OPERATIONS, CallContext, EKSService, FailUpdate
from ._signing import (
    REGION,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    SignatureVerifier,
    utc_now,
)
from ._wire import (
    EmulatorRequest,
    EmulatorResponse,
    WireError,
    decode_input,
    error_response,
    json_response,
    match_route,
)

if TYPE_CHECKING:
    from .._client import EKSClient
    from ._kube_tls import CertificateAuthority
    from ._transport import EmulatorTransport

__all__ = ["ADMIN_PREFIX", "CallCounts", "EKSEmulator", "Exchange"]

logger = logging.getLogger("eks_async.testing")

#: Requests under this path control the emulator instead of calling EKS.
ADMIN_PREFIX: Final = "/_emulator/"
UNKNOWN_OPERATION: Final = "UnknownOperation"
_OUTCOMES: Final = ("ok", "throttled", "error", "dropped")
_COUNTED: Final = (*_OUTCOMES, "rate_limited")
_FAULT_ERRORS: Final = {
    Fault.SERVER_ERROR: ("ServerException", "An internal error occurred. Try again."),
    Fault.UNAVAILABLE: (
        "ServiceUnavailableException",
        "The service is unavailable. Try again later.",
    ),
}
#: In-process, a cluster's Kubernetes API is at ``/k8s/<endpoint id>`` (``handle_kubernetes``).
_KUBE_PATH: Final = re.compile(r"/k8s/([0-9A-Za-z]{1,64})(/[^?#]*)?")
_BEARER: Final = re.compile(r"bearer", re.IGNORECASE)
#: The Content-Type of JSON answers that are not plain objects (``{version}``: theirs).
_KUBE_MEDIA: Final = {
    "Table": "application/json;as=Table;v={version};g=meta.k8s.io",
    "APIGroupDiscoveryList": "application/json;g=apidiscovery.k8s.io;v={version};"
    "as=APIGroupDiscoveryList",
}
_KEPT_REVIEWS: Final = 1000
_THROTTLE_MESSAGES: Final = {
    "ThrottlingException": "Rate exceeded",
    "TooManyRequestsException": "Too Many Requests",
}


@attrs.frozen(kw_only=True)
class CallCounts:
    """How the calls of one operation ended."""

    ok: int = 0
    throttled: int = 0
    error: int = 0
    dropped: int = 0
    #: Of the ``throttled`` calls, those refused by the rate limit (``rate_limit``).
    rate_limited: int = 0

    @property
    def total(self) -> int:
        """All calls counted: ok, throttled, error and dropped."""
        return self.ok + self.throttled + self.error + self.dropped


@attrs.frozen(kw_only=True)
class Exchange:
    """One call as the emulator answered it, for listeners (``add_listener``)."""

    #: The operation's model name, or ``"UnknownOperation"`` when no route matched.
    operation: str
    method: str
    path: str
    query: str
    #: ``ok``, ``throttled``, ``error`` or ``dropped``.
    outcome: str
    #: The injected fault, if any (none for a call the rate limit throttled).
    fault: Fault | None
    #: The answer; for a dropped call, the one that was never sent (or none, if dropped
    #: before the emulator acted: then status 0 and an empty body).
    response: EmulatorResponse


Listener = Callable[[Exchange], None]


class EKSEmulator:
    """An in-memory EKS for tests: identity operations, eventual consistency, faults, SigV4.

    ``EKSEmulator(seed=7, verify_signatures=False)`` takes ``EmulatorConfig`` fields as
    keywords, or a whole ``config=``. ``clock`` defaults to a ``ScaledClock`` running at
    ``config.time_scale``; pass a ``ManualClock`` to move time by hand. Signatures are
    checked against ``signature_clock`` (the wall clock, epoch seconds), since clients
    sign with real time. Thread-safe: the background server and a test may use it at once.

    Served over HTTP, the emulator also serves each cluster's Kubernetes API over HTTPS
    (a CA of its own, see ``kubernetes_ca_pem``); cluster tokens are checked as EKS's
    authenticator does, against ``token_clock`` (default: ``signature_clock``) and
    ``max_token_age`` (default 15 minutes, as STS allows).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        signature_clock: Callable[[], float] | None = None,
        token_clock: Callable[[], float] | None = None,
        max_token_age: float = DEFAULT_MAX_TOKEN_AGE,
        **settings: Any,
    ) -> None:
        config = config or EmulatorConfig()
        if settings:
            config = attrs.evolve(config, **settings)
        self._config = config
        self._clock: Clock = clock if clock is not None else ScaledClock(config.time_scale)
        self._signature_clock = signature_clock or utc_now
        self._lock = threading.RLock()
        self._verifier = SignatureVerifier()
        self._service = EKSService(config)
        self._faults = FaultPlanner(config.seed)
        self._counts: dict[str, dict[str, int]] = {}
        self._listeners: list[Listener] = []
        self._request_ids = random.Random(f"{config.seed}/requests")
        self._token_clock = token_clock
        self.max_token_age = max_token_age
        self._arns: dict[str, str] = {}
        self._ca: CertificateAuthority | None = None
        self._kube_binders: list[Callable[[str], str]] = []
        self._reviews: collections.deque[TokenReview] = collections.deque(maxlen=_KEPT_REVIEWS)
        #: What EKS Auth answers for a service account whose pod identity association it
        #: does not see (none, or not yet propagated: ``Delays.pod_identity_auth``):
        #: ``ResourceNotFoundException`` (404) or ``AccessDeniedException`` (400).
        self.pod_identity_missing_code = "ResourceNotFoundException"

    def __repr__(self) -> str:
        return f"EKSEmulator(seed={self._config.seed}, clock={self._clock!r})"

    # --- configuration ---------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        """The settings in force (change them with ``configure``)."""
        return self._config

    @property
    def clock(self) -> Clock:
        """The clock the emulator measures EKS time with."""
        return self._clock

    def configure(self, config: EmulatorConfig | None = None, **settings: Any) -> EmulatorConfig:
        """Change settings from now on (``EmulatorConfig`` fields as keywords); returns them.

        A new seed restarts the random sequences (ids, delays, faults) without clearing
        the state; a new time scale changes the speed of the emulator's own clock.
        """
        with self._lock:
            new = config or self._config
            if settings:
                new = attrs.evolve(new, **settings)
            self._apply(new)
            return new

    def _apply(self, new: EmulatorConfig) -> None:
        old, self._config = self._config, new
        self._service.config = new
        if new.seed != old.seed:
            self._reseed(new.seed)
        if new.time_scale != old.time_scale and isinstance(self._clock, ScaledClock):
            self._clock.time_scale = new.time_scale

    def _reseed(self, seed: int) -> None:
        self._faults.reseed(seed)
        self._request_ids = random.Random(f"{seed}/requests")
        self._service.reseed(seed)

    def reset(self, *, seed: int | None = None) -> None:
        """Forget all state, scripted faults and counts; random sequences start again."""
        with self._lock:
            if seed is not None:
                self._config = attrs.evolve(self._config, seed=seed)
                self._service.config = self._config
            seed = self._config.seed
            self._service.reset(seed)
            self._faults.reset(seed)
            self._counts.clear()
            self._request_ids = random.Random(f"{seed}/requests")
            self._reviews.clear()

    def register_credentials(
        self,
        access_key_id: str,
        secret_access_key: str,
        *,
        session_token: str | None = None,
        account_id: str | None = None,
        arn: str | None = None,
    ) -> None:
        """Accept these keys too; their requests see the state of ``account_id``.

        ``arn`` is who the key belongs to, for cluster tokens signed with it (the
        Kubernetes user name); by default ``arn:<partition>:iam::<account>:user/<key id>``.
        """
        self._verifier.register(
            access_key_id,
            secret_access_key,
            session_token=session_token,
            account_id=account_id or self._config.default_account_id,
        )
        with self._lock:
            if arn is None:
                self._arns.pop(access_key_id, None)
            else:
                self._arns[access_key_id] = arn

    def recreate_principal(self, arn: str) -> str:
        """Act as if the IAM role or user ``arn`` names was deleted and created again with
        the same name: IAM gives it a new unique id, and EKS binds access entries to that id,
        so an entry made before no longer maps the principal's callers (the API still shows
        it) until the entry is deleted and created again. The new role is also unknown to EKS
        again for ``role_propagation``. ``arn``: the role's or user's ARN, or one of its
        assumed-role sessions. Returns the new unique id (made up: ``AROA...``/``AIDA...``).
        """
        with self._lock:
            return self._service.recreate_principal(arn)

    # --- faults, counters, listeners -------------------------------------------------------

    def script(
        self,
        operation: str,
        fault: Fault | str,
        *,
        times: int = 1,
        message: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``operation`` (``"*"``: any) meet ``fault``.

        ``emulator.script("DescribeUpdate", Fault.SERVER_ERROR, times=2)`` fails the next
        two DescribeUpdate calls with 500. ``Fault.FAIL_UPDATE`` makes the Update the next
        identity provider call (or UpdateClusterConfig) starts end ``Failed`` with
        ``error_code``/``message``. ``"AssumeRoleForPodIdentity"`` names EKS Auth's calls
        (and the Pod Identity Agent's calls to it), which get EKS Auth's own errors.
        """
        entry = ScriptedFault(fault=Fault(fault), message=message, error_code=error_code)
        with self._lock:
            self._faults.script(operation, entry, times)

    def counters(self) -> dict[str, CallCounts]:
        """Calls so far, by operation and outcome (EKS Auth's and the Pod Identity Agent's
        under ``AssumeRoleForPodIdentity``)."""
        with self._lock:
            return {op: CallCounts(**counts) for op, counts in sorted(self._counts.items())}

    def calls(self, operation: str) -> CallCounts:
        """How the calls of one operation (``"DescribeCluster"``) have ended so far."""
        with self._lock:
            return CallCounts(**self._counts.get(operation, {}))

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with an ``Exchange`` after every answer (or drop)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling a listener that ``add_listener`` added."""
        with self._lock:
            self._listeners.remove(listener)

    # --- time ------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move a ``ManualClock`` forward by ``seconds`` EKS seconds."""
        if not isinstance(self._clock, ManualClock):
            raise TypeError("advance() needs the emulator to run on a ManualClock")
        self._clock.advance(seconds)

    def settle(self, *, eks_auth: bool = False) -> float:
        """Move a ``ManualClock`` to when every change so far is seen and finished; with
        ``eks_auth``, also to when EKS Auth sees every pod identity association change.

        Returns the EKS seconds it moved.
        """
        with self._lock:
            target = self._service.pending_until()
            if eks_auth:
                target = max(target, auth_pending_until(self))
        step = max(0.0, target - self._clock.monotonic())
        self.advance(step)
        return step

    # --- set-up for tests ------------------------------------------------------------------

    def add_cluster(
        self,
        name: str,
        *,
        region: str | None = None,
        account_id: str | None = None,
        active: bool = True,
        tags: Mapping[str, str] | None = None,
        authentication_mode: str = "API_AND_CONFIG_MAP",
        admin_principal: str | None = None,
    ) -> str:
        """Put a cluster in the state directly (ACTIVE at once, or CREATING); its ARN.

        ``authentication_mode``: the cluster's ``accessConfig.authenticationMode``. With
        ``API_AND_CONFIG_MAP`` (the default) or ``CONFIG_MAP``, a caller with no access
        entry may do everything on the cluster's Kubernetes API (the emulator's aws-auth
        ConfigMap maps everyone); with ``API`` only access entries let callers in.
        ``admin_principal``: an IAM user or role ARN given an access entry with
        AmazonEKSClusterAdminPolicy at once, as EKS does for a cluster's creator (none by
        default: the set-up has no creator).
        """
        if authentication_mode not in ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP"):
            raise ValueError(f"unknown authentication mode {authentication_mode!r}")
        with self._lock:
            ctx = self._context(account_id, region)
            params: dict[str, Any] = {"tags": dict(tags)} if tags else {}
            params["accessConfig"] = {
                "authenticationMode": authentication_mode,
                "bootstrapClusterCreatorAdminPermissions": admin_principal is not None,
            }
            cluster = self._service.add_cluster(
                ctx, name, params, 0.0 if active else None, creator=admin_principal
            )
            return cluster.arn

    def _context(
        self,
        account_id: str | None,
        region: str | None,
        fail_update: FailUpdate | None = None,
        caller_arn: str | None = None,
    ) -> CallContext:
        return CallContext(
            account_id=account_id or self._config.default_account_id,
            region=region or self._config.default_region,
            now=self._clock.monotonic(),
            epoch=self._clock.time(),
            fail_update=fail_update,
            caller_arn=caller_arn,
        )

    def _caller_arn(self, request: EmulatorRequest, account_id: str, region: str) -> str | None:
        """Who signed an EKS request (the key's registered ARN, or its IAM user's)."""
        from ._kube_auth import partition_of_region

        scope = self._verifier.scope(request)
        if scope is None:
            return None
        key_id = scope[0]
        return self._arns.get(key_id) or (
            f"arn:{partition_of_region(region)}:iam::{account_id}:user/{key_id}"
        )

    # --- carriers --------------------------------------------------------------------------

    def transport(self) -> EmulatorTransport:
        """An ``httpx.AsyncBaseTransport`` answering from this emulator, with no sockets."""
        from ._transport import EmulatorTransport

        return EmulatorTransport(self)

    def client(self, **kwargs: Any) -> EKSClient:
        """An ``EKSClient`` wired to this emulator in-process, with the test credentials."""
        from .._client import EKSClient

        kwargs.setdefault("region", self._config.default_region)
        kwargs.setdefault("aws_access_key_id", TEST_ACCESS_KEY_ID)
        kwargs.setdefault("aws_secret_access_key", TEST_SECRET_ACCESS_KEY)
        kwargs.setdefault("transport", self.transport())
        return EKSClient(**kwargs)

    @contextlib.asynccontextmanager
    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve over HTTP on this event loop while the block runs; yields the base URL.

        The clusters' Kubernetes APIs are served over HTTPS meanwhile (DescribeCluster
        gives each cluster's endpoint and CA).
        """
        from ._server import serve

        async with serve(self, host=host, port=port) as url:
            yield url

    # --- Kubernetes endpoints --------------------------------------------------------------

    @property
    def max_token_age(self) -> float:
        """Seconds after its ``X-Amz-Date`` that a cluster token is accepted (STS: 900)."""
        return self._max_token_age

    @max_token_age.setter
    def max_token_age(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError("max_token_age must be a positive number of seconds")
        self._max_token_age = float(seconds)

    @property
    def kubernetes_ca_pem(self) -> str:
        """The PEM of the CA that signs the Kubernetes endpoints' certificates.

        Made on first use (it needs the ``cryptography`` package); DescribeCluster hands it
        out base64-encoded as ``certificateAuthority.data`` while the endpoint is served.
        """
        return self._certificate_authority().pem.decode("ascii")

    def _certificate_authority(self) -> CertificateAuthority:
        with self._lock:
            if self._ca is None:
                from ._kube_tls import CertificateAuthority

                self._ca = CertificateAuthority()
            return self._ca

    def _kube_serving(self, binder: Callable[[str], str], *, serving: bool) -> None:
        """Note a server's Kubernetes listeners starting or stopping.

        ``binder`` gives the base URL (no path) of a cluster's listener from its endpoint
        id, opening the listener on first use. DescribeCluster points endpoints at the
        latest server still running (at fake ``*.eks.amazonaws.com`` hosts when none is).
        """
        with self._lock:
            if serving:
                self._kube_binders.append(binder)
            elif binder in self._kube_binders:
                self._kube_binders.remove(binder)
            if not self._kube_binders:
                self._service.kube_endpoint = None
                return
            ca = base64.b64encode(self._certificate_authority().pem).decode("ascii")
            latest = self._kube_binders[-1]
            self._service.kube_endpoint = lambda endpoint_id: (latest(endpoint_id), ca)

    def kubernetes_endpoints(self) -> dict[str, str]:
        """Each live cluster's Kubernetes endpoint (``https://127.0.0.1:PORT``) by name.

        Empty unless the emulator is served (``serve``, ``run_emulator_server``): each
        cluster then has a port of its own, opened on first use. Clusters of the same name
        in other regions or accounts: the last one listed wins.
        """
        with self._lock:
            if not self._kube_binders:
                return {}
            binder = self._kube_binders[-1]
            now = self._clock.monotonic()
            return {
                cluster.name: binder(cluster.endpoint_id)
                for cluster in self._service.live_clusters(now)
                if cluster.endpoint_id
            }

    def review_token(
        self,
        token: str,
        cluster_name: str,
        *,
        region: str | None = None,
    ) -> TokenReview:
        """Judge a cluster token as EKS's authenticator would, for the named cluster.

        The cluster need not exist: only its name and region matter to the check. The
        review is also kept in ``token_reviews()``.
        """
        from ._kube_auth import partition_of_region, review_token

        region = region or self._config.default_region
        partition = partition_of_region(region)

        def lookup(key_id: str) -> KeyRecord | None:
            key = self._verifier._keys.get(key_id)
            if key is None:
                return None
            arn = self._arns.get(key_id) or f"arn:{partition}:iam::{key.account_id}:user/{key_id}"
            return KeyRecord(
                secret_access_key=key.secret_access_key,
                session_token=key.session_token,
                account_id=key.account_id,
                arn=arn,
            )

        clock = self._token_clock or self._signature_clock
        review = review_token(
            token,
            cluster=cluster_name,
            region=region,
            lookup=lookup,
            now=clock(),
            max_age=self._max_token_age,
            max_skew=self._config.max_clock_skew,
        )
        with self._lock:
            self._reviews.append(review)
        if not review.authenticated:
            logger.info(
                "eks_async emulator: token refused for cluster %s: %s", cluster_name, review.reason
            )
        return review

    def token_reviews(self) -> list[TokenReview]:
        """The latest token reviews (up to 1000), oldest first."""
        with self._lock:
            return list(self._reviews)

    def handle_kubernetes(
        self, request: EmulatorRequest, *, endpoint_id: str | None = None
    ) -> EmulatorResponse:
        """Answer one request to a cluster's Kubernetes API.

        With ``endpoint_id`` (as a cluster's own listener passes it) the path is the API's
        own (``/api/v1/...``); without it, the path is ``/k8s/<endpoint id>/...``. Bodies
        and answers are JSON or Kubernetes' protobuf, as ``Content-Type`` and ``Accept``
        say (``_kube_wire``).
        """
        from ._kube_api import KubeState, status_body
        from ._kube_wire import JSON, NotAcceptable, UnsupportedBody, decode_body, negotiate

        try:
            negotiated = negotiate(request.header("accept"))
            encodings = negotiated.encodings
        except NotAcceptable:
            negotiated = None
            encodings = ("json",)

        def answer(status: int, body: dict[str, Any]) -> EmulatorResponse:
            from ._kube_wire import encode

            media = _KUBE_MEDIA.get(str(body.get("kind")), JSON).format(
                version=str(body.get("apiVersion", "")).rpartition("/")[2]
            )
            content_type, data = encode(body, encodings, media=media)
            return EmulatorResponse(
                status=status,
                headers=(("Content-Type", content_type), ("Cache-Control", "no-cache, private")),
                body=data,
            )

        not_found = status_body(404, "the server could not find the requested resource")
        if endpoint_id is None:
            matched = _KUBE_PATH.fullmatch(request.path)
            if matched is None:
                return answer(404, not_found)
            endpoint_id, rest = matched.group(1), matched.group(2) or "/"
        else:
            rest = request.path or "/"
        with self._lock:
            found = self._service.cluster_by_endpoint_id(endpoint_id, self._clock.monotonic())
            if found is not None and found[2].status(self._clock.monotonic()) != "ACTIVE":
                found = None
        if found is None:
            return answer(404, not_found)
        _, region, cluster = found

        unauthorized = status_body(401, "Unauthorized")
        scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
        token = token.strip().split(" ")[0] if token.strip() else ""
        if not _BEARER.fullmatch(scheme) or not token:
            return answer(401, unauthorized)
        review = self.review_token(token, cluster.name, region=region)
        if not review.authenticated or review.identity is None:
            return answer(401, unauthorized)
        identity, grant = review.identity, None
        with self._lock:
            mode = cluster.mode(self._clock.monotonic())
            mapped = (
                None
                if mode == "CONFIG_MAP"
                else self._service.kube_access(cluster, identity.arn, self._clock.monotonic())
            )
        if mapped is None and mode == "API":
            logger.info(
                "eks_async emulator: no access entry for %s on cluster %s",
                identity.arn,
                cluster.name,
            )
            return answer(401, unauthorized)
        if mapped is not None:
            from ._access import expand_username
            from ._kube_auth import AUTHENTICATED_GROUP

            entry, grant = mapped
            identity = attrs.evolve(
                identity,
                username=expand_username(
                    entry["username"], identity.arn, identity.account_id, identity.access_key_id
                ),
                groups=(*entry["kubernetesGroups"], AUTHENTICATED_GROUP),
            )
        if negotiated is None:
            accept = (request.header("accept") or "")[:200]
            return answer(
                406,
                status_body(
                    406,
                    f"only the following media types are accepted: "
                    f"application/json, "
                    f"application/vnd.kubernetes.protobuf (not {accept})",
                ),
            )
        try:
            body = decode_body(request.body, request.header("content-type"))
        except UnsupportedBody as exc:
            return answer(exc.code, status_body(exc.code, str(exc)))

        with self._lock:
            if cluster.kube is None:
                cluster.kube = KubeState(
                    seed=f"{self._config.seed}/kube/{endpoint_id}",
                    created=cluster.created_at,
                    version=str(cluster.static.get("version", "1.33")),
                    issuer=cluster.issuer,
                )
            status, out = cluster.kube.handle(
                request.method,
                rest,
                request.query,
                body,
                JSON,
                identity,
                self._clock.time(),
                table=negotiated.table,
                discovery=negotiated.discovery,
                grant=grant,
            )
        return answer(status, out)

    # --- one request -----------------------------------------------------------------------

    async def handle(self, request: EmulatorRequest) -> EmulatorResponse:
        """Answer one request (never raises for anything a client sends)."""
        if request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/"):
            from ._admin import handle_admin

            return handle_admin(self, request)
        if request.path == AGENT_PATH:
            return await self._handle_agent(request)
        with self._lock:
            request_id = str(uuid.UUID(int=self._request_ids.getrandbits(128), version=4))
        auth = AUTH_PATH.fullmatch(request.path)
        if auth is not None:
            return await self._handle_eks_auth(request, auth.group(1), request_id)
        matched = match_route(request.method, request.path)
        op_name = matched[0].op.name if matched is not None else UNKNOWN_OPERATION
        try:
            account_id, region = self._identify(request)
        except WireError as exc:
            return self._finish(op_name, request, error_response(exc, request_id), "error")
        if matched is None:
            error = WireError(
                "UnknownOperationException",
                f"eks_async emulator: no EKS operation is at {request.method[:10]} "
                f"{request.path[:200]}",
            )
            return self._finish(op_name, request, error_response(error, request_id), "error")
        route, labels = matched

        with self._lock:  # the rate limit first: a refused call is not acted on
            admitted = self._faults.buckets.admit(
                self._config.rate_limit, account_id, region, op_name, self._clock.monotonic()
            )
            throttle_code = self._config.throttle_code
        if not admitted:
            error = WireError(throttle_code, _THROTTLE_MESSAGES[throttle_code])
            return self._finish(op_name, request, error_response(error, request_id), "throttled")
        with self._lock:
            decision = self._faults.decide(op_name, self._config.rates_for(op_name))
            throttle_code = self._config.throttle_code
        if decision.latency > 0:
            await self._clock.sleep(decision.latency)
        fault = decision.fault
        if fault is Fault.THROTTLE:
            message = decision.message or _THROTTLE_MESSAGES[throttle_code]
            response = error_response(WireError(throttle_code, message), request_id)
            return self._finish(op_name, request, response, "throttled", fault)
        if fault in _FAULT_ERRORS:
            assert fault is not None
            code, default_message = _FAULT_ERRORS[fault]
            error = WireError(code, decision.message or default_message)
            return self._finish(op_name, request, error_response(error, request_id), "error", fault)
        if fault is Fault.DROP_BEFORE:
            response = EmulatorResponse(status=0, headers=(), body=b"", drop=True)
            return self._finish(op_name, request, response, "dropped", fault)

        outcome = "ok"
        with self._lock:
            ctx = self._context(
                account_id,
                region,
                decision.fail_update,
                self._caller_arn(request, account_id, region),
            )
            try:
                if op_name not in EMULATED_OPERATIONS:
                    raise WireError(
                        "InvalidRequestException",
                        f"eks_async emulator: operation {op_name} is not emulated",
                    )
                params = decode_input(route, labels, request.query, request.body)
                result = self._service.call(op_name, ctx, params)
                response = json_response(200, result, request_id)
            except WireError as exc:
                response = error_response(exc, request_id)
                outcome = "error"
            except Exception:  # a bug of the emulator: still answer as EKS would
                logger.exception("eks_async emulator: %s failed", op_name)
                error = WireError("ServerException", "eks_async emulator: internal error")
                response = error_response(error, request_id)
                outcome = "error"
        if fault is Fault.DROP_AFTER:
            response = attrs.evolve(response, drop=True)
            outcome = "dropped"
        return self._finish(op_name, request, response, outcome, fault)

    def _identify(self, request: EmulatorRequest, service: str = "eks") -> tuple[str, str]:
        """``(account, region)`` of the caller; checks the signature (for ``service``) when
        configured to."""
        config = self._config
        if config.verify_signatures:
            return self._verifier.verify(
                request,
                now=self._signature_clock(),
                max_skew=config.max_clock_skew,
                service=service,
            )
        scope = self._verifier.scope(request)
        if scope is None:
            return config.default_account_id, config.default_region
        key_id, region = scope
        account = self._verifier.account_of(key_id) or config.default_account_id
        return account, region if REGION.fullmatch(region) else config.default_region

    async def _handle_eks_auth(
        self, request: EmulatorRequest, cluster_name: str, request_id: str
    ) -> EmulatorResponse:
        """One EKS Auth call: the signature (for ``eks-auth``), then as ``_auth_call``."""
        try:
            account_id, region = self._identify(request, service="eks-auth")
        except WireError as exc:
            response = auth_error_answer(AuthError(exc.code, exc.message, exc.status), request_id)
            return self._finish(AUTH_OPERATION, request, response, "error")
        return await self._auth_call(
            request,
            account_id,
            region,
            lambda: answer_eks_auth(self, request, cluster_name, request_id, account_id, region),
            lambda error: auth_error_answer(error, request_id),
        )

    async def _handle_agent(self, request: EmulatorRequest) -> EmulatorResponse:
        """One request to the Pod Identity Agent: a request with a token is the agent's
        call to EKS Auth (for the account and region of the cluster that made the token)."""
        token = agent_token(request)
        if not isinstance(token, str):
            return token
        scope = token_scope(self, token)
        account_id, region = scope or (
            self._config.default_account_id,
            self._config.default_region,
        )
        return await self._auth_call(
            request, account_id, region, lambda: answer_agent(self, token), agent_error_answer
        )

    async def _auth_call(
        self,
        request: EmulatorRequest,
        account_id: str,
        region: str,
        act: Callable[[], EmulatorResponse],
        refuse: Callable[[AuthError], EmulatorResponse],
    ) -> EmulatorResponse:
        """A call of EKS Auth's ``AssumeRoleForPodIdentity`` through the rate limit and the
        faults as an EKS call goes (with EKS Auth's own errors), counted under that name."""
        op_name = AUTH_OPERATION
        with self._lock:
            admitted = self._faults.buckets.admit(
                self._config.rate_limit, account_id, region, op_name, self._clock.monotonic()
            )
        if not admitted:
            response = refuse(fault_error(Fault.THROTTLE))
            return self._finish(op_name, request, response, "throttled")
        with self._lock:
            decision = self._faults.decide(op_name, self._config.rates_for(op_name))
        if decision.latency > 0:
            await self._clock.sleep(decision.latency)
        fault = decision.fault
        if fault is Fault.THROTTLE:
            response = refuse(fault_error(fault, decision.message))
            return self._finish(op_name, request, response, "throttled", fault)
        if fault is Fault.SERVER_ERROR or fault is Fault.UNAVAILABLE:
            response = refuse(fault_error(fault, decision.message))
            return self._finish(op_name, request, response, "error", fault)
        if fault is Fault.DROP_BEFORE:
            response = EmulatorResponse(status=0, headers=(), body=b"", drop=True)
            return self._finish(op_name, request, response, "dropped", fault)
        response = act()
        outcome = "ok" if response.status == 200 else "error"
        if fault is Fault.DROP_AFTER:
            response = attrs.evolve(response, drop=True)
            outcome = "dropped"
        return self._finish(op_name, request, response, outcome, fault)

    def _finish(
        self,
        op_name: str,
        request: EmulatorRequest,
        response: EmulatorResponse,
        outcome: str,
        fault: Fault | None = None,
    ) -> EmulatorResponse:
        if not response.drop:
            # AWS dates every answer; clients correct their clock skew from it.
            date = email.utils.formatdate(self._signature_clock(), usegmt=True)
            response = attrs.evolve(response, headers=(*response.headers, ("Date", date)))
        with self._lock:
            counts = self._counts.setdefault(op_name, dict.fromkeys(_COUNTED, 0))
            counts[outcome] += 1
            if outcome == "throttled" and fault is None:  # by the rate limit
                counts["rate_limited"] += 1
            listeners = list(self._listeners)
        if listeners:
            exchange = Exchange(
                operation=op_name,
                method=request.method,
                path=request.path,
                query=request.query,
                outcome=outcome,
                fault=fault,
                response=response,
            )
            for listener in listeners:
                try:
                    listener(exchange)
                except Exception:
                    logger.exception("eks_async emulator: a listener failed")
        return response

    # --- for the admin API -----------------------------------------------------------------

    def _admin_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "config": self._config.to_json(),
                "clock": {"kind": type(self._clock).__name__, "now": self._clock.monotonic()},
                "scripted": self._faults.pending(),
            }
