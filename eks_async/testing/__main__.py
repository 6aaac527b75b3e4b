"""``python -m eks_async.testing``: serve an emulator over HTTP until interrupted.

The same command as ``eks-async emulator`` (both come from ``eks_async._emulator_cli``):
the first line on stdout is the URL to use as ``endpoint_url``; the test credentials, the
region, the admin API's address and each ``--cluster``'s Kubernetes endpoint follow on
stderr.
"""

from __future__ import annotations

import sys

from .._emulator_cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
