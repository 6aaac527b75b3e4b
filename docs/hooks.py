"""mkdocs hook: expands ``<!-- reference: MODULE -->`` into one ``:::`` block per name.

The reference pages list the generated names (hundreds of data classes, enums and error
classes) through this marker instead of by hand, so a name the generator adds appears in
the reference at the next build. ``MODULE`` is a module whose ``__all__`` gives the names;
they are documented under ``PUBLIC`` (the module users import them from), as
``<!-- reference: eks_async._generated.models as eks_async -->`` says.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"^<!-- reference: ([\w.]+) as ([\w.]+) -->$", re.M)


def on_config(config: Any) -> Any:
    # This checkout's eks_async, not another installed copy.
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def _expand(match: re.Match[str]) -> str:
    module, public = match.group(1), match.group(2)
    names = sorted(importlib.import_module(module).__all__, key=str.lower)
    # Labels ("class-attribute", "instance-attribute") on each of thousands of fields say
    # nothing these pages need.
    options = "    options:\n      show_labels: false\n"
    return "\n\n".join(f"::: {public}.{name}\n{options}" for name in names)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return _MARKER.sub(_expand, markdown)
