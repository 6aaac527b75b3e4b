"""Which error codes and statuses each retry kind covers (a leaf: imports nothing).

The throttling and transient sets are those of the AWS SDKs' standard retry mode (botocore's
``retries/standard.py`` and ``_retry.json``), plus EKS's own ``TooManyRequestsException``.
"""

from __future__ import annotations

from typing import Final, Literal

THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES: Final = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServerException",
        "ServiceUnavailableException",
    }
)
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})
#: Codes that say the request's time is off: corrected once from the answer's Date header.
CLOCK_SKEW_CODES: Final = frozenset(
    {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "RequestInTheFuture",
    }
)

#: Why an error is worth retrying.
Kind = Literal["throttling", "transient", "timeout", "connection"]


def service_error_kind(code: str, http_status: int) -> Kind | None:
    """The retry kind of an error answer, or ``None`` when it is never retried."""
    if code in THROTTLING_CODES or http_status == 429:
        return "throttling"
    if code in TRANSIENT_CODES or http_status in TRANSIENT_STATUSES:
        return "transient"
    return None
