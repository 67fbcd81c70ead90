//! OTLP/HTTP traces (`ExportTraceServiceRequest`), in protobuf and in the spec's JSON mapping
//! (lowerCamelCase fields, trace and span ids as hex, 64-bit integers as strings or numbers,
//! enums as integers). Unknown fields are ignored in both. Only what the service graph and
//! the RED series need is kept: ids, the service (resource attribute `service.name`), name,
//! kind, times and the error status.

use prost::Message;
use serde::Deserialize;

/// Span kind values (OTLP `Span.SpanKind`).
pub mod kind {
    /// SERVER.
    pub const SERVER: i32 = 2;
    /// CLIENT.
    pub const CLIENT: i32 = 3;
    /// CONSUMER.
    pub const CONSUMER: i32 = 5;
}

/// One span, as Auspex keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Trace id (16 bytes).
    pub trace_id: u128,
    /// Span id (8 bytes).
    pub span_id: u64,
    /// Parent span id; `None` for a root span.
    pub parent: Option<u64>,
    /// `service.name` of its resource (`unknown_service` when absent).
    pub service: String,
    /// Span name.
    pub name: String,
    /// OTLP span kind.
    pub kind: i32,
    /// Start, Unix nanoseconds.
    pub start_ns: u64,
    /// End, Unix nanoseconds.
    pub end_ns: u64,
    /// Status code ERROR.
    pub error: bool,
}

/// A body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpError {
    /// Not valid protobuf for the message.
    #[error("malformed OTLP protobuf: {0}")]
    Protobuf(String),
    /// Not valid OTLP JSON.
    #[error("malformed OTLP JSON: {0}")]
    Json(String),
    /// A field has an invalid value.
    #[error("invalid span: {0}")]
    Invalid(String),
    /// Too many spans in one request.
    #[error("too many spans in one request: {n} (limit {max})")]
    TooMany {
        /// Spans found.
        n: usize,
        /// The limit.
        max: usize,
    },
}

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, optional, tag = "1")]
        pub string_value: Option<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
}

const STATUS_ERROR: i32 = 2;
const UNKNOWN_SERVICE: &str = "unknown_service";

fn trace_id(b: &[u8]) -> Result<u128, OtlpError> {
    let a: [u8; 16] = b
        .try_into()
        .map_err(|_| OtlpError::Invalid(format!("trace id must be 16 bytes, got {}", b.len())))?;
    let id = u128::from_be_bytes(a);
    if id == 0 {
        return Err(OtlpError::Invalid("trace id is all zeros".into()));
    }
    Ok(id)
}

fn span_id(b: &[u8], what: &str) -> Result<u64, OtlpError> {
    let a: [u8; 8] = b
        .try_into()
        .map_err(|_| OtlpError::Invalid(format!("{what} must be 8 bytes, got {}", b.len())))?;
    Ok(u64::from_be_bytes(a))
}

fn parent_id(b: &[u8]) -> Result<Option<u64>, OtlpError> {
    if b.is_empty() {
        return Ok(None);
    }
    Ok(Some(span_id(b, "parent span id")?).filter(|&p| p != 0))
}

/// Refuses a request with more than `max` spans.
fn check_count(n: usize, max: usize) -> Result<(), OtlpError> {
    if n > max { Err(OtlpError::TooMany { n, max }) } else { Ok(()) }
}

/// Decodes an `ExportTraceServiceRequest` in protobuf.
pub fn decode_protobuf(body: &[u8], max_spans: usize) -> Result<Vec<Span>, OtlpError> {
    let req = pb::ExportTraceServiceRequest::decode(body)
        .map_err(|e| OtlpError::Protobuf(e.to_string()))?;
    let n: usize =
        req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    check_count(n, max_spans)?;
    let mut out = Vec::with_capacity(n);
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.string_value.clone())
            .unwrap_or_else(|| UNKNOWN_SERVICE.into());
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Span {
                    trace_id: trace_id(&s.trace_id)?,
                    span_id: span_id(&s.span_id, "span id")?,
                    parent: parent_id(&s.parent_span_id)?,
                    service: service.clone(),
                    name: s.name,
                    kind: s.kind,
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano.max(s.start_time_unix_nano),
                    error: s.status.is_some_and(|st| st.code == STATUS_ERROR),
                });
            }
        }
    }
    Ok(out)
}

/// Encodes spans as protobuf (tests and load generators); one resource per span.
pub fn encode_protobuf(spans: &[Span]) -> Vec<u8> {
    let req = pb::ExportTraceServiceRequest {
        resource_spans: spans
            .iter()
            .map(|s| pb::ResourceSpans {
                resource: Some(pb::Resource {
                    attributes: vec![pb::KeyValue {
                        key: "service.name".into(),
                        value: Some(pb::AnyValue { string_value: Some(s.service.clone()) }),
                    }],
                }),
                scope_spans: vec![pb::ScopeSpans {
                    spans: vec![pb::Span {
                        trace_id: s.trace_id.to_be_bytes().to_vec(),
                        span_id: s.span_id.to_be_bytes().to_vec(),
                        parent_span_id: s
                            .parent
                            .map(|p| p.to_be_bytes().to_vec())
                            .unwrap_or_default(),
                        name: s.name.clone(),
                        kind: s.kind,
                        start_time_unix_nano: s.start_ns,
                        end_time_unix_nano: s.end_ns,
                        status: Some(pb::Status {
                            message: String::new(),
                            code: if s.error { STATUS_ERROR } else { 0 },
                        }),
                    }],
                }],
            })
            .collect(),
    };
    req.encode_to_vec()
}

// ---- JSON mapping ----

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JRequest {
    resource_spans: Vec<JResourceSpans>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JResourceSpans {
    resource: Option<JResource>,
    scope_spans: Vec<JScopeSpans>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JResource {
    attributes: Vec<JKeyValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JKeyValue {
    key: String,
    value: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JScopeSpans {
    spans: Vec<JSpan>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JSpan {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: serde_json::Value,
    start_time_unix_nano: serde_json::Value,
    end_time_unix_nano: serde_json::Value,
    status: Option<JStatus>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JStatus {
    code: serde_json::Value,
}

fn hex_bytes(s: &str, what: &str, len: usize) -> Result<Vec<u8>, OtlpError> {
    let bad = || OtlpError::Invalid(format!("{what} {s:?} must be {} hex digits", len * 2));
    if s.len() != len * 2 {
        return Err(bad());
    }
    (0..len)
        .map(|i| {
            u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())
        })
        .collect()
}

fn json_u64(v: &serde_json::Value, what: &str) -> Result<u64, OtlpError> {
    match v {
        serde_json::Value::Null => Ok(0),
        serde_json::Value::Number(n) => {
            n.as_u64().ok_or_else(|| OtlpError::Invalid(format!("{what} {n} is not a u64")))
        }
        serde_json::Value::String(s) => {
            s.parse().map_err(|_| OtlpError::Invalid(format!("{what} {s:?} is not a u64")))
        }
        other => Err(OtlpError::Invalid(format!("{what} {other} is not a u64"))),
    }
}

fn json_enum(v: &serde_json::Value, what: &str) -> Result<i32, OtlpError> {
    match v {
        serde_json::Value::Null => Ok(0),
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|x| i32::try_from(x).ok())
            .ok_or_else(|| OtlpError::Invalid(format!("{what} {n} is not an enum value"))),
        // Enum names are tolerated as unknown values.
        serde_json::Value::String(_) => Ok(0),
        other => Err(OtlpError::Invalid(format!("{what} {other} is not an enum value"))),
    }
}

/// Decodes an `ExportTraceServiceRequest` in OTLP JSON.
pub fn decode_json(body: &[u8], max_spans: usize) -> Result<Vec<Span>, OtlpError> {
    let req: JRequest = serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string()))?;
    let n: usize =
        req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    check_count(n, max_spans)?;
    let mut out = Vec::with_capacity(n);
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.get("stringValue")?.as_str().map(str::to_string))
            .unwrap_or_else(|| UNKNOWN_SERVICE.into());
        for ss in rs.scope_spans {
            for s in ss.spans {
                let start_ns = json_u64(&s.start_time_unix_nano, "startTimeUnixNano")?;
                let end_ns = json_u64(&s.end_time_unix_nano, "endTimeUnixNano")?;
                let parent = if s.parent_span_id.is_empty() {
                    None
                } else {
                    parent_id(&hex_bytes(&s.parent_span_id, "parentSpanId", 8)?)?
                };
                out.push(Span {
                    trace_id: trace_id(&hex_bytes(&s.trace_id, "traceId", 16)?)?,
                    span_id: span_id(&hex_bytes(&s.span_id, "spanId", 8)?, "span id")?,
                    parent,
                    service: service.clone(),
                    name: s.name,
                    kind: json_enum(&s.kind, "kind")?,
                    start_ns,
                    end_ns: end_ns.max(start_ns),
                    error: s
                        .status
                        .is_some_and(|st| json_enum(&st.code, "status.code") == Ok(STATUS_ERROR)),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn span(id: u64, parent: Option<u64>, svc: &str) -> Span {
        Span {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: id,
            parent,
            service: svc.into(),
            name: "GET /".into(),
            kind: kind::SERVER,
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_250_000_000,
            error: id == 2,
        }
    }

    #[test]
    fn protobuf_round_trips_and_limits_hold() {
        let spans = vec![span(1, None, "web"), span(2, Some(1), "api")];
        let body = encode_protobuf(&spans);
        assert_eq!(decode_protobuf(&body, 10).unwrap(), spans);
        assert_eq!(decode_protobuf(&body, 1), Err(OtlpError::TooMany { n: 2, max: 1 }));
        assert!(matches!(decode_protobuf(b"\xff\xff\xff", 10), Err(OtlpError::Protobuf(_))));
        assert!(decode_protobuf(&[], 10).unwrap().is_empty(), "an empty request is valid");
    }

    #[test]
    fn json_mapping_hex_ids_string_int64_and_unknown_fields() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}],"droppedAttributesCount":0},
          "scopeSpans":[{"scope":{"name":"x"},"spans":[
            {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000002","parentSpanId":"0000000000000001",
             "name":"GET /","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000250000000,
             "status":{"code":2,"message":"boom"},"attributes":[],"futureField":{"a":1}}]}],"schemaUrl":"s"}],"extra":true}"#;
        let got = decode_json(body, 10).unwrap();
        let mut want = span(2, Some(1), "cart");
        want.service = "cart".into();
        assert_eq!(got, vec![want]);
        // No service.name: unknown_service.
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000009"}]}]}]}"#;
        assert_eq!(decode_json(body, 10).unwrap()[0].service, "unknown_service");
    }

    #[test]
    fn bad_json_is_refused_with_a_reason() {
        let e = decode_json(b"{not json", 10).unwrap_err();
        assert!(matches!(e, OtlpError::Json(_)));
        let bad_id = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0000000000000001"}]}]}]}"#;
        assert!(decode_json(bad_id, 10).unwrap_err().to_string().contains("traceId"));
        let zero = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"0000000000000001"}]}]}]}"#;
        assert!(decode_json(zero, 10).unwrap_err().to_string().contains("zeros"));
        let bad_time = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000001","startTimeUnixNano":"soon"}]}]}]}"#;
        assert!(decode_json(bad_time, 10).unwrap_err().to_string().contains("startTimeUnixNano"));
    }
}
