"""A small Kubernetes API for each emulated cluster: namespaces and service accounts.

Enough for the identity workflow (create the ServiceAccount, then its pod identity
association) and for clients such as kubernetes_asyncio and kubectl to talk to: objects
and lists as the API server writes them (``kind``, ``apiVersion``, ``metadata`` with
``uid``, ``resourceVersion`` and ``creationTimestamp``), and ``Status`` objects for errors
(400 BadRequest, 401 Unauthorized, 404 NotFound, 405 MethodNotAllowed, 409 AlreadyExists,
415, 422 Invalid). A new cluster has the namespaces ``default``, ``kube-node-lease``,
``kube-public`` and ``kube-system``, each with its ``default`` service account.

Routes (below the cluster's endpoint):

- ``GET /version``
- ``GET|POST /api/v1/namespaces``, ``GET /api/v1/namespaces/{ns}``
- ``GET /api/v1/serviceaccounts`` (all namespaces)
- ``GET|POST /api/v1/namespaces/{ns}/serviceaccounts``
- ``GET|PUT|DELETE /api/v1/namespaces/{ns}/serviceaccounts/{name}``
- ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews`` (who am I)

Not thread-safe: the emulator calls it under its lock.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import re
import uuid
from typing import Any, Final
from urllib.parse import unquote

from ._kube_auth import KubernetesIdentity

__all__ = ["KubeState", "status_body"]

_DEFAULT_NAMESPACES: Final = ("default", "kube-node-lease", "kube-public", "kube-system")
# RFC 1123 label (namespaces) and subdomain (service accounts), as Kubernetes checks names.
_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_MESSAGE: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MESSAGE: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_REASONS: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    415: "UnsupportedMediaType",
    422: "Invalid",
}
# Metadata a client may set; the server sets uid, resourceVersion, creationTimestamp.
_CLIENT_METADATA: Final = ("name", "labels", "annotations")
_SA_FIELDS: Final = ("automountServiceAccountToken", "imagePullSecrets", "secrets")

Answer = tuple[int, dict[str, Any]]


def status_body(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``Status`` object, as the API server sends with every error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, ""),
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


class _Error(Exception):
    def __init__(self, code: int, message: str, **kwargs: Any) -> None:
        super().__init__(message)
        self.answer: Answer = (code, status_body(code, message, **kwargs))


def _not_found(resource: str, name: str) -> _Error:
    return _Error(
        404, f'{resource} "{name}" not found', details={"name": name, "kind": resource}
    )


def _timestamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


class KubeState:
    """One cluster's objects, and the answer to one API request against them."""

    def __init__(self, *, seed: str, created: float, version: str) -> None:
        self._ids = random.Random(seed)
        self._version = version
        self._resource_version = 100
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.service_accounts: dict[tuple[str, str], dict[str, Any]] = {}
        for name in _DEFAULT_NAMESPACES:
            self._add_namespace({"metadata": {"name": name}}, created)
            self._add_service_account(name, {"metadata": {"name": "default"}}, created)

    def __repr__(self) -> str:
        return (
            f"KubeState(namespaces={len(self.namespaces)}, "
            f"service_accounts={len(self.service_accounts)})"
        )

    # --- records ---------------------------------------------------------------------------

    def _metadata(self, given: dict[str, Any], epoch: float, **extra: str) -> dict[str, Any]:
        self._resource_version += 1
        meta: dict[str, Any] = {k: copy.deepcopy(given[k]) for k in _CLIENT_METADATA if k in given}
        meta.update(extra)
        meta["uid"] = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        meta["resourceVersion"] = str(self._resource_version)
        meta["creationTimestamp"] = _timestamp(epoch)
        return meta

    def _add_namespace(self, body: dict[str, Any], epoch: float) -> dict[str, Any]:
        meta = self._metadata(body["metadata"], epoch)
        name = meta["name"]
        labels = meta.setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = name
        obj = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self.namespaces[name] = obj
        return obj

    def _add_service_account(
        self, namespace: str, body: dict[str, Any], epoch: float
    ) -> dict[str, Any]:
        meta = self._metadata(body["metadata"], epoch, namespace=namespace)
        obj: dict[str, Any] = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta}
        for field in _SA_FIELDS:
            if field in body:
                obj[field] = copy.deepcopy(body[field])
        self.service_accounts[(namespace, meta["name"])] = obj
        return obj

    def _list(self, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        shown = []
        for item in items:
            entry = copy.deepcopy(item)
            # Items of a list carry no kind/apiVersion of their own.
            entry.pop("kind", None)
            entry.pop("apiVersion", None)
            shown.append(entry)
        return {
            "kind": kind,
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": shown,
        }

    # --- one request -----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str | None,
        identity: KubernetesIdentity,
        epoch: float,
    ) -> Answer:
        """``(status, JSON body)`` for one authenticated request (``path`` below the prefix)."""
        try:
            return self._route(method, path, query, body, content_type, identity, epoch)
        except _Error as error:
            return error.answer

    def _route(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str | None,
        identity: KubernetesIdentity,
        epoch: float,
    ) -> Answer:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        dry_run = any(
            key == "dryRun" and value
            for key, _, value in (part.partition("=") for part in query.split("&"))
        )

        def read() -> dict[str, Any]:
            return _read_body(body, content_type)

        match segments:
            case ["version"] if method == "GET":
                major, _, minor = self._version.partition(".")
                return 200, {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{self._version}.0-eks-emulator",
                    "platform": "linux/amd64",
                }
            case ["api", "v1", "namespaces"]:
                if method == "GET":
                    items = [self.namespaces[n] for n in sorted(self.namespaces)]
                    return 200, self._list("NamespaceList", items)
                if method == "POST":
                    return self._create_namespace(read(), epoch, dry_run)
                raise _method(method)
            case ["api", "v1", "namespaces", ns]:
                if method == "GET":
                    return 200, copy.deepcopy(self._namespace(ns))
                raise _method(method)
            case ["api", "v1", "serviceaccounts"]:
                if method == "GET":
                    keys = sorted(self.service_accounts)
                    items = [self.service_accounts[k] for k in keys]
                    return 200, self._list("ServiceAccountList", items)
                raise _method(method)
            case ["api", "v1", "namespaces", ns, "serviceaccounts"]:
                if method == "GET":  # as Kubernetes: a missing namespace lists empty
                    keys = sorted(k for k in self.service_accounts if k[0] == ns)
                    items = [self.service_accounts[k] for k in keys]
                    return 200, self._list("ServiceAccountList", items)
                if method == "POST":
                    return self._create_service_account(ns, read(), epoch, dry_run)
                raise _method(method)
            case ["api", "v1", "namespaces", ns, "serviceaccounts", name]:
                if method == "GET":
                    return 200, copy.deepcopy(self._service_account(ns, name))
                if method == "PUT":
                    return self._replace_service_account(ns, name, read(), dry_run)
                if method == "DELETE":
                    obj = copy.deepcopy(self._service_account(ns, name))
                    if not dry_run:
                        del self.service_accounts[(ns, name)]
                    return 200, obj
                raise _method(method)
            case ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"]:
                if method == "POST":
                    read()
                    return 201, {
                        "kind": "SelfSubjectReview",
                        "apiVersion": "authentication.k8s.io/v1",
                        "metadata": {"creationTimestamp": None},
                        "status": {"userInfo": identity.user_info()},
                    }
                raise _method(method)
        raise _Error(404, "the server could not find the requested resource", details={})

    def _namespace(self, name: str) -> dict[str, Any]:
        obj = self.namespaces.get(name)
        if obj is None:
            raise _not_found("namespaces", name)
        return obj

    def _service_account(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.service_accounts.get((namespace, name))
        if obj is None:
            raise _not_found("serviceaccounts", name)
        return obj

    def _create_namespace(self, body: dict[str, Any], epoch: float, dry_run: bool) -> Answer:
        _check_kind(body, "Namespace")
        name = _check_name(body, "Namespace", _LABEL, 63, _LABEL_MESSAGE)
        if name in self.namespaces:
            raise _already_exists("namespaces", name)
        if dry_run:
            return 201, _preview(body, "Namespace")
        created = copy.deepcopy(self._add_namespace(body, epoch))
        # Kubernetes gives every new namespace its "default" service account.
        self._add_service_account(name, {"metadata": {"name": "default"}}, epoch)
        return 201, created

    def _create_service_account(
        self, namespace: str, body: dict[str, Any], epoch: float, dry_run: bool
    ) -> Answer:
        _check_kind(body, "ServiceAccount")
        _check_namespace(body, namespace)
        name = _check_name(body, "ServiceAccount", _SUBDOMAIN, 253, _SUBDOMAIN_MESSAGE)
        self._namespace(namespace)
        if (namespace, name) in self.service_accounts:
            raise _already_exists("serviceaccounts", name)
        if dry_run:
            return 201, _preview(body, "ServiceAccount", namespace)
        return 201, copy.deepcopy(self._add_service_account(namespace, body, epoch))

    def _replace_service_account(
        self, namespace: str, name: str, body: dict[str, Any], dry_run: bool
    ) -> Answer:
        _check_kind(body, "ServiceAccount")
        _check_namespace(body, namespace)
        given = _check_name(body, "ServiceAccount", _SUBDOMAIN, 253, _SUBDOMAIN_MESSAGE)
        if given != name:
            raise _Error(400, "the name of the object does not match the name on the URL")
        current = self._service_account(namespace, name)
        version = body["metadata"].get("resourceVersion")
        if version is not None and version != current["metadata"]["resourceVersion"]:
            raise _Error(
                409,
                f'Operation cannot be fulfilled on serviceaccounts "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                reason="Conflict",
                details={"name": name, "kind": "serviceaccounts"},
            )
        updated = copy.deepcopy(current)
        meta = updated["metadata"]
        for key in ("labels", "annotations"):
            if key in body["metadata"]:
                meta[key] = copy.deepcopy(body["metadata"][key])
            else:
                meta.pop(key, None)
        for field in _SA_FIELDS:
            if field in body:
                updated[field] = copy.deepcopy(body[field])
            else:
                updated.pop(field, None)
        if dry_run:
            return 200, updated
        self._resource_version += 1
        meta["resourceVersion"] = str(self._resource_version)
        self.service_accounts[(namespace, name)] = updated
        return 200, copy.deepcopy(updated)


def _method(method: str) -> _Error:
    return _Error(
        405, f"the server does not allow this method on the requested resource ({method[:10]})"
    )


def _already_exists(resource: str, name: str) -> _Error:
    return _Error(
        409, f'{resource} "{name}" already exists', details={"name": name, "kind": resource}
    )


def _read_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in ("application/json", "*/*", ""):
        raise _Error(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            f'application/json (got "{media[:60]}")',
        )
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise _Error(400, "the body of the request could not be decoded as JSON") from None
    if not isinstance(data, dict):
        raise _Error(400, "the body of the request must be a JSON object")
    metadata = data.get("metadata")
    if metadata is None:
        data["metadata"] = {}
    elif not isinstance(metadata, dict):
        raise _Error(400, "metadata must be an object")
    for key in ("labels", "annotations"):
        value = data["metadata"].get(key)
        if value is not None and (
            not isinstance(value, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            raise _Error(400, f"metadata.{key} must map strings to strings")
    return data


def _check_kind(body: dict[str, Any], kind: str) -> None:
    given = body.get("kind")
    if given not in (None, "", kind):
        raise _Error(
            400, f"the kind of the provided object ({str(given)[:60]}) does not match {kind}"
        )
    version = body.get("apiVersion")
    if version not in (None, "", "v1"):
        raise _Error(400, f"the apiVersion of the provided object ({str(version)[:60]}) is not v1")


def _check_namespace(body: dict[str, Any], namespace: str) -> None:
    given = body["metadata"].get("namespace")
    if given not in (None, "", namespace):
        raise _Error(
            400,
            "the namespace of the provided object does not match the namespace sent on the "
            "request",
        )


def _check_name(
    body: dict[str, Any], kind: str, pattern: re.Pattern[str], limit: int, rule: str
) -> str:
    name = body["metadata"].get("name")
    if not name:
        raise _Error(
            422,
            f"{kind} \"\" is invalid: metadata.name: Required value: name or generateName is "
            "required",
            details={"kind": kind, "causes": [{"field": "metadata.name"}]},
        )
    if not isinstance(name, str):
        raise _Error(400, "metadata.name must be a string")
    problems = []
    if len(name) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not pattern.fullmatch(name):
        problems.append(rule)
    if problems:
        shown = name[:300]
        raise _Error(
            422,
            f'{kind} "{shown}" is invalid: metadata.name: Invalid value: "{shown}": '
            + ", ".join(problems),
            details={"name": shown, "kind": kind, "causes": [{"field": "metadata.name"}]},
        )
    return name


def _preview(body: dict[str, Any], kind: str, namespace: str | None = None) -> dict[str, Any]:
    obj = copy.deepcopy(body)
    obj["kind"] = kind
    obj["apiVersion"] = "v1"
    if namespace is not None:
        obj["metadata"]["namespace"] = namespace
    return obj
