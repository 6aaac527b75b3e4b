"""EKS Auth and the Pod Identity Agent, as the emulator serves them.

EKS Auth (SigV4 service ``eks-auth``) has one operation,
``POST /clusters/{clusterName}/assume-role-for-pod-identity``: it trades a service
account's token (from the cluster's TokenRequest, audience ``pods.eks.amazonaws.com``) for
credentials of the role a pod identity association gives that service account. The
emulator serves it at its own URL next to EKS (the path is not an EKS one), so
``EKSAuthClient(endpoint_url=emulator_url)`` and the in-process transport both reach it;
with ``verify_signatures`` the request must be signed for ``eks-auth``.

An association reaches EKS Auth ``Delays.pod_identity_auth`` after Describe sees it (a
draw per change of the association). Until then, and for a service account with no
association, EKS Auth answers ``EKSEmulator.pod_identity_missing_code``:
``ResourceNotFoundException`` (404) by default, or ``AccessDeniedException``; EKS does not
document which (EKS-FACTS, "EKS Auth").

The Pod Identity Agent's endpoint, ``GET /v1/credentials`` with the token as the
``Authorization`` header, answers what an SDK's container credential provider reads
(``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``AccountId``, ``Expiration``) after the
same checks; a missing header is 400, a refusal the status of EKS Auth's error.

Both are counted, throttled and faulted as the operation ``AssumeRoleForPodIdentity``
(``EKSEmulator.calls``, ``script``, ``operation_faults``, ``RateLimit.per_operation``): an
agent request is the agent's call to EKS Auth. A fault gets EKS Auth's own error
(``ThrottlingException``, ``InternalServerException``, ``ServiceUnavailableException``); the
agent answers it with that error's status. The rate limit gives EKS Auth a bucket of its
own (a service of its own), per account and region.

The credentials handed out are fresh, random, and registered with the emulator, so
requests signed with them are accepted. They are secrets: nothing here logs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import string
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._config import DelayRange, Fault
from ._wire import EmulatorRequest, EmulatorResponse

if TYPE_CHECKING:
    from ._emulator import EKSEmulator
    from ._service import _Association, _Cluster

__all__ = [
    "AGENT_PATH",
    "AUTH_OPERATION",
    "AUTH_PATH",
    "POD_AUDIENCE",
    "agent_error_answer",
    "agent_token",
    "answer_agent",
    "answer_eks_auth",
    "auth_error_answer",
    "fault_error",
    "pod_identity_agent_url",
    "token_scope",
]

AUTH_PATH: Final = re.compile(r"/clusters/([^/]+)/assume-role-for-pod-identity")
AGENT_PATH: Final = "/v1/credentials"
#: The audience of the service account tokens EKS Auth accepts (the Pod Identity Agent's).
POD_AUDIENCE: Final = "pods.eks.amazonaws.com"
SIGNING_NAME: Final = "eks-auth"
#: How long the credentials EKS Auth hands out last (6 hours, as Pod Identity's do).
CREDENTIAL_SECONDS: Final = 6 * 3600
logger = logging.getLogger("eks_async.testing")
_NAMESPACE: Final = "http://internal.amazon.com/coral/com.amazonaws.eksauth.v20231126/"
#: EKS Auth's error codes and their HTTP status (botocore's ``eks-auth`` model).
ERROR_STATUS: Final = {
    "AccessDeniedException": 400,
    "ExpiredTokenException": 400,
    "InternalServerException": 500,
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "InvalidTokenException": 400,
    "ResourceNotFoundException": 404,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
}
#: The codes ``EKSEmulator.pod_identity_missing_code`` may take.
MISSING_CODES: Final = ("ResourceNotFoundException", "AccessDeniedException")
#: EKS Auth's one operation: the name its calls (and the agent's) are counted and faulted as.
AUTH_OPERATION: Final = "AssumeRoleForPodIdentity"
#: What an injected fault answers, in EKS Auth's own errors (it has no ServerException).
_FAULT_ERRORS: Final = {
    Fault.THROTTLE: ("ThrottlingException", "Rate exceeded"),
    Fault.SERVER_ERROR: ("InternalServerException", "An internal error occurred. Try again."),
    Fault.UNAVAILABLE: (
        "ServiceUnavailableException",
        "The service is unavailable. Try again later.",
    ),
}


class AuthError(Exception):
    """An EKS Auth error answer."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)


@attrs.frozen(kw_only=True)
class _Claims:
    namespace: str
    service_account: str
    subject: str


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims(token: str, cluster: _Cluster, now: float) -> _Claims | None:
    """The token's service account if ``cluster`` signed it; raises for a bad one.

    ``None``: not this cluster's token (another cluster may have made it).
    """
    kube = cluster.kube
    parts = token.split(".")
    if kube is None or len(parts) != 3:
        return None
    key: bytes = kube._token_key
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"), hashlib.sha256)
    try:
        given = _b64(parts[2])
        payload = json.loads(_b64(parts[1]))
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(expected.digest(), given) or not isinstance(payload, dict):
        return None
    if payload.get("iss") != cluster.issuer:
        raise AuthError("InvalidTokenException", "The token's issuer is not the cluster's.")
    audiences = payload.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or POD_AUDIENCE not in audiences:
        raise AuthError("InvalidTokenException", f"The token's audience is not {POD_AUDIENCE}.")
    expires = payload.get("exp")
    if not isinstance(expires, int | float) or expires <= now:
        raise AuthError("ExpiredTokenException", "The token has expired.")
    identity = payload.get("kubernetes.io") or {}
    namespace = identity.get("namespace") if isinstance(identity, dict) else None
    account = identity.get("serviceaccount") if isinstance(identity, dict) else None
    name = account.get("name") if isinstance(account, dict) else None
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise AuthError("InvalidTokenException", "The token is not a service account's.")
    return _Claims(namespace=namespace, service_account=name, subject=str(payload.get("sub", "")))


def _invalid_token() -> AuthError:
    return AuthError("InvalidTokenException", "The token is not valid.")


def _auth_view(
    assoc: _Association, delay: DelayRange, seed: int, now: float
) -> dict[str, Any] | None:
    """What EKS Auth sees of an association at ``now``: each change ``delay`` after
    Describe sees it (a draw per change, the same every time), never out of order."""
    seen: dict[str, Any] | None = None
    last = float("-inf")
    for index, (visible_from, snapshot) in enumerate(assoc.versions):
        rng = random.Random(f"{seed}/eks-auth/{assoc.id}/{index}")
        last = max(last, visible_from + delay.draw(rng))
        if last > now:
            break
        seen = snapshot
    return seen


def auth_pending_until(emulator: EKSEmulator) -> float:
    """When EKS Auth sees every association change made so far (for ``settle``)."""
    config = emulator._config
    until = 0.0
    for region in emulator._service._regions.values():
        for cluster in region.clusters.values():
            for assoc in cluster.associations.values():
                last = float("-inf")
                for index, (visible_from, _snapshot) in enumerate(assoc.versions):
                    rng = random.Random(f"{config.seed}/eks-auth/{assoc.id}/{index}")
                    last = max(last, visible_from + config.delays.pod_identity_auth.draw(rng))
                until = max(until, last)
    return until


def _association(
    emulator: EKSEmulator, cluster: _Cluster, claims: _Claims, now: float
) -> dict[str, Any]:
    config = emulator._config
    for assoc in list(cluster.associations.values()):
        if (assoc.namespace, assoc.service_account) != (claims.namespace, claims.service_account):
            continue
        view = _auth_view(assoc, config.delays.pod_identity_auth, config.seed, now)
        if view is not None:
            return view
    code = emulator.pod_identity_missing_code
    if code == "AccessDeniedException":
        raise AuthError(
            code,
            f"The service account {claims.namespace}/{claims.service_account} is not "
            f"authorized to assume a role in cluster {cluster.name}.",
        )
    raise AuthError(
        "ResourceNotFoundException",
        f"No Pod Identity Association found for service account "
        f"{claims.namespace}/{claims.service_account} in cluster {cluster.name}.",
    )


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _assume(
    emulator: EKSEmulator, cluster: _Cluster, claims: _Claims, association: dict[str, Any]
) -> dict[str, Any]:
    """EKS Auth's answer: fresh credentials for the association's role, registered."""
    role_arn: str = association.get("targetRoleArn") or association["roleArn"]
    partition, account_id = role_arn.split(":")[1], role_arn.split(":")[4]
    role_name = role_arn.rpartition("/")[2]
    session = (
        f"eks-{cluster.name}-{claims.service_account}"[:54]
        + "-"
        + _random(string.ascii_lowercase + string.digits, 8)
    )
    assumed_arn = f"arn:{partition}:sts::{account_id}:assumed-role/{role_name}/{session}"
    key_id = "ASIA" + _random(string.ascii_uppercase + string.digits, 16)
    secret = _random(string.ascii_letters + string.digits + "+/", 40)
    token = base64.b64encode(secrets.token_bytes(120)).decode("ascii")
    emulator.register_credentials(
        key_id, secret, session_token=token, account_id=account_id, arn=assumed_arn
    )
    expires = int(emulator._signature_clock()) + CREDENTIAL_SECONDS
    role_id = "AROA" + hashlib.sha256(role_arn.encode()).hexdigest()[:17].upper()
    return {
        "subject": {"namespace": claims.namespace, "serviceAccount": claims.service_account},
        "audience": POD_AUDIENCE,
        "podIdentityAssociation": {
            "associationArn": association["associationArn"],
            "associationId": association["associationId"],
        },
        "assumedRoleUser": {"arn": assumed_arn, "assumeRoleId": f"{role_id}:{session}"},
        "credentials": {
            "sessionToken": token,
            "secretAccessKey": secret,
            "accessKeyId": key_id,
            "expiration": expires,
        },
    }


def _clusters(emulator: EKSEmulator, now: float) -> Iterable[_Cluster]:
    for region in list(emulator._service._regions.values()):
        for cluster in list(region.clusters.values()):
            if cluster.status(now) == "ACTIVE":
                yield cluster


def _credentials_for(
    emulator: EKSEmulator, clusters: Iterable[_Cluster], token: str
) -> dict[str, Any]:
    now, epoch = emulator._clock.monotonic(), emulator._clock.time()
    for cluster in clusters:
        claims = _claims(token.strip(), cluster, epoch)
        if claims is not None:
            association = _association(emulator, cluster, claims, now)
            return _assume(emulator, cluster, claims, association)
    raise _invalid_token()


def fault_error(fault: Fault, message: str | None = None) -> AuthError:
    """EKS Auth's error for an injected ``fault`` (throttle, server error, unavailable)."""
    code, default = _FAULT_ERRORS[fault]
    return AuthError(code, message or default)


def auth_error_answer(error: AuthError, request_id: str) -> EmulatorResponse:
    """An EKS Auth error answer, as botocore's ``eks-auth`` model reads it."""
    return _answer(error.status, {"message": error.message}, request_id, error.code)


def _answer(
    status: int, body: dict[str, Any], request_id: str, code: str | None = None
) -> EmulatorResponse:
    headers: tuple[tuple[str, str], ...] = (
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
    )
    if code is not None:
        headers = (*headers, ("x-amzn-ErrorType", f"{code}:{_NAMESPACE}"))
    return EmulatorResponse(
        status=status, headers=headers, body=json.dumps(body, separators=(",", ":")).encode()
    )


def answer_eks_auth(
    emulator: EKSEmulator,
    request: EmulatorRequest,
    cluster_name: str,
    request_id: str,
    account_id: str,
    region: str,
) -> EmulatorResponse:
    """Answer ``AssumeRoleForPodIdentity`` for ``cluster_name`` (the label as sent), for a
    caller of ``account_id`` in ``region`` (signature already checked)."""
    from urllib.parse import unquote

    try:
        if request.method != "POST":
            raise AuthError("InvalidRequestException", "AssumeRoleForPodIdentity is a POST.")
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise AuthError("InvalidRequestException", "The body is not JSON.") from None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("InvalidParameterException", "token is required.")
        name = unquote(cluster_name)
        with emulator._lock:
            now = emulator._clock.monotonic()
            state = emulator._service._regions.get((account_id, region))
            found = state.clusters.get(name) if state is not None else None
            if found is None or found.status(now) != "ACTIVE":
                raise AuthError(
                    "ResourceNotFoundException", f"No cluster found for name: {name[:100]}."
                )
            result = _credentials_for(emulator, [found], token)
    except AuthError as exc:
        logger.info("eks_async emulator: EKS Auth refused a token: %s", exc.code)
        return auth_error_answer(exc, request_id)
    return _answer(200, result, request_id)


_AGENT_HEADERS: Final = (("Content-Type", "application/json"),)


def agent_error_answer(error: AuthError) -> EmulatorResponse:
    """The agent's refusal: the status of EKS Auth's error, its code and message."""
    body = json.dumps({"Code": error.code, "Message": error.message}).encode()
    return EmulatorResponse(status=error.status, headers=_AGENT_HEADERS, body=body)


def agent_token(request: EmulatorRequest) -> EmulatorResponse | str:
    """The token of an agent request, or the agent's answer to a request that has none
    (it never reaches EKS Auth)."""

    def refuse(status: int, code: str, message: str) -> EmulatorResponse:
        body = json.dumps({"Code": code, "Message": message}).encode()
        return EmulatorResponse(status=status, headers=_AGENT_HEADERS, body=body)

    if request.method != "GET":
        return refuse(405, "MethodNotAllowed", "only GET is served")
    token = (request.header("authorization") or "").strip()
    if not token:
        return refuse(400, "InvalidRequest", "Authorization header is required")
    return token


def token_scope(emulator: EKSEmulator, token: str) -> tuple[str, str] | None:
    """``(account, region)`` of the cluster that made ``token`` (the agent's call to EKS Auth
    is made there), or ``None`` when no cluster did."""
    epoch = emulator._clock.time()
    with emulator._lock:
        for key, state in list(emulator._service._regions.items()):
            for cluster in list(state.clusters.values()):
                try:
                    if _claims(token, cluster, epoch) is None:
                        continue
                except AuthError:
                    pass  # this cluster's token, refused later
                return key
    return None


def answer_agent(emulator: EKSEmulator, token: str) -> EmulatorResponse:
    """Answer the Pod Identity Agent's ``GET /v1/credentials`` for ``token``, as the agent
    does once it has asked EKS Auth."""
    try:
        with emulator._lock:
            now = emulator._clock.monotonic()
            answer = _credentials_for(emulator, list(_clusters(emulator, now)), token)
    except AuthError as exc:
        logger.info("eks_async emulator: the Pod Identity Agent refused a token: %s", exc.code)
        return agent_error_answer(exc)
    credentials = answer["credentials"]
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(credentials["expiration"]))
    out = {
        "AccessKeyId": credentials["accessKeyId"],
        "SecretAccessKey": credentials["secretAccessKey"],
        "Token": credentials["sessionToken"],
        "AccountId": answer["assumedRoleUser"]["arn"].split(":")[4],
        "Expiration": expires,
    }
    return EmulatorResponse(status=200, headers=_AGENT_HEADERS, body=json.dumps(out).encode())


def pod_identity_agent_url(emulator_url: str) -> str:
    """The Pod Identity Agent's URL on a served emulator, for
    ``AWS_CONTAINER_CREDENTIALS_FULL_URI``: ``http://127.0.0.1:PORT/v1/credentials``."""
    return emulator_url.rstrip("/") + AGENT_PATH
