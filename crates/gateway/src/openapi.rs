//! The OpenAPI 3.1 document of the HTTP API, generated from the route table
//! ([`crate::api::ROUTES`], from which the router is built too) and from the contract's
//! JSON Schema (`proto/tafel-v1.schema.json`, whose definitions become the document's
//! components: OpenAPI 3.1 speaks JSON Schema 2020-12). One source for each, so the
//! document, the router and `proto/` agree by construction; `proto/openapi.json` is
//! this document as committed (`tafel openapi` prints it), and a test holds them equal.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::api::ROUTES;

/// The contract's JSON Schema, compiled in.
const CONTRACT_SCHEMA: &str = include_str!("../../../proto/tafel-v1.schema.json");
/// The contract version this document describes.
pub const CONTRACT_VERSION: &str = "1.1";

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    // `#/$defs/x` inside the contract's schema is `#/components/schemas/x` here.
    let schema = CONTRACT_SCHEMA.replace("\"#/$defs/", "\"#/components/schemas/");
    let schema: Value = serde_json::from_str(&schema).unwrap_or_default();
    let schemas = schema.get("$defs").cloned().unwrap_or_default();

    let mut paths = Map::new();
    for route in &ROUTES {
        let mut parameters = Vec::new();
        if route.path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true,
                                   "schema": {"$ref": "#/components/schemas/id"}}));
        }
        for (name, schema) in route.parameters {
            let schema: Value = serde_json::from_str(schema).unwrap_or_else(|_| json!({}));
            parameters.push(json!({"name": name, "in": "query", "required": false, "schema": schema}));
        }
        let success = match route.reply {
            "text/event-stream" => json!({"description": "the shortlist now, then each change",
                                          "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            "openapi" => json!({"description": "this document",
                                "content": {"application/json": {"schema": {"type": "object"}}}}),
            reply => json!({"description": "the contract's reply",
                            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{reply}")}}}}),
        };
        let mut responses = Map::new();
        let status = if route.method == "post" { "201" } else { "200" };
        responses.insert(status.into(), success.clone());
        if route.method == "post" {
            let duplicate = json!({"description": "a duplicate: accepted before, stored once",
                                   "content": success["content"].clone()});
            responses.insert("200".into(), duplicate);
        }
        let refusal_schema = if route.method == "post" { "submit_reply" } else { "query_error" };
        for refusal in route.refusals {
            responses.insert(
                refusal.to_string(),
                json!({"description": "refused, with the contract's error code",
                       "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{refusal_schema}")}}}}),
            );
        }
        let open = route.operation == "getOpenApi";
        if !open {
            responses.insert(
                "401".into(),
                json!({"description": "no valid bearer token",
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/query_error"}}}}),
            );
        }
        let mut operation = json!({
            "operationId": route.operation,
            "summary": route.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if open {
            operation["security"] = json!([]);
        }
        if route.method == "post" {
            operation["requestBody"] = json!({"required": true, "content": {"application/cloudevents+json": {
                "schema": {"$ref": "#/components/schemas/incoming_event"}}, "application/json": {
                "schema": {"$ref": "#/components/schemas/incoming_event"}}}});
        }
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method] = operation;
    }
    for (path, summary) in [
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness: 200 once Tafel can serve, else 503 with the reasons"),
        ("/metrics", "Prometheus text format"),
    ] {
        let text = json!({"text/plain": {"schema": {"type": "string"}}});
        let mut responses = json!({"200": {"description": summary, "content": text}});
        if path == "/readyz" {
            responses["503"] = json!({"description": "not ready: each reason on a line", "content": text});
        }
        paths.insert(
            path.into(),
            json!({"get": {"operationId": path.trim_start_matches('/'), "summary": summary, "security": [],
                           "responses": responses}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tafel",
            "version": CONTRACT_VERSION,
            "description": "Impact financing round tables: the HTTP side of the Tafel wire contract (CONTRACT.md section 6).",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    })
}

/// The document as `proto/openapi.json` holds it.
pub fn pretty() -> String {
    serde_json::to_string_pretty(document()).unwrap_or_default() + "\n"
}
