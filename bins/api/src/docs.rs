//! `GET /docs`: the OpenAPI document rendered for people, as one
//! self-contained HTML page (inline CSS, no script, nothing fetched), made
//! from the same document `/api/v1/openapi.json` serves.

use std::fmt::Write;

use serde_json::{Map, Value};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// A one-line type: `string (date-time)`, `array of Alert`, `integer 1–100`.
fn type_line(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let n = esc(ref_name(r));
        return format!("<a href=\"#schema-{n}\">{n}</a>");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = alts.iter().map(type_line).collect();
            return parts.join(" | ");
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        let vals: Vec<String> = e.iter().map(|v| format!("<code>{}</code>", esc(&v.to_string()))).collect();
        return format!("one of {}", vals.join(", "));
    }
    if let Some(c) = s.get("const") {
        return format!("<code>{}</code>", esc(&c.to_string()));
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ => "any".to_string(),
    };
    let mut out = esc(&ty);
    if ty.contains("array")
        && let Some(items) = s.get("items")
    {
        out = format!("{out} of {}", type_line(items));
    }
    if ty == "object"
        && let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object())
    {
        out = format!("map of {}", type_line(ap));
    }
    if let Some(f) = s.get("format").and_then(Value::as_str) {
        let _ = write!(out, " ({})", esc(f));
    }
    match (s.get("minimum"), s.get("maximum")) {
        (Some(a), Some(b)) => {
            let _ = write!(out, " {a}–{b}");
        }
        (Some(a), None) => {
            let _ = write!(out, " ≥ {a}");
        }
        (None, Some(b)) => {
            let _ = write!(out, " ≤ {b}");
        }
        _ => {}
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        let _ = write!(out, " <code>{}</code>", esc(p));
    }
    out
}

/// An object's properties as a table (or the one-line type otherwise).
fn schema_html(s: &Value) -> String {
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return format!("<p class=\"type\">{}</p>", type_line(s));
    };
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::from("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
    for (name, p) in props {
        let req = if required.contains(&name.as_str()) { " <span class=\"req\">required</span>" } else { "" };
        let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<tr><td><code>{}</code>{req}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            type_line(p),
            esc(desc)
        );
    }
    out.push_str("</table>");
    out
}

fn operation_html(out: &mut String, method: &str, path: &str, op: &Map<String, Value>) {
    let id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
    let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
    let role = op.get("description").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<section class=\"op\" id=\"op-{id}\"><h3><span class=\"m m-{method}\">{}</span> <code>{}</code></h3>\
         <p>{} <span class=\"role\">{}</span></p><p class=\"id\">operationId <code>{}</code></p>",
        method.to_uppercase(),
        esc(path),
        esc(summary),
        esc(role),
        esc(id)
    );
    if let Some(params) = op.get("parameters").and_then(Value::as_array).filter(|p| !p.is_empty()) {
        out.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>");
        for p in params {
            let req = if p["required"] == true { " <span class=\"req\">required</span>" } else { "" };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{req}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                esc(p["in"].as_str().unwrap_or("")),
                type_line(&p["schema"]),
                esc(p.get("description").and_then(Value::as_str).unwrap_or(""))
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        let schema = &body["content"]["application/json"]["schema"];
        let _ = write!(out, "<h4>Body</h4><p class=\"type\">{}</p>", type_line(schema));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str("<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>body</th></tr>");
        for (status, r) in responses {
            let body = r
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().next())
                .map(|c| type_line(&c["schema"]))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{body}</td></tr>",
                esc(status),
                esc(r.get("description").and_then(Value::as_str).unwrap_or(""))
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}\
main{max-width:1100px;margin:0 auto;padding:1.5rem}nav{columns:3 16rem;font-size:13px}nav a{display:block}\
h1{margin-top:0}h2{border-bottom:2px solid #d8dde6;padding-bottom:.3rem;margin-top:2.5rem}\
.op{background:#fff;border:1px solid #d8dde6;border-radius:6px;padding:.2rem 1rem .8rem;margin:1rem 0}\
.m{display:inline-block;min-width:4.2em;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:1px 6px}\
.m-get{background:#2f6fb3}.m-post{background:#2b8a4a}.m-put{background:#a06a12}.m-delete{background:#b3362f}\
table{border-collapse:collapse;width:100%;font-size:14px;margin:.3rem 0}td,th{border:1px solid #e1e5ec;padding:3px 6px;\
text-align:left;vertical-align:top}th{background:#f1f3f7}.req{color:#b3362f;font-size:12px}.role{color:#5a6478}\
.id{color:#5a6478;font-size:13px;margin:.2rem 0}code{font-size:13px}.schema{background:#fff;border:1px solid #d8dde6;\
border-radius:6px;padding:.2rem 1rem .8rem;margin:1rem 0}";

/// The page for `doc` (an OpenAPI 3.1 document as built by [`crate::openapi::document`]).
pub fn page(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} {} — API</title><style>{STYLE}</style></head><body><main><h1>{} {}</h1><p>{}</p>\
         <p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>",
        esc(title),
        esc(version),
        esc(title),
        esc(version),
        esc(doc["info"]["description"].as_str().unwrap_or(""))
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| {
                    (t["name"].as_str().unwrap_or("").to_string(), t["description"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let ops_of = |tag: &str| {
        let mut ops = Vec::new();
        for (path, item) in &paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if op["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == tag)) {
                    ops.push((method.clone(), path.clone(), op.as_object().cloned().unwrap_or_default()));
                }
            }
        }
        ops
    };
    out.push_str("<nav>");
    for (tag, _) in &tags {
        let _ = write!(out, "<strong>{}</strong>", esc(tag));
        for (method, path, op) in ops_of(tag) {
            let id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
            let _ = write!(out, "<a href=\"#op-{}\">{} {}</a>", esc(id), method.to_uppercase(), esc(&path));
        }
    }
    out.push_str("<strong>schemas</strong><a href=\"#schemas\">all schemas</a></nav>");
    for (tag, desc) in &tags {
        let _ = write!(out, "<h2 id=\"tag-{}\">{}</h2><p>{}</p>", esc(tag), esc(tag), esc(desc));
        for (method, path, op) in ops_of(tag) {
            operation_html(&mut out, &method, &path, &op);
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = write!(out, "<section class=\"schema\" id=\"schema-{}\"><h3>{}</h3>", esc(name), esc(name));
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            let _ = write!(out, "<p>{}</p>", esc(d));
        }
        out.push_str(&schema_html(schema));
        out.push_str("</section>");
    }
    out.push_str("</main></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_operations_parameters_and_linked_schemas_escaped() {
        let doc = json!({
            "info": {"title": "t", "version": "1", "description": "<b>"},
            "tags": [{"name": "core", "description": "d"}],
            "paths": {"/x/{id}": {"get": {"operationId": "get_x", "summary": "S", "description": "Needs a reader key.", "tags": ["core"],
                "parameters": [{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 9}}],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}}}}},
            "components": {"schemas": {"X": {"type": "object", "required": ["a"], "properties": {"a": {"type": "array", "items": {"$ref": "#/components/schemas/Y"}, "description": "as"}}}}}
        });
        let html = page(&doc);
        assert!(html.contains("id=\"op-get_x\""), "{html}");
        assert!(html.contains("integer 1–9"), "{html}");
        assert!(html.contains("<a href=\"#schema-X\">X</a>"), "{html}");
        assert!(html.contains("array of <a href=\"#schema-Y\">Y</a>"), "{html}");
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"), "escaped");
        assert!(!html.contains("<script"), "no script");
    }
}
