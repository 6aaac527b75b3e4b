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
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUT.glob("*.py")}
    assert sorted(committed) == sorted(rendered)
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is stale: run python -m codegen.generate"


def test_every_generated_file_says_so_on_its_first_line() -> None:
    for path in OUT.glob("*.py"):
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
    generated = "\n".join(p.read_text(encoding="utf-8") for p in OUT.glob("*.py"))
    sentences = {
        s.strip()
        for doc in docs
        for s in re.split(r"(?<=[.!?])\s", re.sub(r"<[^>]+>", "", doc))
        if len(s.strip()) > 40
    }
    assert sentences  # the check looks at something
    copied = [s for s in sentences if s in generated]
    assert copied == []
