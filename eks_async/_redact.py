"""Taking secrets out of text before an error or a log line shows it.

AWS echoes more than it should in some error messages: a signature mismatch quotes the
canonical request it computed, which holds the ``x-amz-security-token`` header line of a
caller using temporary credentials. Error bodies and snippets may also quote query strings
(``X-Amz-Security-Token=``, ``X-Amz-Signature=``), Authorization headers
(``Signature=<hex>``) or cluster tokens (``k8s-aws-v1.<base64url>``, a presigned URL).

``redact`` replaces the values of those forms with ``<redacted>``, keeping the names so
a reader still sees what was there. Given the exact secret values, it also replaces those
values (and their percent-encoded forms) wherever they appear, even without a marker.

Every eks_async exception redacts its text when it is made (see ``_exceptions``);
``redact_error`` redacts one already made, with the exact credentials of the attempt.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable
from typing import Any, Final, TypeVar, cast

__all__ = ["REDACTED", "masked", "redact", "redact_error", "redact_value"]

#: What a secret is replaced with.
REDACTED: Final = "<redacted>"
#: Exact values shorter than this are not redacted: no real credential is that short, and
#: replacing a few common characters everywhere would make the text unreadable.
MIN_SECRET_LENGTH: Final = 8

# The characters a value runs over: not whitespace, not a separator of a query string,
# header list or quoted/escaped text. Session tokens (base64, maybe percent-encoded),
# hex signatures and base64url tokens all fit.
_VALUE = r"[^\s&'\",;\\<>]+"
_SECRET_FORMS_SOURCE: Final = (
    # x-amz-security-token:<token> (canonical request, headers) or =<token> (query).
    rf"(?P<token>(?i:x-amz-security-token)[ \t]*[:=][ \t]*){_VALUE}"
    # Signature=<hex> (Authorization header) and X-Amz-Signature=<hex> (query).
    rf"|(?P<sig>\b(?i:(?:x-amz-)?signature)=){_VALUE}"
    # A cluster bearer token: a presigned STS URL, base64url-encoded.
    r"|(?P<bearer>\bk8s-aws-v1\.)[A-Za-z0-9_\-]+=*"
    # A credential field quoted by a provider's error (JSON, a dict's repr, an ini line):
    # 'SecretAccessKey': '...', "Token": "...", aws_session_token = ...
    # The name starts the text or follows a space, "{", "," or "(" (not inside a value).
    r"|(?P<field>(?<![^\s{,(])[\"']?(?i:(?:aws_)?secret_?access_?key|(?:aws_)?session_?token|token)"
    rf"[\"']?[ \t]*[:=][ \t]*[\"']?){_VALUE}"
)
# The cheap first look: only text holding one of these goes through the pattern, which is
# compiled on first use (``import eks_async`` does not pay for it).
_MARKERS: Final = ("token", "signature=", "k8s-aws-v1.", "secret")


@functools.cache
def _secret_forms() -> re.Pattern[str]:
    return re.compile(_SECRET_FORMS_SOURCE)


def _keep_name(match: re.Match[str]) -> str:
    name = (
        match.group("token") or match.group("sig") or match.group("bearer") or match.group("field")
    )
    return f"{name}{REDACTED}"


def _forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as given and percent-encoded, longest first (so none hides another)."""
    from urllib.parse import quote, quote_plus

    forms: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            continue
        forms.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
    return sorted(forms, key=len, reverse=True)


def _cut_ends(text: str, secret: str) -> str:
    """Redact a piece of ``secret`` at either end of ``text`` (a snippet cut mid-secret)."""
    head = secret[:MIN_SECRET_LENGTH]
    pos = text.find(head)
    while pos != -1:
        if secret.startswith(text[pos:]):
            return text[:pos] + REDACTED
        pos = text.find(head, pos + 1)
    tail = secret[-MIN_SECRET_LENGTH:]
    pos = text.find(tail)
    while pos != -1:
        end = pos + MIN_SECRET_LENGTH
        if secret.endswith(text[:end]):
            return REDACTED + text[end:]
        pos = text.find(tail, pos + 1)
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret it shows replaced by ``<redacted>``.

    Always redacted: session tokens after ``x-amz-security-token:`` or ``=``, SigV4
    signatures after ``Signature=`` or ``X-Amz-Signature=``, and ``k8s-aws-v1.`` bearer
    tokens. ``secrets``: exact values to redact too (as given and percent-encoded), also
    when cut short at the start or end of ``text``; values under 8 characters are ignored.
    Text with nothing to redact is returned as it is (the same object).
    """
    if secrets:
        forms = _forms(secrets)
        for form in forms:
            if form in text:
                text = text.replace(form, REDACTED)
        for form in forms:
            text = _cut_ends(text, form)
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    return _secret_forms().sub(_keep_name, text)


V = TypeVar("V")


def redact_value(value: V, secrets: Iterable[str] = ()) -> V:
    """``value`` redacted if it is text, or holds text (lists, tuples, dicts); else itself.

    What has nothing to redact comes back as the same object.
    """
    secrets = tuple(secrets)
    out: Any = value
    if isinstance(out, str):
        out = redact(out, secrets)
    elif isinstance(out, list) or type(out) is tuple:
        items = [redact_value(item, secrets) for item in out]
        if any(new is not old for new, old in zip(items, out, strict=True)):
            out = items if isinstance(out, list) else tuple(items)
    elif isinstance(out, dict):
        pairs = [(redact_value(k, secrets), redact_value(v, secrets)) for k, v in out.items()]
        if any(
            k is not old_k or v is not old_v
            for (k, v), (old_k, old_v) in zip(pairs, out.items(), strict=True)
        ):
            out = dict(pairs)
    return cast(V, out)


E = TypeVar("E", bound=BaseException)


def redact_error(
    error: E, secrets: Iterable[str | None] = (), *, cause: BaseException | None = None
) -> E:
    """Redact ``error`` in place, and the errors it was raised from; returns ``error``.

    ``cause`` becomes the error's ``__cause__`` first (so it is redacted too): use it as
    ``raise redact_error(MyError(...), cause=exc) from exc``.

    Contract: afterwards no text the error shows — ``str()``, ``repr()``, ``args``,
    ``message``, any text attribute (or text inside a list, tuple or dict attribute),
    ``__notes__`` — holds a secret ``redact`` recognizes, nor any of ``secrets``
    (the exact credentials used for the attempt: secret access key, session token;
    values under 8 characters are ignored). The same is done to every exception of its
    ``__cause__`` / ``__context__`` chain. Attributes that refuse to be set are left as
    they are; nothing is raised. Use it as ``raise redact_error(exc, secrets) from ...``.
    """
    if cause is not None:
        error.__cause__ = cause
    known = tuple(s for s in secrets if isinstance(s, str))
    seen: set[int] = set()
    current: BaseException | None = error
    pending: list[BaseException] = []
    while current is not None or pending:
        if current is None:
            current = pending.pop()
        if id(current) in seen:
            current = None
            continue
        seen.add(id(current))
        _redact_one(current, known)
        if current.__context__ is not None and current.__context__ is not current.__cause__:
            pending.append(current.__context__)
        current = current.__cause__
    return error


def _redact_one(error: BaseException, secrets: tuple[str, ...]) -> None:
    args = redact_value(error.args, secrets)
    if args is not error.args:
        with contextlib.suppress(Exception):  # an odd exception type keeps its args
            error.args = args
    attributes = getattr(error, "__dict__", None)
    if not attributes:
        return
    for name, value in list(attributes.items()):
        redacted = redact_value(value, secrets)
        if redacted is not value:
            with contextlib.suppress(Exception):  # a read-only attribute stays as it is
                setattr(error, name, redacted)


def masked(value: object) -> str:
    """The repr of a secret field of a data class: ``'****'`` (``None`` when unset)."""
    return "None" if value is None else "'****'"
