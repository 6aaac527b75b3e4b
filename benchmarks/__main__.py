"""``python -m benchmarks``: every benchmark, one table (see ``benchmarks/run.py``)."""

from .run import main

main()
