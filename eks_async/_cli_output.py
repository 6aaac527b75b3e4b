"""What ``eks-async`` prints: results on stdout (JSON, a table or YAML), waiter progress on
stderr."""

from __future__ import annotations

import datetime
import json
import sys
from typing import Any, TextIO

from ._exceptions import EKSAsyncError
from ._generated.operations import OPERATIONS
from ._waiters.engine import WaitProgress, to_model_form

#: The formats ``--output`` accepts.
OUTPUT_FORMATS = ("json", "table", "yaml")
YAML_INSTALL = "pip install 'eks-async[cli]'  (or: pip install pyyaml)"


class UsageError(EKSAsyncError):
    """The command line asked for something this installation or these flags cannot do
    (exit status 2, as for a bad flag)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def output_as_dict(operation: str, output: Any) -> dict[str, Any]:
    """An operation's typed output as boto3 shows it (model names), JSON-ready."""
    data = to_model_form(output, OPERATIONS[operation].output_shape) or {}
    return dict(_jsonable(data))


def _rows(data: Any) -> tuple[list[str], list[list[str]]]:
    """Columns and rows for a table: the first list of objects found, else key/value."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                columns: list[str] = []
                for item in value:
                    columns += [k for k in item if k not in columns and not isinstance(item[k], dict | list)]
                return columns, [[str(item.get(c, "")) for c in columns] for item in value]
            if isinstance(value, list):  # ids or ARNs (or nothing): one column, named by the key
                return [key], [[str(v)] for v in value]
            if isinstance(value, dict):
                flat = {k: v for k, v in value.items() if not isinstance(v, dict | list)}
                return ["field", "value"], [[k, str(v)] for k, v in flat.items()]
        return ["field", "value"], [[k, json.dumps(v)] for k, v in data.items()]
    return ["value"], [[str(data)]]


def print_table(data: Any, out: TextIO) -> None:
    columns, rows = _rows(data)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
        for row in rows:
            out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    # Off a terminal nothing tells the width: never cut ids and ARNs short.
    Console(file=out, width=None if out.isatty() else 1000).print(table)


def check_output_format(fmt: str) -> None:
    """Refuse ``--output yaml`` up front (before any call) when PyYAML is not installed."""
    if fmt == "yaml":
        try:
            import yaml  # noqa: F401
        except ImportError:
            raise UsageError(f"--output yaml needs PyYAML, which is not installed: {YAML_INSTALL}") from None


def print_data(fmt: str, data: dict[str, Any], out: TextIO | None = None) -> None:
    """``data`` (model names, JSON-ready) in the format ``--output`` chose."""
    out = out or sys.stdout
    if fmt == "table":
        print_table(data, out)
    elif fmt == "yaml":
        check_output_format(fmt)
        import yaml

        out.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    else:
        json.dump(data, out, indent=2, sort_keys=False)
        out.write("\n")


def emit(fmt: str, operation: str, output: Any) -> None:
    """An operation's output on stdout, in the format ``--output`` chose."""
    print_data(fmt, output_as_dict(operation, output))


class Progress:
    """Draws waiter polls: one live line on a terminal, one log line per poll otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.polls = 0

    def __call__(self, event: WaitProgress) -> None:
        self.polls += 1
        nxt = f"next poll in {event.next_delay:.1f}s" if event.next_delay is not None else "done"
        text = (
            f"{event.waiter}: {event.state} (poll {event.attempt}, "
            f"{event.elapsed:.1f}s elapsed, {nxt})"
        )
        if self.live:
            end = "\n" if event.next_delay is None else ""
            self.stream.write("\r\x1b[2K" + text + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end_line(self) -> None:
        """Finish a live line cut short (an interrupted wait), so what follows starts clean."""
        if self.live and self.polls:
            self.stream.write("\n")
            self.stream.flush()
