"""Benchmarks of eks_async against aiobotocore: ``python -m benchmarks`` (``--quick``)."""
