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
- discovery: ``GET /api``, ``/api/v1``, ``/apis``, ``/apis/{group}``,
  ``/apis/{group}/{version}`` (aggregated discovery, v2 or v2beta1, when asked for)
- ``GET|POST /api/v1/namespaces``, ``GET /api/v1/namespaces/{ns}``
- ``GET /api/v1/serviceaccounts`` (all namespaces)
- ``GET|POST /api/v1/namespaces/{ns}/serviceaccounts``
- ``GET|PUT|DELETE /api/v1/namespaces/{ns}/serviceaccounts/{name}``
- ``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`` (TokenRequest)
- ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews`` (who am I)
- ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` (can I)

Lists honour ``fieldSelector`` on ``metadata.name`` and ``metadata.namespace``; a GET
answers a ``meta.k8s.io`` ``Table`` when asked (``table=``), as ``kubectl get`` does. A
caller mapped by an access entry may do what its access policies allow (``_access``), and
gets 403 ``Forbidden`` otherwise; any other authenticated caller may do everything (the
emulator's aws-auth ConfigMap maps it as an administrator).

Not thread-safe: the emulator calls it under its lock.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import json
import random
import re
import uuid
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote

import attrs

from ._access import Grant, allowed
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
    406: "NotAcceptable",
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
    return _Error(404, f'{resource} "{name}" not found', details={"name": name, "kind": resource})


def _timestamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeState:
    """One cluster's objects, and the answer to one API request against them."""

    def __init__(
        self,
        *,
        seed: str,
        created: float,
        version: str,
        issuer: str = "https://kubernetes.default.svc",
    ) -> None:
        self._ids = random.Random(seed)
        self._version = version
        self._issuer = issuer
        self._token_key = hashlib.sha256(f"{seed}/service-account-tokens".encode()).digest()
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
        *,
        table: str | None = None,
        discovery: str | None = None,
        grant: Grant | None = None,
    ) -> Answer:
        """``(status, JSON body)`` for one authenticated request (``path`` below the prefix).

        ``table``: the meta.k8s.io version of a ``Table`` the caller accepts for a GET;
        ``discovery``: the apidiscovery.k8s.io version of an aggregated discovery document
        it accepts for ``/api`` and ``/apis``; ``grant``: what the caller's access policies
        allow (``None``: everything).
        """
        try:
            status, answer = self._route(
                method, path, query, body, content_type, identity, epoch, grant
            )
        except _Error as error:
            return error.answer
        if table is not None and method == "GET" and answer.get("kind") in _COLUMNS:
            return status, self._table(answer, table, epoch)
        if discovery is not None and answer.get("kind") in ("APIVersions", "APIGroupList"):
            return status, _aggregated(answer["kind"] == "APIVersions", discovery)
        return status, answer

    def _route(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str | None,
        identity: KubernetesIdentity,
        epoch: float,
        grant: Grant | None = None,
    ) -> Answer:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        dry_run = any(
            key == "dryRun" and value
            for key, _, value in (part.partition("=") for part in query.split("&"))
        )

        def read() -> dict[str, Any]:
            return _read_body(body, content_type)

        params = _query(query)
        if grant is not None:
            _authorize(grant, identity.username, method, segments)
        found = _discovery(segments) if method == "GET" else None
        if found is not None:
            return 200, found
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
                    return 200, self._list("NamespaceList", _select(items, params))
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
                    return 200, self._list("ServiceAccountList", _select(items, params))
                raise _method(method)
            case ["api", "v1", "namespaces", ns, "serviceaccounts"]:
                if method == "GET":  # as Kubernetes: a missing namespace lists empty
                    keys = sorted(k for k in self.service_accounts if k[0] == ns)
                    items = [self.service_accounts[k] for k in keys]
                    return 200, self._list("ServiceAccountList", _select(items, params))
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
            case ["api", "v1", "namespaces", ns, "serviceaccounts", name, "token"]:
                if method == "POST":
                    return self._token_request(ns, name, read(), epoch)
                raise _method(method)
            case ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"]:
                if method == "POST":
                    return self._access_review(read(), grant)
                raise _method(method)
        raise _Error(404, "the server could not find the requested resource", details={})

    # --- TokenRequest, SelfSubjectAccessReview, tables ------------------------------------

    def _token_request(
        self, namespace: str, name: str, body: dict[str, Any], epoch: float
    ) -> Answer:
        _check_kind(body, "TokenRequest", "authentication.k8s.io/v1")
        account = self._service_account(namespace, name)
        spec = body.get("spec") or {}
        if not isinstance(spec, dict):
            raise _Error(400, "spec must be an object")
        audiences = spec.get("audiences") or [_API_AUDIENCE]
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise _Error(400, "spec.audiences must be a list of strings")
        seconds = spec.get("expirationSeconds", _TOKEN_SECONDS)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise _Error(400, "spec.expirationSeconds must be an integer")
        if seconds < _MIN_TOKEN_SECONDS:
            raise _Error(
                422,
                f'TokenRequest.authentication.k8s.io "{name}" is invalid: '
                f"spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration "
                "less than 10 minutes",
                details={"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest"},
            )
        seconds = min(seconds, _MAX_TOKEN_SECONDS)
        issued = int(epoch)
        claims = {
            "aud": audiences,
            "exp": issued + seconds,
            "iat": issued,
            "iss": self._issuer,
            "jti": str(uuid.UUID(int=self._ids.getrandbits(128), version=4)),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]},
            },
            "nbf": issued,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        out_spec: dict[str, Any] = {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": spec.get("boundObjectRef"),
        }
        return 201, {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": _timestamp(epoch),
            },
            "spec": out_spec,
            "status": {
                "token": self._jwt(claims),
                "expirationTimestamp": _timestamp(issued + seconds),
            },
        }

    def _jwt(self, claims: dict[str, Any]) -> str:
        """A JWT of ``claims``, signed HS256 with this cluster's own key."""

        def part(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

        kid = hashlib.sha256(self._token_key).hexdigest()[:16]
        header = part(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        payload = part(json.dumps(claims, separators=(",", ":")).encode())
        signed = f"{header}.{payload}".encode("ascii")
        signature = part(hmac.new(self._token_key, signed, hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}"

    def _access_review(self, body: dict[str, Any], grant: Grant | None = None) -> Answer:
        _check_kind(body, "SelfSubjectAccessReview", "authorization.k8s.io/v1")
        spec = body.get("spec")
        if not isinstance(spec, dict) or not (
            isinstance(spec.get("resourceAttributes"), dict)
            or isinstance(spec.get("nonResourceAttributes"), dict)
        ):
            raise _Error(
                422,
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                'spec.resourceAttributes: Invalid value: "null": exactly one of '
                "nonResourceAttributes or resourceAttributes must be specified",
                details={"group": "authorization.k8s.io", "kind": "SelfSubjectAccessReview"},
            )
        return 201, {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": copy.deepcopy(spec),
            "status": _review_status(grant, spec),
        }

    def _table(self, answer: dict[str, Any], version: str, epoch: float) -> dict[str, Any]:
        kind = answer["kind"]
        items = answer.get("items", [answer])
        columns = _COLUMNS[kind]
        rows = []
        for item in items:
            meta = item["metadata"]
            cells: list[Any] = [meta["name"]]
            for column in columns[1:-1]:
                cells.append(column[2](item))
            cells.append(_age(epoch, meta.get("creationTimestamp")))
            rows.append(
                {
                    "cells": cells,
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": f"meta.k8s.io/{version}",
                        "metadata": copy.deepcopy(meta),
                    },
                }
            )
        list_meta = answer["metadata"] if "items" in answer else {}
        return {
            "kind": "Table",
            "apiVersion": f"meta.k8s.io/{version}",
            "metadata": {"resourceVersion": str(list_meta.get("resourceVersion", ""))}
            if list_meta
            else {},
            "columnDefinitions": [
                {
                    "name": name,
                    "type": kind_,
                    "format": "name" if name == "Name" else "",
                    "description": _DESCRIPTIONS.get(name, ""),
                    "priority": 0,
                }
                for name, kind_, _ in columns
            ],
            "rows": rows,
        }

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


_VERBS: Final = {"POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}


def _authorize(grant: Grant, username: str, method: str, segments: list[str]) -> None:
    """Raise 403 unless the grant allows this request (discovery and reviews are open)."""
    namespace, name, subresource = "", "", ""
    match segments:
        case ["api", "v1", "namespaces"]:
            resource = "namespaces"
        case ["api", "v1", "namespaces", ns]:
            resource, name = "namespaces", ns
        case ["api", "v1", "serviceaccounts"]:
            resource = "serviceaccounts"
        case ["api", "v1", "namespaces", ns, "serviceaccounts"]:
            resource, namespace = "serviceaccounts", ns
        case ["api", "v1", "namespaces", ns, "serviceaccounts", sa]:
            resource, namespace, name = "serviceaccounts", ns, sa
        case ["api", "v1", "namespaces", ns, "serviceaccounts", sa, "token"]:
            resource, namespace, name, subresource = "serviceaccounts", ns, sa, "token"
        case _:
            return
    verb = ("get" if name else "list") if method == "GET" else _VERBS.get(method, method.lower())
    if allowed(
        grant,
        verb=verb,
        resource=resource,
        namespace=namespace,
        subresource=subresource,
        name=name,
    ):
        return
    what = f"{resource}/{subresource}" if subresource else resource
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    subject = f'{resource} "{name}"' if name else resource
    raise _Error(
        403,
        f'{subject} is forbidden: User "{username}" cannot {verb} resource "{what}" '
        f'in API group "" {where}',
        details={"name": name, "kind": resource} if name else {"kind": resource},
    )


def _review_status(grant: Grant | None, spec: dict[str, Any]) -> dict[str, Any]:
    if grant is None:
        return {
            "allowed": True,
            "reason": "the emulator allows every caller without an access entry everything",
        }
    attributes = spec.get("resourceAttributes")
    if isinstance(attributes, dict):

        def text(key: str) -> str:
            value = attributes.get(key)
            return value if isinstance(value, str) else ""

        ok = allowed(
            grant,
            verb=text("verb"),
            resource=text("resource"),
            namespace=text("namespace"),
            group=text("group"),
            subresource=text("subresource"),
            name=text("name"),
        )
    else:  # non-resource URLs: reading them (discovery, /version) is open, the rest is admin's
        verb = (spec.get("nonResourceAttributes") or {}).get("verb")
        ok = verb == "get" or any(
            policy == "AmazonEKSClusterAdminPolicy" and scope is None
            for policy, scope in grant.policies
        )
    if ok:
        return {"allowed": True, "reason": "allowed by the access entry's access policies"}
    return {"allowed": False}


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


def _check_kind(body: dict[str, Any], kind: str, api_version: str = "v1") -> None:
    given = body.get("kind")
    if given not in (None, "", kind):
        raise _Error(
            400, f"the kind of the provided object ({str(given)[:60]}) does not match {kind}"
        )
    version = body.get("apiVersion")
    if version not in (None, "", api_version):
        raise _Error(
            400,
            f"the apiVersion of the provided object ({str(version)[:60]}) is not {api_version}",
        )


def _check_namespace(body: dict[str, Any], namespace: str) -> None:
    given = body["metadata"].get("namespace")
    if given not in (None, "", namespace):
        raise _Error(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )


def _check_name(
    body: dict[str, Any], kind: str, pattern: re.Pattern[str], limit: int, rule: str
) -> str:
    name = body["metadata"].get("name")
    if not name:
        raise _Error(
            422,
            f'{kind} "" is invalid: metadata.name: Required value: name or generateName is '
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


# --- lists, tables and discovery -------------------------------------------------------------

_API_AUDIENCE: Final = "https://kubernetes.default.svc"
_TOKEN_SECONDS: Final = 3600
_MIN_TOKEN_SECONDS: Final = 600
_MAX_TOKEN_SECONDS: Final = 48 * 3600


def _query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key:
            params[unquote(key.replace("+", " "))] = unquote(value.replace("+", " "))
    return params


def _select(items: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    """``items`` that match the ``fieldSelector`` (metadata.name / metadata.namespace)."""
    selector = params.get("fieldSelector", "").strip()
    if not selector:
        return items
    tests: list[tuple[str, str, bool]] = []
    for term in selector.split(","):
        op = next((op for op in ("!=", "==", "=") if op in term), None)
        if op is None:
            raise _Error(400, f'invalid selector: "{selector[:100]}"')
        field, _, value = term.partition(op)
        equal = op != "!="
        field = field.strip()
        if field not in ("metadata.name", "metadata.namespace"):
            raise _Error(
                400,
                f'"{field[:60]}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"',
            )
        tests.append((field.split(".")[1], value.strip(), equal))
    return [
        item
        for item in items
        if all((item["metadata"].get(key, "") == value) == equal for key, value, equal in tests)
    ]


def _age(epoch: float, created: str | None) -> str:
    """How old, as ``kubectl get``'s AGE column shows it (Kubernetes' HumanDuration)."""
    if not created:
        return "<unknown>"
    then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    seconds = int(epoch - then)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


Column = tuple[str, str, Callable[[dict[str, Any]], Any]]


def _none(item: dict[str, Any]) -> Any:
    return None


#: The columns the API server's printers give (the first is the name, the last the age).
_COLUMNS: Final[dict[str, list[Column]]] = {
    "Namespace": [
        ("Name", "string", _none),
        ("Status", "string", lambda item: item.get("status", {}).get("phase", "")),
        ("Age", "string", _none),
    ],
    "ServiceAccount": [
        ("Name", "string", _none),
        ("Secrets", "string", lambda item: len(item.get("secrets") or [])),
        ("Age", "string", _none),
    ],
}
_COLUMNS["NamespaceList"] = _COLUMNS["Namespace"]
_COLUMNS["ServiceAccountList"] = _COLUMNS["ServiceAccount"]
_DESCRIPTIONS: Final = {
    "Name": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate "
    "name automatically. Name is primarily intended for creation idempotence and "
    "configuration definition. Cannot be updated.",
    "Status": "The status of the namespace",
    "Secrets": "Secrets is a list of the secrets in the same namespace that pods running "
    "using this ServiceAccount are allowed to use.",
    "Age": "CreationTimestamp is a timestamp representing the server time when this object "
    "was created.",
}


@attrs.frozen
class _Resource:
    name: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    #: A subresource's (name, group, version, kind, verbs).
    subresources: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = ()


#: group ("" for the core group) -> version -> resources served.
_SERVED: Final[dict[str, dict[str, tuple[_Resource, ...]]]] = {
    "": {
        "v1": (
            _Resource(
                "namespaces", "namespace", "Namespace", False, ("create", "get", "list"), ("ns",)
            ),
            _Resource(
                "serviceaccounts",
                "serviceaccount",
                "ServiceAccount",
                True,
                ("create", "delete", "get", "list", "update"),
                ("sa",),
                (("token", "authentication.k8s.io", "v1", "TokenRequest", ("create",)),),
            ),
        )
    },
    "authentication.k8s.io": {
        "v1": (
            _Resource(
                "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", False, ("create",)
            ),
        )
    },
    "authorization.k8s.io": {
        "v1": (
            _Resource(
                "selfsubjectaccessreviews",
                "selfsubjectaccessreview",
                "SelfSubjectAccessReview",
                False,
                ("create",),
            ),
        )
    },
}


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _api_group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": _group_version(group, v), "version": v} for v in _SERVED[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def _resource_list(group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in _SERVED[group][version]:
        entry: dict[str, Any] = {
            "name": r.name,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        resources.append(entry)
        for sub, sub_group, sub_version, sub_kind, sub_verbs in r.subresources:
            resources.append(
                {
                    "name": f"{r.name}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "group": sub_group,
                    "version": sub_version,
                    "kind": sub_kind,
                    "verbs": list(sub_verbs),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _group_version(group, version),
        "resources": resources,
    }


def _discovery(segments: list[str]) -> dict[str, Any] | None:
    """The unaggregated discovery document at ``segments``, if it is one."""
    match segments:
        case ["api"]:
            return {
                "kind": "APIVersions",
                "versions": list(_SERVED[""]),
                "serverAddressByClientCIDRs": [],
            }
        case ["api", version] if version in _SERVED[""]:
            return _resource_list("", version)
        case ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(g) for g in _SERVED if g],
            }
        case ["apis", group] if group and group in _SERVED:
            return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group)}
        case ["apis", group, version] if group and version in _SERVED.get(group, {}):
            return _resource_list(group, version)
    return None


def _aggregated(core: bool, version: str) -> dict[str, Any]:
    """The aggregated discovery document (``APIGroupDiscoveryList``) of /api or /apis."""
    items = []
    for group, versions in _SERVED.items():
        if bool(group) == core:
            continue
        shown_versions = []
        for api_version, resources in versions.items():
            shown = []
            for r in resources:
                entry: dict[str, Any] = {
                    "resource": r.name,
                    "responseKind": {"group": group, "version": api_version, "kind": r.kind},
                    "scope": "Namespaced" if r.namespaced else "Cluster",
                    "singularResource": r.singular,
                    "verbs": list(r.verbs),
                }
                if r.short_names:
                    entry["shortNames"] = list(r.short_names)
                if r.subresources:
                    entry["subresources"] = [
                        {
                            "subresource": sub,
                            "responseKind": {"group": g, "version": v, "kind": k},
                            "verbs": list(verbs),
                        }
                        for sub, g, v, k, verbs in r.subresources
                    ]
                shown.append(entry)
            shown_versions.append(
                {"version": api_version, "resources": shown, "freshness": "Current"}
            )
        metadata: dict[str, Any] = {"creationTimestamp": None}
        if group:
            metadata["name"] = group
        items.append({"metadata": metadata, "versions": shown_versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
