"""Sends traces to an OTLP/HTTP endpoint with the official OpenTelemetry Python SDK.

usage: otel_send.py ENDPOINT TRACES

Each trace is web -> api -> db, each service with its own TracerProvider (its own
resource service.name), exported span by span (SimpleSpanProcessor), so children reach the
server before their parents. Every third db span has status ERROR.
"""
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

endpoint, n = sys.argv[1], int(sys.argv[2])
providers = {}
for name in ("web", "api", "db"):
    p = TracerProvider(resource=Resource.create({"service.name": name}))
    p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10)))
    providers[name] = p
t = {name: p.get_tracer("auspex-test") for name, p in providers.items()}

for i in range(n):
    with t["web"].start_as_current_span("GET /", kind=SpanKind.SERVER) as root:
        ctx = trace.set_span_in_context(root)
        with t["api"].start_as_current_span("GET /items", context=ctx, kind=SpanKind.SERVER) as api:
            ctx2 = trace.set_span_in_context(api)
            with t["db"].start_as_current_span("SELECT", context=ctx2, kind=SpanKind.SERVER) as db:
                if i % 3 == 0:
                    db.set_status(Status(StatusCode.ERROR, "timeout"))
for p in providers.values():
    p.force_flush()
    p.shutdown()
print("sent", n)
