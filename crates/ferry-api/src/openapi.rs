//! The OpenAPI document, generated from the handlers' types.

pub(crate) fn document_json() -> String {
    crate::routes::openapi()
        .to_pretty_json()
        .unwrap_or_default()
}
