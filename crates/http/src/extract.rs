//! Request extractors that answer bad input in the reference envelope, naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest, http::header};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted (1 MiB); anything bigger is `413 PAYLOAD_TOO_LARGE`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. Unlike actix's `Json`, errors name the offending field: syntax errors are
/// `INVALID_JSON`, absent required fields `MISSING_FIELD`, wrong types or values `INVALID_FIELD`.
/// The body is parsed whatever its `Content-Type`, since curl's `-d` sends a form type by default.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
            }
            let mut body = Vec::with_capacity(declared.unwrap_or(0));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::invalid_json(format!("the body could not be read ({e})")))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(ApiJson)
        })
    }
}

/// An optional JSON body: no body (or only white space) is `T::default()`; anything else must
/// parse as for [`ApiJson`].
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = ApiJson::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move {
            match body.await {
                Ok(ApiJson(object)) => parse_value(serde_json::Value::Object(object), "").map(OptionalJson),
                Err(e) if e.message().contains("the body is empty") => Ok(OptionalJson(T::default())),
                Err(e) => Err(e),
            }
        })
    }
}

/// Parses a JSON document into `T`, classifying failures as the reference does.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json("the body is empty"));
    }
    // serde fills a struct from a JSON array too (field by field, in order): refuse anything but
    // an object before it gets the chance.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(ApiError::invalid_json)?;
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => data_error(&path, &inner.to_string()),
            _ => ApiError::invalid_json(inner),
        }
    })?;
    de.end().map_err(ApiError::invalid_json)?;
    Ok(value)
}

/// Parses one item of a larger document (a bulk request's element), naming fields from `prefix`.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value, prefix: &str) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid_field(if prefix.is_empty() { "body" } else { prefix }, "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let full = match (prefix.is_empty(), path == ".") {
            (true, _) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        data_error(&full, &e.into_inner().to_string())
    })
}

/// The items of a bulk body, each parsed on its own as `T`.
pub struct ParsedItems<T> {
    /// Items that parsed, in request order, with their index in the request.
    pub parsed: Vec<(usize, T)>,
    /// Items that did not: index, the item's `label_field` if it had one, and why.
    pub failed: Vec<(usize, Option<String>, ApiError)>,
}

/// Parses each item of `items` (the array `prefix` of a bulk body) as `T`, so a malformed item
/// fails alone, named `prefix[i].field`.
pub fn parse_each<T: DeserializeOwned>(
    items: Vec<serde_json::Value>,
    prefix: &str,
    label_field: &str,
) -> ParsedItems<T> {
    let mut out = ParsedItems { parsed: Vec::new(), failed: Vec::new() };
    for (index, item) in items.into_iter().enumerate() {
        let label = item.get(label_field).and_then(|v| v.as_str()).map(str::to_owned);
        match parse_value::<T>(item, &format!("{prefix}[{index}]")) {
            Ok(value) => out.parsed.push((index, value)),
            Err(e) => out.failed.push((index, label, e)),
        }
    }
    out
}

/// serde reports an absent field as "missing field `x`" at the path of its parent object, and an
/// extra one as "unknown field `x`" at its own path.
fn data_error(path: &str, message: &str) -> ApiError {
    let message = message.split(" at line ").next().unwrap_or(message);
    let child = |rest: &str| {
        let field = rest.split('`').next().unwrap_or(rest).to_owned();
        if path == "." || path.is_empty() { field } else { format!("{path}.{field}") }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        return ApiError::missing_field(&child(rest));
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // Here the path already ends at the unknown field.
        let field = if path == "." || path.is_empty() { child(rest) } else { path.to_owned() };
        return ApiError::invalid_field(&field, "is not a field of this request");
    }
    let field = if path == "." || path.is_empty() { "body" } else { path };
    ApiError::invalid_field(field, message)
}

/// A query string. Errors name the parameter: `INVALID_FIELD` for a bad value, `MISSING_FIELD`
/// for an absent required one. Unknown parameters are ignored.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(req.query_string().as_bytes()));
        std::future::ready(serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            data_error(&path, &e.into_inner().to_string())
        }))
    }
}

/// Query-string errors (actix `Query`, where still used) in the envelope.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = err.to_string();
    let detail = detail.strip_prefix("Query deserialize error: ").unwrap_or(&detail);
    ApiError::invalid_field("query", detail).into()
}

/// Path-segment errors (actix `Path`) in the envelope.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid_field("path", err).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tenant_id: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        currency: String,
    }

    fn code_and_message(body: &str) -> (&'static str, String) {
        let err = parse_json::<Body>(body.as_bytes()).unwrap_err();
        (err.code(), err.to_string())
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        assert_eq!(code_and_message("{\"name\": ").0, "INVALID_JSON");
        assert_eq!(code_and_message("").0, "INVALID_JSON");
        assert_eq!(code_and_message("{\"name\":\"a\",\"tenantId\":\"b\"} trailing").0, "INVALID_JSON");
    }

    #[test]
    fn absent_fields_are_named() {
        let (code, message) = code_and_message("{\"name\": \"a\"}");
        assert_eq!(code, "MISSING_FIELD");
        assert!(message.contains("'tenantId'"), "{message}");
        let (code, message) = code_and_message("{\"name\":\"a\",\"tenantId\":\"b\",\"nested\":{}}");
        assert_eq!(code, "MISSING_FIELD");
        assert!(message.contains("'nested.currency'"), "{message}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let (code, message) = code_and_message("{\"name\":\"a\",\"tenantId\":\"b\",\"id\":\"cust_x\"}");
        assert_eq!(code, "INVALID_FIELD");
        assert!(message.contains("'id'"), "{message}");
    }

    #[test]
    fn items_are_named_from_their_prefix() {
        let err = parse_value::<Body>(serde_json::json!({"name": 1, "tenantId": "t"}), "customers[3]").unwrap_err();
        assert!(err.to_string().contains("'customers[3].name'"), "{err}");
        let err = parse_value::<Body>(serde_json::json!({"name": "a"}), "customers[0]").unwrap_err();
        assert_eq!(err.code(), "MISSING_FIELD");
        assert!(err.to_string().contains("'customers[0].tenantId'"), "{err}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        month: Option<String>,
    }

    #[actix_web::test]
    async fn query_errors_name_the_parameter() {
        let query = |q: &str| {
            let req = actix_web::test::TestRequest::get().uri(&format!("/x?{q}")).to_http_request();
            ApiQuery::<Q>::extract(&req)
        };
        let err = query("limit=ten").await.unwrap_err();
        assert_eq!(err.code(), "INVALID_FIELD");
        assert!(err.to_string().contains("'limit'"), "{err}");
        assert!(query("limit=99999999999").await.is_err(), "huge numbers are refused");
        let ok = query("month=2026-04&unknown=1").await.unwrap().0;
        assert_eq!(ok.month.as_deref(), Some("2026-04"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let (code, message) = code_and_message("{\"name\": 5, \"tenantId\": \"b\"}");
        assert_eq!(code, "INVALID_FIELD");
        assert!(message.contains("'name'"), "{message}");
        let (code, _) = code_and_message("[1, 2]");
        assert_eq!(code, "INVALID_FIELD");
    }

    async fn extract(body: Vec<u8>, declared_len: Option<&str>) -> Result<serde_json::Value, ApiError> {
        let mut req = actix_web::test::TestRequest::post().set_payload(body);
        if let Some(len) = declared_len {
            req = req.insert_header((header::CONTENT_LENGTH, len));
        }
        let (req, mut payload) = req.to_http_parts();
        ApiJson::<serde_json::Value>::from_request(&req, &mut payload).await.map(|j| j.0)
    }

    #[actix_web::test]
    async fn bodies_over_one_mebibyte_are_payload_too_large() {
        let mut big = b"[".to_vec();
        big.resize(MAX_BODY_BYTES + 1, b' ');
        assert_eq!(extract(big.clone(), None).await.unwrap_err().code(), "PAYLOAD_TOO_LARGE");
        // A client that understates its length is still stopped while streaming.
        assert_eq!(extract(big, Some("10")).await.unwrap_err().code(), "PAYLOAD_TOO_LARGE");
        assert_eq!(extract(b"{}".to_vec(), Some("999999999999")).await.unwrap_err().code(), "PAYLOAD_TOO_LARGE");
    }

    #[actix_web::test]
    async fn a_body_at_the_limit_is_parsed() {
        let mut body = b"{\"a\": 1}".to_vec();
        body.resize(MAX_BODY_BYTES, b' ');
        assert_eq!(extract(body, None).await.unwrap(), serde_json::json!({"a": 1}));
    }
}
