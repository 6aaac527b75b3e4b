"""CPU cost of ``EKSClient.get_token``: a cached token, and a fresh one, explicit credentials.

    python -m benchmarks.token

A fresh token is one SigV4 query presigning (the signing key is cached per day) plus the
base64 encoding; a cached one is a dictionary look-up and an expiry check.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import eks_async


async def measure(n_cached: int = 20_000, n_fresh: int = 2_000) -> dict[str, float]:
    async with eks_async.EKSClient(
        region="us-west-2", aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret"
    ) as eks:
        await eks.get_token(cluster_name="warm-up")
        start = time.process_time()
        for _ in range(n_cached):
            await eks.get_token(cluster_name="warm-up")
        cached = (time.process_time() - start) / n_cached
        start = time.process_time()
        for i in range(n_fresh):
            await eks.get_token(cluster_name=f"cluster-{i}")  # a new cluster: a new token
        fresh = (time.process_time() - start) / n_fresh
    return {"cached_us": cached * 1e6, "fresh_us": fresh * 1e6}


def main() -> None:
    runs = [asyncio.run(measure()) for _ in range(5)]
    cached = statistics.median(r["cached_us"] for r in runs)
    fresh = statistics.median(r["fresh_us"] for r in runs)
    print("| get_token | CPU per call (median of 5) |")
    print("|---|---|")
    print(f"| cached | {cached:.2f} µs |")
    print(f"| fresh (explicit credentials) | {fresh:.1f} µs |")


if __name__ == "__main__":
    main()
