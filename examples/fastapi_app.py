"""A small FastAPI service that manages EKS Pod Identity associations with eks_async.

Run it with ``uvicorn examples.fastapi_app:app`` (region and credentials come from the
environment, as for any AWS SDK). What it shows:

- one ``EKSClient`` for the whole process, opened when the app starts and closed when it
  stops (the lifespan), handed to the endpoints through a dependency. One client shares
  one connection pool and one retry quota across every request the app serves;
- a create that answers only once the association can be read back: EKS creates an
  association at once but Describe and List may not show it for a few seconds, so a
  caller that lists right after a plain create can miss what it just made. The endpoint
  waits with ``eks.waiters.pod_identity_association_visible`` and answers 201 when the
  association is visible, or 202 when it exists but did not show within the wait;
- EKS's errors turned into HTTP answers a caller can act on (see ``http_status_for``).

Tests build the app with ``create_app(client_factory=...)`` to talk to the emulator of
``eks_async.testing`` instead of AWS, and may pass a ``WaiterConfig`` that runs in the
emulator's time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Final

import attrs
from fastapi import Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from eks_async import (
    EKSAsyncError,
    EKSClient,
    InvalidParameterException,
    InvalidRequestException,
    ParamValidationError,
    PodIdentityAssociation,
    PodIdentityAssociationSummary,
    ResourceInUseException,
    ResourceNotFoundException,
    RetryConfig,
    ServiceError,
    TimeoutError_,
    TransportError,
    WaiterConfig,
    WaiterError,
    WaiterTimeoutError,
)

__all__ = [
    "Association",
    "AssociationList",
    "AssociationSummary",
    "CreateAssociation",
    "ErrorBody",
    "app",
    "create_app",
    "http_status_for",
]

#: How long a create waits for its association to show: EKS usually takes a few seconds.
DEFAULT_VISIBILITY_WAIT: Final = WaiterConfig(min_delay=1.0, max_delay=5.0, max_wait=60.0)

#: Error codes EKS (and AWS front ends) use for "slow down"; 429 means the same.
_THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded"}
)


# --- request and response bodies ------------------------------------------------------------


class CreateAssociation(BaseModel):
    """The body of a create: which service account gets which IAM role.

    The values are checked by EKS (and by eks_async before sending), not here, so that
    the app accepts exactly what EKS accepts.
    """

    model_config = ConfigDict(extra="forbid")

    namespace: str
    service_account: str
    role_arn: str


class Association(BaseModel):
    """One Pod Identity association as EKS describes it."""

    association_id: str
    association_arn: str
    cluster_name: str
    namespace: str
    service_account: str
    role_arn: str
    target_role_arn: str | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    #: False when the association exists but Describe/List did not show it yet (HTTP 202).
    visible: bool = True

    @classmethod
    def from_eks(cls, assoc: PodIdentityAssociation | None, *, visible: bool) -> Association:
        if assoc is None:
            raise RuntimeError("EKS answered without an association")
        return cls(
            association_id=_present(assoc.association_id, "associationId"),
            association_arn=_present(assoc.association_arn, "associationArn"),
            cluster_name=_present(assoc.cluster_name, "clusterName"),
            namespace=_present(assoc.namespace, "namespace"),
            service_account=_present(assoc.service_account, "serviceAccount"),
            role_arn=_present(assoc.role_arn, "roleArn"),
            target_role_arn=assoc.target_role_arn,
            created_at=assoc.created_at,
            modified_at=assoc.modified_at,
            visible=visible,
        )


class AssociationSummary(BaseModel):
    """One line of a listing (EKS's summary carries no role ARN)."""

    association_id: str
    association_arn: str
    cluster_name: str
    namespace: str
    service_account: str

    @classmethod
    def from_eks(cls, summary: PodIdentityAssociationSummary) -> AssociationSummary:
        return cls(
            association_id=_present(summary.association_id, "associationId"),
            association_arn=_present(summary.association_arn, "associationArn"),
            cluster_name=_present(summary.cluster_name, "clusterName"),
            namespace=_present(summary.namespace, "namespace"),
            service_account=_present(summary.service_account, "serviceAccount"),
        )


class AssociationList(BaseModel):
    """Every association of a cluster that matches the filters, across all pages."""

    associations: list[AssociationSummary]


class ErrorBody(BaseModel):
    """What the app answers when EKS or the client refused a request."""

    code: str
    message: str
    #: EKS's request id, for a support case; absent when nothing reached EKS.
    request_id: str | None = None
    #: How many attempts the client made before giving up.
    attempts: int | None = None


def _present(value: str | None, name: str) -> str:
    if value is None:
        raise RuntimeError(f"EKS answered without {name}")
    return value


# --- errors ---------------------------------------------------------------------------------


def is_throttling(error: EKSAsyncError) -> bool:
    """Whether EKS asked the caller to slow down (the client retried, then gave up)."""
    return isinstance(error, ServiceError) and (
        error.http_status == 429 or error.code in _THROTTLING_CODES
    )


def http_status_for(error: EKSAsyncError) -> int:
    """The HTTP status this app answers for an error of eks_async.

    Bad input is 422 wherever it was caught (FastAPI's own validation, eks_async before
    sending, or EKS's ``InvalidParameterException``), so callers see one status for "fix
    your request". Conflicts with what exists are 409, a missing cluster or association
    404, throttling that outlasted the client's retries 503 (try again later), and every
    other failure of EKS or of the network 502 (504 for timeouts): not the caller's fault.
    """
    if isinstance(error, ParamValidationError | InvalidParameterException):
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    if isinstance(error, ResourceNotFoundException):
        return status.HTTP_404_NOT_FOUND
    # InvalidRequestException: the cluster is not ACTIVE (still creating, or deleting).
    if isinstance(error, ResourceInUseException | InvalidRequestException):
        return status.HTTP_409_CONFLICT
    if is_throttling(error):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    if isinstance(error, TimeoutError_ | WaiterTimeoutError):
        return status.HTTP_504_GATEWAY_TIMEOUT
    if isinstance(error, ServiceError | TransportError | WaiterError):
        return status.HTTP_502_BAD_GATEWAY
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def _error_body(error: EKSAsyncError) -> ErrorBody:
    if isinstance(error, ServiceError):
        return ErrorBody(
            code=error.code,
            message=error.message or error.code,
            request_id=error.request_id,
            attempts=error.attempts,
        )
    return ErrorBody(code=type(error).__name__.rstrip("_"), message=str(error))


async def _on_eks_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, EKSAsyncError):  # pragma: no cover - registered for these only
        raise exc
    code = http_status_for(exc)
    headers = {"Retry-After": "1"} if code == status.HTTP_503_SERVICE_UNAVAILABLE else None
    return JSONResponse(_error_body(exc).model_dump(), status_code=code, headers=headers)


# --- the app --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Settings:
    client_factory: Callable[[], EKSClient]
    visibility_wait: WaiterConfig


def _client_from_environment() -> EKSClient:
    # Region, credentials and endpoint as every AWS SDK finds them; a few more attempts
    # than the default, since a web request would rather wait a little than fail.
    return EKSClient(retry=RetryConfig(max_attempts=5))


def _eks(request: Request) -> EKSClient:
    eks = getattr(request.app.state, "eks", None)
    if not isinstance(eks, EKSClient):
        raise RuntimeError("the EKS client is opened by the app's lifespan, which did not run")
    return eks


def _settings(request: Request) -> _Settings:
    settings = request.app.state.settings
    assert isinstance(settings, _Settings)
    return settings


EKS = Annotated[EKSClient, Depends(_eks)]
Settings = Annotated[_Settings, Depends(_settings)]
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorBody}
    for code in (404, 409, status.HTTP_422_UNPROCESSABLE_CONTENT, 502, 503, 504)
}


def create_app(
    client_factory: Callable[[], EKSClient] | None = None,
    *,
    visibility_wait: WaiterConfig | None = None,
) -> FastAPI:
    """Build the app.

    ``client_factory`` makes the one ``EKSClient`` the app uses (default: from the
    environment); the lifespan opens it at start-up and closes it at shutdown.
    ``visibility_wait`` paces the wait for a new association to show (a test passes one
    that runs on the emulator's clock).
    """
    settings = _Settings(
        client_factory=client_factory or _client_from_environment,
        visibility_wait=visibility_wait or DEFAULT_VISIBILITY_WAIT,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with settings.client_factory() as eks:
            app.state.eks = eks
            try:
                yield
            finally:
                del app.state.eks

    app = FastAPI(title="Pod Identity associations", lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(EKSAsyncError, _on_eks_error)

    @app.post(
        "/clusters/{cluster}/pod-identity-associations",
        status_code=status.HTTP_201_CREATED,
        responses={202: {"model": Association}, **_ERRORS},
    )
    async def create_association(
        cluster: str, body: CreateAssociation, eks: EKS, cfg: Settings, response: Response
    ) -> Association:
        """Create an association; 201 once List and Describe show it, 202 if not yet."""
        created = await eks.create_pod_identity_association(
            cluster_name=cluster,
            namespace=body.namespace,
            service_account=body.service_account,
            role_arn=body.role_arn,
        )
        new = created.association
        association_id = _present(new.association_id if new else None, "associationId")
        try:
            seen = await eks.waiters.pod_identity_association_visible(
                cluster_name=cluster, association_id=association_id, config=cfg.visibility_wait
            )
        except WaiterTimeoutError:
            # It exists (a retry would get 409); EKS just has not shown it yet.
            response.status_code = status.HTTP_202_ACCEPTED
            return Association.from_eks(new, visible=False)
        return Association.from_eks(seen.association, visible=True)

    @app.get("/clusters/{cluster}/pod-identity-associations", responses=_ERRORS)
    async def list_associations(
        cluster: str,
        eks: EKS,
        namespace: Annotated[str | None, Query()] = None,
        service_account: Annotated[str | None, Query()] = None,
    ) -> AssociationList:
        """The cluster's associations, optionally only one namespace / service account."""
        pages = eks.paginate.list_pod_identity_associations(
            cluster_name=cluster, namespace=namespace, service_account=service_account
        )
        return AssociationList(associations=[AssociationSummary.from_eks(s) async for s in pages])

    return app


#: The app as ``uvicorn examples.fastapi_app:app`` serves it (client from the environment).
app = create_app()
