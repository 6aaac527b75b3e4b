"""OpenTelemetry's SDK for the telemetry tests: a tracer provider with an in-memory exporter.

The provider is put in place of the API's global one for one test (and taken away after),
so no other test of the run sees a tracer provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The finished spans of the test (``spans.get_finished_spans()``)."""
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


def everything(exporter: InMemorySpanExporter) -> str:
    """Every span as the SDK exports it (names, attributes, events, status, links)."""
    return "\n".join(s.to_json() for s in exporter.get_finished_spans()) + json.dumps(
        [dict(s.attributes or {}) for s in exporter.get_finished_spans()]
    )
