"""Hypothesis strategies drawn from botocore's own EKS model, and botocore helpers.

The strategies read botocore's ``ServiceModel``, not eks_async's generated tables, so the
tests compare eks_async with botocore rather than with eks_async's own reading of the model.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.config import Config
from botocore.model import OperationModel, ServiceModel, Shape
from hypothesis import strategies as st

REGION = "us-west-2"
ACCESS_KEY = "AKIDEXAMPLEEXAMPLE01"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//token+with/odd=chars"

# Text that exercises percent-encoding: reserved characters, spaces, unicode.
_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abcXYZ019-_.~ /:?#[]@!$&'()*+,;=%\"<>{}|\\^`")),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=12,
)


@cache
def service_model() -> ServiceModel:
    session = botocore.session.get_session()
    return session.get_service_model("eks")


def operation_names() -> list[str]:
    return sorted(service_model().operation_names)


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def _ordered(shape: Shape, value: dict[str, Any]) -> dict[str, Any]:
    return {k: value[k] for k in shape.members if k in value}


def value_strategy(shape: Shape, *, label: bool = False, depth: int = 0) -> st.SearchStrategy[Any]:
    """Valid values of ``shape`` as boto3 takes them (dicts for structures)."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        min_size = max(meta.get("min", 0), 1 if label else 0)
        if label:  # eks_async refuses "." and ".." as URI labels (they change the path)
            return value_strategy(shape, depth=depth).filter(
                lambda s: len(s) >= 1 and s not in (".", "..")
            )
        return st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
            min_size=min_size,
            max_size=max(min_size, 12),
        ) | _TEXT.filter(lambda s: len(s) >= min_size)
    if kind == "integer":
        return st.integers(min_value=meta.get("min", -(2**31)), max_value=meta.get("max", 2**31))
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes(
            min_value=datetime.datetime(2000, 1, 1),
            max_value=datetime.datetime(2100, 1, 1),
            timezones=st.just(datetime.UTC),
        ).map(lambda d: d.replace(microsecond=0))
    if kind == "list":
        return st.lists(
            value_strategy(shape.member, depth=depth + 1),
            min_size=meta.get("min", 0),
            max_size=max(meta.get("min", 0), 3 if depth < 3 else 1),
        )
    if kind == "map":
        return st.dictionaries(
            value_strategy(shape.key, depth=depth + 1),
            value_strategy(shape.value, depth=depth + 1),
            min_size=meta.get("min", 0),
            max_size=max(meta.get("min", 0), 3 if depth < 3 else 1),
        )
    if kind == "structure":
        required = set(shape.required_members)
        fixed = {}
        optional = {}
        for name, member in shape.members.items():
            if member.serialization.get("location") == "header":  # pragma: no cover
                continue
            is_label = member.serialization.get("location") == "uri"
            strat = value_strategy(member, label=is_label, depth=depth + 1)
            if name in required or is_label:
                fixed[name] = strat
            elif depth < 4:
                optional[name] = strat
        return st.fixed_dictionaries(fixed, optional=optional).map(
            lambda d, shape=shape: _ordered(shape, d)
        )
    raise AssertionError(f"no strategy for {kind}")


def input_strategy(op_name: str) -> st.SearchStrategy[dict[str, Any]]:
    shape = operation(op_name).input_shape
    assert shape is not None
    return value_strategy(shape)


def output_strategy(op_name: str) -> st.SearchStrategy[dict[str, Any]]:
    shape = operation(op_name).output_shape
    assert shape is not None
    return value_strategy(shape)


# --------------------------------------------------------------------------- endpoints


@contextlib.contextmanager
def isolated_session() -> Iterator[botocore.session.Session]:
    """A botocore session that sees no AWS settings from the environment or config files."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AWS_", "BOTO_")):
                mp.delenv(name)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        yield botocore.session.Session()


class _Sent(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def botocore_sent_url(
    session: botocore.session.Session,
    service: str,
    region: str,
    use_fips: bool,
    use_dualstack: bool,
    call: Callable[[Any], object],
) -> str | None:
    """The URL a real botocore client of ``service`` sends ``call(client)`` to, stopped before
    sending; ``None`` where botocore refuses to create the client or to resolve the endpoint."""
    config = Config(
        use_fips_endpoint=use_fips,
        use_dualstack_endpoint=use_dualstack,
        retries={"total_max_attempts": 1},
    )
    try:
        client = session.create_client(
            service,
            region_name=region,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=config,
        )
    except (botocore.exceptions.BotoCoreError, ValueError):
        return None

    def stop(request: Any, **_: Any) -> None:
        raise _Sent(request.url)

    client.meta.events.register("before-send", stop)
    try:
        call(client)
    except _Sent as sent:
        return sent.url
    except botocore.exceptions.EndpointResolutionError:
        return None
    finally:
        client.close()
    raise AssertionError("the request was not stopped before sending")
