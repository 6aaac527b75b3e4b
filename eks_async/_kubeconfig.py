"""Write or merge an EKS cluster's entry into a kubeconfig, as ``aws eks update-kubeconfig``.

The entry's user runs ``eks-async token`` as kubectl's exec plugin. Every other entry of
the file is kept as it was; the file is written with mode 0600.
"""

from __future__ import annotations

import os
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
