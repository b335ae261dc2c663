//! The OpenAPI 3.1 description of the API, generated from the route table ([`super::routes`]):
//! every registered route is in it, with its parameters, scopes and error envelope.

use super::routes::{RouteDoc, ROUTES};
use axum::Json;
use serde_json::{json, Map, Value};

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(describe(ROUTES))
}

fn parameters(r: &RouteDoc) -> Vec<Value> {
    let path = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
    let query = r
        .query
        .iter()
        .map(|name| json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}}));
    path.chain(query).collect()
}

fn operation(r: &RouteDoc) -> Value {
    let error = json!({
        "description": "An error: `{\"error\": {\"code\", \"message\"}}`",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    });
    let mut op = json!({
        "summary": r.summary,
        "description": format!("Scopes: {}.", r.scopes),
        "parameters": parameters(r),
        "responses": {"200": {"description": "OK"}, "default": error},
    });
    if r.scopes != "none" {
        op["security"] = json!([{"bearer": []}]);
    }
    if r.method == "post" {
        op["requestBody"] = json!({
            "required": false,
            "content": {"application/json": {"schema": {"type": "object"}}}
        });
    }
    op
}

/// The document for `routes`.
pub fn describe(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let item = paths.entry(r.path).or_insert_with(|| json!({}));
        item[r.method] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sharp Eyes & Smart Fire ingestion gateway",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "state": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "string"}}
                    }
                }}
            }}
        }
    })
}
