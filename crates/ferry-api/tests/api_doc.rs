//! docs/api.md is generated from the OpenAPI document, so the reference cannot drift from
//! the routes. Regenerate with `FERRY_BLESS=1 cargo test -p ferry-api --test api_doc`.

use serde_json::Value;

const INTRO: &str = "# Ferry HTTP API reference

Generated from the OpenAPI document (`GET /api-docs/swagger.json`) by
`FERRY_BLESS=1 cargo test -p ferry-api --test api_doc`; do not edit by hand.

- Listener: `[api] bind` (default `0.0.0.0:18083`). `GET /status`, `GET /metrics`,
  `GET /api/v5/prometheus/stats`, `POST /api/v5/login` and the OpenAPI document need no
  credentials; everything else needs `Authorization: Bearer TOKEN` (from `POST /api/v5/login`)
  or `Authorization: Basic base64(api_key:api_secret)`.
- The first start creates `admin` / `public`; until its password is changed
  (`POST /api/v5/users/admin/change_pwd {old_pwd, new_pwd}`) every other call answers 403
  `PASSWORD_CHANGE_REQUIRED`. Role `viewer` may read and use `POST /api/v5/rule_test`.
- Errors are `{code, message}` (validation errors add `problems`, one per config key), with
  400, 401, 403, 404, 409, 412, 413, 423 or 503.
- Lists take `page` (from 1) and `limit` (1 to 10000, default 100) and answer
  `{data, meta: {page, limit, count, hasnext}}`.
- Rules, connectors, actions and sources are the config file's sections as JSON plus
  `name` (and EMQX's `type`, `id`); EMQX's `parameters` object is merged in. Changes made here
  persist in the data dir and survive restarts (see docs/adr/0006-runtime-configuration.md).

| method | path | what it does |
|---|---|---|
";

fn render() -> String {
    let doc: Value = serde_json::from_str(&ferry_api::openapi_json()).unwrap_or(Value::Null);
    let mut rows = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                let what = op["summary"]
                    .as_str()
                    .or_else(|| op["description"].as_str())
                    .unwrap_or("")
                    .replace('\n', " ")
                    .replace('|', "\\|");
                rows.push((path.clone(), method.to_uppercase(), what));
            }
        }
    }
    rows.sort();
    let mut out = INTRO.to_owned();
    for (path, method, what) in rows {
        out.push_str(&format!("| {method} | `{path}` | {what} |\n"));
    }
    out
}

#[test]
fn docs_api_md_matches_the_openapi_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    let want = render();
    if std::env::var_os("FERRY_BLESS").is_some() {
        std::fs::write(path, &want).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/api.md is out of date: run FERRY_BLESS=1 cargo test -p ferry-api --test api_doc"
    );
}
