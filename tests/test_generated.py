"""The generated package is what the generator makes from the pinned botocore model."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import botocore

from codegen.generate import HEADER, OUT, render_all

BOTOCORE = Path(botocore.__file__).parent


def test_regenerating_changes_nothing() -> None:
    rendered = render_all(BOTOCORE)
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUT.glob("*.py*")}
    assert sorted(committed) == sorted(rendered)
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is stale: run python -m codegen.generate"


def test_every_generated_file_says_so_on_its_first_line() -> None:
    for path in OUT.glob("*.py*"):
        assert path.read_text(encoding="utf-8").startswith(HEADER), path.name


def test_no_documentation_prose_is_copied() -> None:
    with gzip.open(BOTOCORE / "data/eks/2017-11-01/service-2.json.gz", "rt") as fh:
        model = json.load(fh)
    docs: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "documentation" and isinstance(value, str):
                    docs.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(model)
    generated = "\n".join(p.read_text(encoding="utf-8") for p in OUT.glob("*.py*"))
    sentences = {
        s.strip()
        for doc in docs
        for s in re.split(r"(?<=[.!?])\s", re.sub(r"<[^>]+>", "", doc))
        if len(s.strip()) > 40
    }
    assert sentences  # the check looks at something
    copied = [s for s in sentences if s in generated]
    assert copied == []


def test_import_builds_no_model_class_and_loads_no_botocore() -> None:
    import subprocess
    import sys

    code = (
        "import sys, eks_async\n"
        "from eks_async._generated import models\n"
        "assert 'botocore' not in sys.modules and 'aiobotocore' not in sys.modules\n"
        "assert 'Cluster' not in vars(models)\n"
        "eks_async.EKSClient(region='us-west-2', aws_access_key_id='a', aws_secret_access_key='b')\n"
        "assert 'botocore' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_lazily_built_classes_are_ordinary_and_unique() -> None:
    import pickle
    import threading

    import eks_async
    from eks_async._generated import models

    seen: list[type] = []
    threads = [threading.Thread(target=lambda: seen.append(models.Taint)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(cls) for cls in seen}) == 1
    assert eks_async.Taint is models.Taint
    taint = eks_async.Taint(key="k", value="v", effect=eks_async.TaintEffect.NO_SCHEDULE)
    assert repr(taint).startswith("Taint(key='k'")
    assert pickle.loads(pickle.dumps(taint)) == taint
    assert "Taint" in dir(eks_async)
    import pytest

    with pytest.raises(AttributeError):
        eks_async.NoSuchModel  # noqa: B018
