"""What every output carries besides the operation's own data."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True, slots=True)
class ResponseMetadata:
    """How an answer came about: EKS's request id, the HTTP status, attempts and waiting."""

    request_id: str | None
    http_status: int
    #: Attempts the call made, the successful one included.
    attempts: int = 1
    #: Seconds spent sleeping between attempts.
    retry_wait: float = 0.0
