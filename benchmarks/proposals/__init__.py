"""Prototypes of per-call changes to eks_async's core, measured without editing it.

``lean``: the default path sends through aiohttp directly (no ``httpx.Request`` /
``httpx.Response`` per call); ``rawhttp``: an HTTP/1.1 client on asyncio's own protocols
(no aiohttp). ``python -m benchmarks.profile --prototypes`` measures them; the ``*.diff``
files beside them are the corresponding changes to the core files.
"""
