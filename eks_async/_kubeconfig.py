"""Write or merge an EKS cluster's entry into a kubeconfig, as ``aws eks update-kubeconfig``.

The entry's user runs ``eks-async token`` as kubectl's exec plugin. Every other entry of
the file is kept as it was; the file is written with mode 0600.

kubectl runs that command from whatever shell it was started in, where the virtual
environment that installed ``eks-async`` is usually not activated; so the entry names
``eks-async`` bare only when ``PATH`` finds this very program, and its absolute path
otherwise (``exec_command``).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def default_path() -> Path:
    """``$KUBECONFIG``'s first file, else ``~/.kube/config``."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


PROGRAM = "eks-async"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _script() -> str | None:
    """The ``eks-async`` script running now, else the one installed next to Python."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name in (PROGRAM, PROGRAM + ".exe") and os.path.isfile(argv0):
        # Not resolved: a virtual environment's scripts may be links out of it.
        return os.path.abspath(argv0)
    folder = Path(sys.executable).parent if sys.executable else None
    if folder is not None:
        for name in (PROGRAM, PROGRAM + ".exe"):
            candidate = folder / name
            if candidate.is_file():
                return str(candidate)
    return None


def exec_command(path: str | None = None) -> list[str]:
    """The command (and its first arguments) kubectl should run for ``eks-async token``.

    ``eks-async`` when ``PATH`` (``path``, default ``$PATH``) finds the program running
    now; its absolute path when it does not; ``<python> -m eks_async`` when no script is
    installed at all.
    """
    script = _script()
    if script is None:
        return [sys.executable or "python3", "-m", "eks_async"]
    found = shutil.which(PROGRAM, path=path)
    if found is not None and _same_file(found, script):
        return [PROGRAM]
    return [script]


def _upsert(entries: list[dict[str, Any]], name: str, key: str, value: dict[str, Any]) -> None:
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            entry[key] = value
            return
    entries.append({key: value, "name": name})


def merge_cluster(
    path: Path,
    *,
    arn: str,
    server: str,
    ca_data: str | None,
    alias: str | None,
    command: str,
    args: Sequence[str],
) -> str:
    """Add or replace the cluster, user and context for ``arn``; returns the context name."""
    import yaml  # the cli extra

    path = Path(path)
    config: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{path} is not a kubeconfig (a mapping at its top)")
        config = loaded or {}
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    for key in ("clusters", "contexts", "users"):
        if not isinstance(config.get(key), list):
            config[key] = []
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    _upsert(config["clusters"], arn, "cluster", cluster)
    _upsert(
        config["users"],
        arn,
        "user",
        {"exec": {"apiVersion": EXEC_API_VERSION, "command": command, "args": list(args),
                  "interactiveMode": "Never", "provideClusterInfo": False}},
    )
    context = alias or arn
    _upsert(config["contexts"], context, "context", {"cluster": arn, "user": arn})
    config["current-context"] = context
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return context
