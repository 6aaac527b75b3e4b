"""The emulator's Kubernetes API on the wire: protobuf and JSON, negotiation, Status errors,
discovery, tables, TokenRequest and SelfSubjectAccessReview (in-process, no sockets).

The protobuf bytes are checked against ones assembled here by hand from the protobuf wire
format and Kubernetes' field numbers, an opinion independent of the generated modules.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from eks_async.testing import EKSEmulator, EmulatorRequest, EmulatorResponse
from eks_async.testing._kube_wire import (
    JSON,
    MAGIC,
    PROTOBUF,
    NotAcceptable,
    UnsupportedBody,
    decode_body,
    from_protobuf,
    negotiate,
    to_protobuf,
)

TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
PROTOBUF_ACCEPT = "application/vnd.kubernetes.protobuf,application/json"


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) of less than 128 bytes."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return MAGIC + _field(1, type_meta) + _field(2, raw) + _field(3, b"") + _field(4, b"")


# --------------------------------------------------------------------------- protobuf


def test_a_status_encodes_as_kubernetes_writes_it() -> None:
    encoded = to_protobuf({"kind": "Status", "apiVersion": "v1", "code": 404})
    # Status.code is field 6, a varint: 404 = 0x94 0x03.
    assert encoded == _envelope("v1", "Status", b"\x30\x94\x03")


def test_a_hand_made_serviceaccount_decodes() -> None:
    meta = _field(1, b"bob") + _field(3, b"default")  # ObjectMeta.name, .namespace
    body = _field(1, meta) + b"\x20\x00"  # ServiceAccount.metadata; automount... = false
    assert from_protobuf(_envelope("v1", "ServiceAccount", body)) == {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "bob", "namespace": "default"},
        "automountServiceAccountToken": False,
    }


@pytest.mark.parametrize(
    "obj",
    [
        {
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": {
                "name": "builder",
                "namespace": "ci",
                "uid": "0f6c6a59-7b9e-4d0c-9d5c-3c0f1c3f2a11",
                "resourceVersion": "105",
                "creationTimestamp": "2026-05-01T12:30:00Z",
                "labels": {"team": "platform"},
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"},
            },
            "secrets": [{"name": "builder-token"}],
            "imagePullSecrets": [{"name": "registry"}],
            "automountServiceAccountToken": True,
        },
        {
            "kind": "NamespaceList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "9"},
            "items": [
                {
                    "metadata": {"name": "default", "creationTimestamp": "2026-01-02T03:04:05Z"},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            ],
        },
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'ServiceAccount "X" is invalid: metadata.name: Invalid value',
            "reason": "Invalid",
            "details": {
                "name": "X",
                "kind": "ServiceAccount",
                "causes": [{"field": "metadata.name", "message": "bad"}],
            },
            "code": 422,
        },
        {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "status": {
                "userInfo": {
                    "username": "arn:aws:iam::1:user/me",
                    "uid": "aws-iam-authenticator:1:AKID",
                    "groups": ["system:authenticated"],
                    "extra": {"arn": ["arn:aws:iam::1:user/me"], "sessionName": [""]},
                }
            },
        },
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": "default", "namespace": "default"},
            "spec": {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 86400},
            "status": {"token": "a.b.c", "expirationTimestamp": "2026-05-02T12:30:00Z"},
        },
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {
                "resourceAttributes": {
                    "namespace": "default",
                    "verb": "create",
                    "resource": "serviceaccounts",
                }
            },
            "status": {"allowed": True, "reason": "yes"},
        },
    ],
    ids=lambda obj: obj["kind"],
)
def test_objects_round_trip_through_protobuf(obj: dict[str, Any]) -> None:
    encoded = to_protobuf(obj)
    assert encoded is not None and encoded.startswith(MAGIC)
    assert from_protobuf(encoded) == obj


def test_kinds_without_a_message_stay_json() -> None:
    assert to_protobuf({"kind": "Table", "apiVersion": "meta.k8s.io/v1"}) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"kind": "ServiceAccount"}', "not Kubernetes protobuf"),
        (MAGIC + b"\xff\xff\xff", "could not be decoded"),
        (_envelope("v1", "Pod", b""), 'no kind "Pod" is registered for version "v1"'),
    ],
)
def test_unreadable_protobuf_bodies_are_bad_requests(data: bytes, message: str) -> None:
    with pytest.raises(UnsupportedBody, match=message) as caught:
        from_protobuf(data)
    assert caught.value.code == 400


def test_a_body_in_another_media_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedBody, match='got "text/plain"') as caught:
        decode_body(b"name: bob", "text/plain")
    assert caught.value.code == 415
    assert decode_body(b"{}", "application/json; charset=utf-8") == b"{}"
    sa = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "x"}}
    encoded = to_protobuf(sa)
    assert encoded is not None
    assert json.loads(decode_body(encoded, PROTOBUF)) == sa


# --------------------------------------------------------------------------- negotiation


def test_negotiation_follows_the_accept_header() -> None:
    assert negotiate(None).encodings == ("json",)
    assert negotiate(PROTOBUF_ACCEPT).encodings == ("protobuf", "json")
    weighted = negotiate("application/json;q=0.5, application/vnd.kubernetes.protobuf")
    assert weighted.encodings == ("protobuf", "json")
    assert negotiate("*/*").encodings == ("json",)
    table = negotiate(TABLE_ACCEPT)
    assert (table.table, table.encodings) == ("v1", ("json",))
    assert negotiate(DISCOVERY_ACCEPT).discovery == "v2"
    only_beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    assert negotiate(only_beta).discovery == "v2beta1"
    with pytest.raises(NotAcceptable):
        negotiate("text/html, application/yaml")


# --------------------------------------------------------------------------- in-process API


class Kube:
    def __init__(self, emulator: EKSEmulator, endpoint_id: str, token: str) -> None:
        self.emulator = emulator
        self.endpoint_id = endpoint_id
        self.token = token

    def __call__(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        accept: str | None = None,
        content_type: str | None = None,
        body: bytes = b"",
        token: str | None = "",
    ) -> EmulatorResponse:
        headers = []
        if token is not None:
            headers.append(("Authorization", f"Bearer {token or self.token}"))
        if accept is not None:
            headers.append(("Accept", accept))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        return self.emulator.handle_kubernetes(
            EmulatorRequest(
                method=method,
                path=f"/k8s/{self.endpoint_id}{path}",
                query=query,
                headers=tuple(headers),
                body=body,
            )
        )


def _content_type(response: EmulatorResponse) -> str:
    return dict(response.headers)["Content-Type"]


def _json(response: EmulatorResponse) -> dict[str, Any]:
    assert _content_type(response).startswith(JSON)
    data: dict[str, Any] = json.loads(response.body)
    return data


def _protobuf(response: EmulatorResponse) -> dict[str, Any]:
    assert _content_type(response) == PROTOBUF
    return from_protobuf(response.body)


@pytest.fixture
async def kube() -> AsyncIterator[Kube]:
    emulator = EKSEmulator(seed=5)
    emulator.add_cluster("prod")
    async with emulator.client() as eks:
        token = (await eks.get_token(cluster_name="prod")).token
        cluster = (await eks.describe_cluster(name="prod")).cluster
    assert cluster is not None and cluster.endpoint
    host = urlsplit(cluster.endpoint).netloc  # .hostname would lower the endpoint id's case
    yield Kube(emulator, host.split(".")[0], token)


def _status(obj: dict[str, Any], code: int, reason: str) -> str:
    assert obj["kind"] == "Status" and obj["apiVersion"] == "v1"
    assert obj["status"] == "Failure"
    assert (obj["code"], obj["reason"]) == (code, reason)
    message: str = obj["message"]
    return message


async def test_errors_are_status_objects_in_the_negotiated_encoding(kube: Kube) -> None:
    missing = "/api/v1/namespaces/default/serviceaccounts/nobody"
    as_json = kube("GET", missing)
    assert as_json.status == 404
    assert _status(_json(as_json), 404, "NotFound") == 'serviceaccounts "nobody" not found'
    as_protobuf = kube("GET", missing, accept=PROTOBUF_ACCEPT)
    assert as_protobuf.status == 404
    status = _protobuf(as_protobuf)
    assert _status(status, 404, "NotFound") == 'serviceaccounts "nobody" not found'
    assert status["details"] == {"name": "nobody", "kind": "serviceaccounts"}

    unauthorized = kube("GET", missing, accept=PROTOBUF_ACCEPT, token=None)
    assert unauthorized.status == 401
    _status(_protobuf(unauthorized), 401, "Unauthorized")

    wrong_media = kube(
        "POST", "/api/v1/namespaces/default/serviceaccounts", content_type="text/plain", body=b"x"
    )
    assert wrong_media.status == 415
    _status(_json(wrong_media), 415, "UnsupportedMediaType")

    not_acceptable = kube("GET", "/api/v1/namespaces", accept="text/html")
    assert not_acceptable.status == 406
    _status(_json(not_acceptable), 406, "NotAcceptable")

    not_allowed = kube("PUT", "/api/v1/namespaces", accept=PROTOBUF_ACCEPT)
    assert not_allowed.status == 405
    _status(_protobuf(not_allowed), 405, "MethodNotAllowed")


async def test_create_in_protobuf_answers_protobuf_then_already_exists(kube: Kube) -> None:
    sa = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "builder"}}
    body = to_protobuf(sa)
    assert body is not None
    path = "/api/v1/namespaces/default/serviceaccounts"
    created = kube("POST", path, accept=PROTOBUF_ACCEPT, content_type=PROTOBUF, body=body)
    assert created.status == 201
    obj = _protobuf(created)
    assert obj["kind"] == "ServiceAccount"
    assert obj["metadata"]["name"] == "builder" and obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["uid"] and obj["metadata"]["creationTimestamp"].endswith("Z")
    again = kube("POST", path, accept=PROTOBUF_ACCEPT, content_type=PROTOBUF, body=body)
    assert again.status == 409
    assert _status(_protobuf(again), 409, "AlreadyExists") == (
        'serviceaccounts "builder" already exists'
    )
    listed = _json(kube("GET", path))
    assert [i["metadata"]["name"] for i in listed["items"]] == ["builder", "default"]


async def test_discovery_plain_and_aggregated(kube: Kube) -> None:
    assert _json(kube("GET", "/api"))["versions"] == ["v1"]
    core = _json(kube("GET", "/api/v1"))
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    names = {r["name"]: r for r in core["resources"]}
    assert set(names) == {"namespaces", "serviceaccounts", "serviceaccounts/token"}
    assert names["serviceaccounts"]["namespaced"] and names["serviceaccounts"]["shortNames"] == [
        "sa"
    ]
    assert names["serviceaccounts/token"]["kind"] == "TokenRequest"
    groups = _json(kube("GET", "/apis"))
    assert [g["name"] for g in groups["groups"]] == [
        "authentication.k8s.io",
        "authorization.k8s.io",
    ]
    authz = _json(kube("GET", "/apis/authorization.k8s.io/v1"))
    assert [r["name"] for r in authz["resources"]] == ["selfsubjectaccessreviews"]
    assert kube("GET", "/apis/apps/v1").status == 404

    aggregated = kube("GET", "/apis", accept=DISCOVERY_ACCEPT)
    assert _content_type(aggregated) == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    body = _json(aggregated)
    assert body["kind"] == "APIGroupDiscoveryList"
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2"
    by_name = {item["metadata"]["name"]: item for item in body["items"]}
    review = by_name["authentication.k8s.io"]["versions"][0]["resources"][0]
    assert review["resource"] == "selfsubjectreviews" and review["verbs"] == ["create"]
    legacy = _json(kube("GET", "/api", accept=DISCOVERY_ACCEPT))
    sa = [
        r
        for r in legacy["items"][0]["versions"][0]["resources"]
        if r["resource"] == "serviceaccounts"
    ]
    assert sa[0]["scope"] == "Namespaced"
    assert sa[0]["subresources"][0]["subresource"] == "token"


async def test_get_answers_a_table_when_asked(kube: Kube) -> None:
    response = kube("GET", "/api/v1/namespaces", accept=TABLE_ACCEPT)
    assert _content_type(response) == "application/json;as=Table;v=v1;g=meta.k8s.io"
    table = _json(response)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert [row["cells"][:2] for row in table["rows"]] == [
        [name, "Active"] for name in ("default", "kube-node-lease", "kube-public", "kube-system")
    ]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = _json(
        kube("GET", "/api/v1/namespaces/kube-system/serviceaccounts/default", accept=TABLE_ACCEPT)
    )
    assert [c["name"] for c in one["columnDefinitions"]] == ["Name", "Secrets", "Age"]
    assert one["rows"][0]["cells"][:2] == ["default", 0]
    assert one["rows"][0]["object"]["metadata"]["namespace"] == "kube-system"


async def test_lists_honour_field_selectors(kube: Kube) -> None:
    def names(query: str) -> list[str]:
        listed = _json(kube("GET", "/api/v1/serviceaccounts", query=query))
        return [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in listed["items"]]

    assert names("fieldSelector=metadata.namespace%3Dkube-system") == ["kube-system/default"]
    assert names("fieldSelector=metadata.name%3Dnobody") == []
    assert len(names("fieldSelector=metadata.namespace!%3Ddefault")) == 3
    bad = kube("GET", "/api/v1/serviceaccounts", query="fieldSelector=spec.x%3D1")
    assert bad.status == 400
    _status(_json(bad), 400, "BadRequest")


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


async def test_token_request_gives_a_token_audience_and_expiry(kube: Kube) -> None:
    path = "/api/v1/namespaces/kube-system/serviceaccounts/default/token"
    request = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "spec": {}}
    default = kube("POST", path, content_type=JSON, body=json.dumps(request).encode())
    assert default.status == 201
    answer = _json(default)
    assert answer["spec"]["audiences"] == ["https://kubernetes.default.svc"]
    assert answer["spec"]["expirationSeconds"] == 3600
    claims = _claims(answer["status"]["token"])
    assert claims["sub"] == "system:serviceaccount:kube-system:default"
    assert claims["aud"] == ["https://kubernetes.default.svc"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iss"].startswith("https://oidc.eks.us-west-2.amazonaws.com/id/")

    request["spec"] = {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 900}
    body = to_protobuf(request)
    assert body is not None
    in_protobuf = kube("POST", path, accept=PROTOBUF_ACCEPT, content_type=PROTOBUF, body=body)
    answer = _protobuf(in_protobuf)
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"]["audiences"] == ["sts.amazonaws.com"]
    assert answer["spec"]["expirationSeconds"] == 900
    assert _claims(answer["status"]["token"])["aud"] == ["sts.amazonaws.com"]

    request["spec"] = {"expirationSeconds": 60}
    short = kube("POST", path, content_type=JSON, body=json.dumps(request).encode())
    assert short.status == 422
    assert "may not specify a duration less than 10 minutes" in _status(
        _json(short), 422, "Invalid"
    )
    missing = kube(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        content_type=JSON,
        body=b"{}",
    )
    assert missing.status == 404


async def test_self_subject_access_review(kube: Kube) -> None:
    review = {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "serviceaccounts"}},
    }
    body = to_protobuf(review)
    assert body is not None
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    answer = kube("POST", path, accept=PROTOBUF_ACCEPT, content_type=PROTOBUF, body=body)
    assert answer.status == 201
    obj = _protobuf(answer)
    assert obj["status"]["allowed"] is True
    assert obj["spec"] == review["spec"]
    empty = kube("POST", path, content_type=JSON, body=b"{}")
    assert empty.status == 422


def test_protobuf_is_not_imported_with_the_package() -> None:
    code = (
        "import sys, eks_async, eks_async.testing\n"
        "assert not any(m.startswith('google.protobuf') for m in sys.modules), 'imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_generated_modules_say_so_and_hold_the_messages_served() -> None:
    from pathlib import Path

    from codegen.kube_protos import HEADER
    from eks_async.testing._kube_wire import _MESSAGES, _message_class

    folder = Path(__file__).resolve().parents[1] / "eks_async" / "testing" / "_kube_proto"
    modules = sorted(folder.glob("*.py"))
    assert len(modules) == 10
    for path in modules:
        assert path.read_text(encoding="utf-8").startswith(HEADER), path.name
    for api_version, kind in _MESSAGES:
        cls = _message_class(api_version, kind)
        assert cls is not None and cls().DESCRIPTOR.name == kind


async def test_without_protobuf_bodies_are_refused_and_answers_are_json(
    kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = to_protobuf({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "a"}})
    assert sa is not None
    monkeypatch.setattr("eks_async.testing._kube_wire.protobuf_available", lambda: False)
    path = "/api/v1/namespaces/default/serviceaccounts"
    refused = kube("POST", path, accept=PROTOBUF_ACCEPT, content_type=PROTOBUF, body=sa)
    assert refused.status == 415
    assert '"protobuf" package' in _status(_json(refused), 415, "UnsupportedMediaType")
    listed = kube("GET", path, accept=PROTOBUF_ACCEPT)
    assert listed.status == 200 and _json(listed)["kind"] == "ServiceAccountList"


async def test_without_protobuf_the_server_says_once_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from eks_async.testing import EKSEmulator

    monkeypatch.setattr("eks_async.testing._kube_wire.protobuf_available", lambda: False)
    emulator = EKSEmulator()
    emulator.add_cluster("prod")
    with caplog.at_level("WARNING", logger="eks_async"):
        async with emulator.serve():
            assert emulator.kubernetes_endpoints()  # the endpoints are served (JSON only)
    said = [r.getMessage() for r in caplog.records if "protobuf" in r.getMessage()]
    assert len(said) == 1
    assert 'pip install "eks-async[emulator]"' in said[0]
