"""``EKSClient``: every EKS operation as a typed coroutine."""

from __future__ import annotations

from ._generated.client import EKSOperations


class EKSClient(EKSOperations):
    """An asyncio client for the Amazon EKS API.

    Use it as ``async with EKSClient(region="us-west-2") as eks:``; one client serves
    any number of concurrent tasks over one pool of connections.
    """

    __slots__ = ()
