"""The SigV4 signer against botocore's own signers, on generated requests."""

from __future__ import annotations

import copy
import datetime
import pickle
from unittest import mock
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.utils import percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eks_async._auth import sigv4 as _sigv4
from eks_async._auth.credentials import Credentials
from eks_async._auth.sigv4 import SigV4Signer, amz_date

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"

# -- strategies -------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=20,
)
_token_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~"


@st.composite
def _paths(draw: st.DrawFn) -> str:
    segments = draw(
        st.lists(
            st.one_of(
                # a URI label, as botocore's rest serializer encodes it
                _text.map(lambda s: quote(s, safe="-._~")),
                # a greedy label ({name+}): slashes kept
                _text.map(lambda s: quote(s, safe="/~")),
                st.sampled_from(["clusters", "a%2Fb", ".", "..", "", "%2E%2E", "node~groups"]),
            ),
            max_size=6,
        )
    )
    path = "/" + "/".join(segments)
    if draw(st.booleans()):
        path += "/"
    return path


@st.composite
def _queries(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        # raw oddities: empty pairs, keys without "=", several "="
        return draw(st.text(st.sampled_from("ab=&%2F+"), max_size=12))
    keys = st.one_of(st.sampled_from(["maxResults", "nextToken", "namespace", "a", "A"]), _text)
    values = st.one_of(st.integers(0, 100).map(str), _text)
    pairs = draw(st.lists(st.tuples(keys, values), max_size=5))
    return str(percent_encode_sequence(pairs))


_hosts = st.sampled_from(
    [
        ("https", "eks.us-west-2.amazonaws.com"),
        ("https", "eks.eu-central-1.amazonaws.com:443"),
        ("https", "EKS.Example.COM:8443"),
        ("http", "localhost:80"),
        ("http", "127.0.0.1:4566"),
        ("http", "[::1]:5000"),
        ("https", "[fe80::1]"),
        ("https", "user@eks.example.com"),
    ]
)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme, netloc = draw(_hosts)
    url = f"{scheme}://{netloc}{draw(_paths())}"
    query = draw(_queries())
    if query or draw(st.booleans()):
        url += "?" + query
    return url


_extra_header_names = st.one_of(
    st.sampled_from(
        [
            "X-Custom",
            "x-custom",
            "X-Amz-Target",
            "Host",
            "Date",
            "Authorization",
            "X-Amz-Date",
            "X-Amz-Security-Token",
            "X-Amz-Content-SHA256",
            "Expect",
            "Transfer-Encoding",
            "X-Amzn-Trace-Id",
            "Content-Length",
            "traceparent",
        ]
    ),
    st.text(st.sampled_from(_token_chars), min_size=1, max_size=10),
)


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(
                [
                    "application/json",
                    "application/x-amz-json-1.1",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ]
            )
        )
    if draw(st.booleans()):
        headers["User-Agent"] = "eks-async/0.1 Python/3.11  (linux)"
    for name, value in draw(st.lists(st.tuples(_extra_header_names, _header_text), max_size=4)):
        headers[name] = value
    return headers


_regions = st.one_of(
    st.sampled_from(["us-west-2", "eu-central-1", "cn-north-1", "us-gov-west-1"]),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-0123456789"), min_size=1, max_size=15),
)
_times = st.datetimes(
    min_value=datetime.datetime(2000, 1, 1),
    max_value=datetime.datetime(2099, 12, 31),
    timezones=st.just(datetime.UTC),
)
_tokens = st.one_of(st.none(), st.just(TOKEN), st.just(""), _text.filter(bool))
_access_keys = st.sampled_from(["AKIDEXAMPLE", "ASIAWXYZ1234567890AB", "AKIA0"])
_secrets = st.one_of(st.just(SECRET), _text.filter(bool))


def _freeze(now: datetime.datetime) -> mock._patch[mock.MagicMock]:
    # botocore.auth takes its time from get_current_datetime(): naive UTC.
    return mock.patch(
        "botocore.auth.get_current_datetime",
        return_value=now.astimezone(datetime.UTC).replace(tzinfo=None),
    )


def _boto_sign(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    creds: Credentials,
    service: str,
    region: str,
    now: datetime.datetime,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    boto_creds = BotoCredentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    with _freeze(now):
        SigV4Auth(boto_creds, service, region).add_auth(request)
    return request


def _boto_presign(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    creds: Credentials,
    service: str,
    region: str,
    now: datetime.datetime,
    expires: int,
) -> str:
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    boto_creds = BotoCredentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    with _freeze(now):
        SigV4QueryAuth(boto_creds, service, region, expires=expires).add_auth(request)
    return str(request.url)


# -- header signing ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "patch"]),
    url=_urls(),
    headers=_headers(),
    body=st.one_of(st.just(b""), st.binary(max_size=64), st.just(b'{"name":"prod"}')),
    access_key=_access_keys,
    secret=_secrets,
    token=_tokens,
    region=_regions,
    service=st.sampled_from(["eks", "sts", "execute-api"]),
    now=_times,
)
def test_sign_headers_matches_botocore(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret: str,
    token: str | None,
    region: str,
    service: str,
    now: datetime.datetime,
) -> None:
    creds = Credentials(access_key_id=access_key, secret_access_key=secret, session_token=token)
    expected = _boto_sign(
        method=method,
        url=url,
        headers=headers,
        body=body,
        creds=creds,
        service=service,
        region=region,
        now=now,
    )
    ours = dict(headers)
    SigV4Signer(service, region).sign_headers(
        method=method, url=url, headers=ours, body=body, credentials=creds, now=now
    )
    assert ours["Authorization"] == expected.headers["Authorization"]
    # Every header, added, replaced or left alone, is what botocore leaves on its request.
    assert sorted(ours.items()) == sorted(expected.headers.items())


@settings(max_examples=60, deadline=None)
@given(url=_urls(), now=_times, token=_tokens)
def test_per_call_service_and_region_override(
    url: str, now: datetime.datetime, token: str | None
) -> None:
    creds = Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET, session_token=token)
    expected = _boto_sign(
        method="GET",
        url=url,
        headers={},
        body=b"",
        creds=creds,
        service="sts",
        region="ap-south-1",
        now=now,
    )
    ours: dict[str, str] = {}
    SigV4Signer("eks", "us-west-2").sign_headers(
        method="GET",
        url=url,
        headers=ours,
        body=b"",
        credentials=creds,
        now=now,
        service="sts",
        region="ap-south-1",
    )
    assert sorted(ours.items()) == sorted(expected.headers.items())


def test_known_answer_from_the_aws_test_suite() -> None:
    # "get-vanilla" from the AWS SigV4 test suite: no botocore involved.
    headers: dict[str, str] = {}
    SigV4Signer("service", "us-east-1").sign_headers(
        method="GET",
        url="https://example.amazonaws.com/",
        headers=headers,
        body=b"",
        credentials=Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET),
        now=datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC),
    )
    assert headers == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
    }


def test_encoded_slash_in_path_is_encoded_again() -> None:
    creds = Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET)
    now = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    url = "https://eks.us-west-2.amazonaws.com/clusters/a%2Fb/pod-identity-associations?maxResults=5&namespace=x"
    assert _sigv4._canonical_uri("/clusters/a%2Fb/x") == "/clusters/a%252Fb/x"
    ours = {"Content-Type": "application/json"}
    SigV4Signer("eks", "us-west-2").sign_headers(
        method="GET", url=url, headers=ours, body=b"", credentials=creds, now=now
    )
    expected = _boto_sign(
        method="GET",
        url=url,
        headers={"Content-Type": "application/json"},
        body=b"",
        creds=creds,
        service="eks",
        region="us-west-2",
        now=now,
    )
    assert ours["Authorization"] == expected.headers["Authorization"]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:5000/a\tb",  # botocore skips the IPv6 brackets when the URL has a tab
        "http://[::1]:5000/ab",
        "https://[fe80::1%25eth0]/x",
        "https://eks.x.amazonaws.com/a\nb?x=1\r",
        "HTTPS://EKS.Example.com:443/p#frag?x=1",
        "https://h/p?b=2&a=1#frag",
        "https://h",
        "https://h?x",
        "https://h:0443/",
        "http://h:443/",
    ],
)
def test_unusual_urls_match_botocore(url: str) -> None:
    creds = Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET)
    now = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ours: dict[str, str] = {}
    SigV4Signer("eks", "us-west-2").sign_headers(
        method="GET", url=url, headers=ours, body=b"", credentials=creds, now=now
    )
    expected = _boto_sign(
        method="GET",
        url=url,
        headers={},
        body=b"",
        creds=creds,
        service="eks",
        region="us-west-2",
        now=now,
    )
    assert ours["Authorization"] == expected.headers["Authorization"]
    presigned = SigV4Signer("eks", "us-west-2").presign_url(
        method="GET", url=url, headers={}, credentials=creds, now=now, expires=900
    )
    assert presigned == _boto_presign(
        method="GET",
        url=url,
        headers={},
        creds=creds,
        service="eks",
        region="us-west-2",
        now=now,
        expires=900,
    )


def test_host_header_brackets_ipv6_unless_url_has_tab() -> None:
    assert _sigv4._host_header("http://[::1]:5000", True) == "[::1]:5000"
    assert _sigv4._host_header("http://[::1]:5000", False) == "::1:5000"
    assert _sigv4._host_header("https://Example.COM:443", True) == "example.com"
    assert _sigv4._host_header("http://example.com:443", True) == "example.com:443"


def test_resigning_replaces_the_previous_signature() -> None:
    signer = SigV4Signer("eks", "us-west-2")
    creds = Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET, session_token=TOKEN)
    headers = {"Content-Type": "application/json"}
    first = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    signer.sign_headers(
        method="POST", url="https://eks.x.amazonaws.com/clusters", headers=headers,
        body=b"{}", credentials=creds, now=first,
    )  # fmt: skip
    first_auth = headers["Authorization"]
    signer.sign_headers(
        method="POST", url="https://eks.x.amazonaws.com/clusters", headers=headers,
        body=b"{}", credentials=creds, now=first + datetime.timedelta(seconds=1),
    )  # fmt: skip
    assert set(headers) == {"Content-Type", "X-Amz-Date", "X-Amz-Security-Token", "Authorization"}
    assert headers["X-Amz-Date"] == "20240102T030406Z"
    assert headers["Authorization"] != first_auth
    assert "x-amz-date;x-amz-security-token" in headers["Authorization"]


def test_amz_date() -> None:
    utc = datetime.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC)
    assert amz_date(utc) == "20241231T235959Z"
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert amz_date(datetime.datetime(2025, 1, 1, 1, 59, 59, tzinfo=plus_two)) == "20241231T235959Z"
    with pytest.raises(ValueError):
        amz_date(datetime.datetime(2024, 1, 1))


@settings(max_examples=200, deadline=None)
@given(
    url=st.one_of(
        _urls(),
        st.builds(
            lambda base, tail: base + tail,
            st.sampled_from(["https://h", "http://h:1", "HTTPS://h", "https://u@h", "ftp://h"]),
            st.text(st.sampled_from("ab/?#=&%\t:@[]"), max_size=15),
        ),
    )
)
def test_url_split_agrees_with_urlsplit(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    prefix, path, query, _ = _sigv4._split_url(url)
    assert (prefix, path, query) == (f"{parts.scheme}://{parts.netloc}", parts.path, parts.query)


# -- presigning -------------------------------------------------------------------------


def _query_params(url: str) -> list[str]:
    return urlsplit(url).query.split("&")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    url=_urls(),
    headers=_headers(),
    access_key=_access_keys,
    secret=_secrets,
    token=_tokens,
    region=_regions,
    service=st.sampled_from(["sts", "eks"]),
    now=_times,
    expires=st.integers(1, 604800),
)
def test_presign_url_matches_botocore(
    method: str,
    url: str,
    headers: dict[str, str],
    access_key: str,
    secret: str,
    token: str | None,
    region: str,
    service: str,
    now: datetime.datetime,
    expires: int,
) -> None:
    creds = Credentials(access_key_id=access_key, secret_access_key=secret, session_token=token)
    expected = _boto_presign(
        method=method,
        url=url,
        headers=headers,
        creds=creds,
        service=service,
        region=region,
        now=now,
        expires=expires,
    )
    before = dict(headers)
    ours = SigV4Signer(service, region).presign_url(
        method=method, url=url, headers=headers, credentials=creds, now=now, expires=expires
    )
    assert headers == before
    assert urlsplit(ours)[:3] == urlsplit(expected)[:3]
    assert _query_params(ours) == _query_params(expected)
    assert ours == expected


def test_presign_eks_token_url() -> None:
    # What `aws eks get-token` presigns: STS GetCallerIdentity with the cluster name header.
    creds = Credentials(access_key_id="ASIAEXAMPLE", secret_access_key=SECRET, session_token=TOKEN)
    now = datetime.datetime(2024, 6, 1, 12, 0, tzinfo=datetime.UTC)
    url = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
    signer = SigV4Signer("eks", "eu-west-1")
    ours = signer.presign_url(
        method="GET",
        url=url,
        headers={"x-k8s-aws-id": "prod"},
        credentials=creds,
        now=now,
        expires=60,
        service="sts",
    )
    expected = _boto_presign(
        method="GET",
        url=url,
        headers={"x-k8s-aws-id": "prod"},
        creds=creds,
        service="sts",
        region="eu-west-1",
        now=now,
        expires=60,
    )
    assert ours == expected
    params = dict(p.split("=", 1) for p in _query_params(ours))
    assert params["X-Amz-SignedHeaders"] == "host%3Bx-k8s-aws-id"
    assert params["X-Amz-Credential"] == "ASIAEXAMPLE%2F20240601%2Feu-west-1%2Fsts%2Faws4_request"
    assert params["X-Amz-Expires"] == "60"
    assert "x-k8s-aws-id" not in params
    assert list(params)[:2] == ["Action", "Version"]
    assert list(params)[-1] == "X-Amz-Signature"


# -- signing key cache and secrecy ------------------------------------------------------


def test_signing_key_cached_per_day(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str]] = []
    real = _sigv4.derive_signing_key

    def counting(secret: str, date_stamp: str, region: str, service: str) -> bytes:
        calls.append((date_stamp, region, service))
        return real(secret, date_stamp, region, service)

    monkeypatch.setattr(_sigv4, "derive_signing_key", counting)
    signer = SigV4Signer("eks", "us-west-2")
    creds = Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET)
    day1 = datetime.datetime(2024, 3, 1, 0, 0, 1, tzinfo=datetime.UTC)

    def sign(now: datetime.datetime, c: Credentials = creds) -> str:
        headers: dict[str, str] = {}
        signer.sign_headers(
            method="GET",
            url="https://eks.us-west-2.amazonaws.com/clusters",
            headers=headers,
            body=b"",
            credentials=c,
            now=now,
        )
        expected = _boto_sign(
            method="GET",
            url="https://eks.us-west-2.amazonaws.com/clusters",
            headers={},
            body=b"",
            creds=c,
            service="eks",
            region="us-west-2",
            now=now,
        )
        assert headers["Authorization"] == expected.headers["Authorization"]
        return headers["Authorization"]

    for seconds in (0, 60, 3600, 86000):
        sign(day1 + datetime.timedelta(seconds=seconds))
    assert calls == [("20240301", "us-west-2", "eks")]

    sign(day1 + datetime.timedelta(days=1))
    assert calls[-1] == ("20240302", "us-west-2", "eks")
    assert len(calls) == 2
    # The previous day's key is gone; only today's is kept.
    assert [k[1] for k in signer._keys] == ["20240302"]

    # A new secret (rotated credentials) gets its own key.
    sign(
        day1 + datetime.timedelta(days=1),
        Credentials(access_key_id="AKID2", secret_access_key="other"),
    )
    assert len(calls) == 3
    # A presign for another service on the same day derives once more, then reuses it.
    for _ in range(2):
        signer.presign_url(
            method="GET",
            url="https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity",
            headers={},
            credentials=creds,
            now=day1 + datetime.timedelta(days=1),
            expires=60,
            service="sts",
        )
    assert calls[3:] == [("20240302", "us-west-2", "sts")]


def test_no_secret_in_reprs() -> None:
    creds = Credentials(
        access_key_id="AKIAABCDEFGHWXYZ", secret_access_key=SECRET, session_token=TOKEN
    )
    signer = SigV4Signer("eks", "us-west-2")
    signer.sign_headers(
        method="GET",
        url="https://eks.us-west-2.amazonaws.com/clusters",
        headers={},
        body=b"",
        credentials=creds,
        now=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    )
    assert signer._keys  # there is something secret to hide
    for text in (repr(signer), str(signer), repr(creds), str(creds)):
        assert SECRET not in text
        assert TOKEN not in text
        assert "AKIAABCDEFGH" not in text
    assert repr(signer) == "SigV4Signer(service='eks', region='us-west-2')"
    assert "'****WXYZ'" in repr(creds)
    # Copies and pickles do not carry the cached keys.
    assert copy.copy(signer)._keys == {}
    assert pickle.loads(pickle.dumps(signer))._keys == {}
    assert SECRET.encode() not in pickle.dumps(signer)
