//! Rules, Kafka connectors, producer actions and consumer sources: create, list, read,
//! update, delete, enable/disable, metrics; the rule tester and the connector probe.
//!
//! Bodies are the config file's sections as JSON, plus `name` (and EMQX's `type`, `id`);
//! EMQX's nested `parameters` object is accepted and merged into the section. A `PUT`
//! merges the given top-level fields into the object's current section.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::page::{Paged, paginate};
use crate::AppState;
use crate::admin::{Change, ObjectKind};
use crate::error::{ApiError, ApiResult, Body, ErrorBody, Query};

pub(crate) fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(rule_metrics))
        .routes(routes!(reset_rule_metrics))
        .routes(routes!(rule_test))
        .routes(routes!(rule_events))
        .routes(routes!(list_connectors, create_connector))
        .routes(routes!(get_connector, update_connector, delete_connector))
        .routes(routes!(enable_connector))
        .routes(routes!(probe_connector))
        .routes(routes!(list_actions, create_action))
        .routes(routes!(get_action, update_action, delete_action))
        .routes(routes!(enable_action))
        .routes(routes!(action_metrics))
        .routes(routes!(reset_action_metrics))
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, update_source, delete_source))
        .routes(routes!(enable_source))
        .routes(routes!(source_metrics))
        .routes(routes!(reset_source_metrics))
}

/// A configurable object: its config section plus `name`, `type`, `enable`, `status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct ObjectJson(pub(crate) Value);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    page: Option<usize>,
    limit: Option<usize>,
    enable: Option<bool>,
    /// Substring of the name.
    like_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Also delete (or, for rules, detach) what uses this object.
    cascade: Option<bool>,
    /// EMQX's name for `cascade`.
    also_delete_dep_actions: Option<bool>,
}

/// Fields the API adds to an object that are not part of its config section.
const DERIVED: [&str; 9] = [
    "name",
    "id",
    "type",
    "status",
    "status_reason",
    "metrics",
    "from",
    "node_status",
    "created_at",
];

/// The accepted `type`s per kind (Ferry's Kafka connector serves producers and consumers).
fn types(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::Rule => &[],
        ObjectKind::Connector => &["kafka_producer", "kafka_consumer", "kafka"],
        ObjectKind::Action => &["kafka_producer", "kafka"],
        ObjectKind::Source => &["kafka_consumer", "kafka"],
    }
}

/// `kafka_producer:NAME` or `NAME`.
fn name_of(kind: ObjectKind, id: &str) -> ApiResult<String> {
    match id.split_once(':') {
        Some((t, n)) if types(kind).contains(&t) => Ok(n.to_owned()),
        Some((t, _)) => Err(ApiError::bad_request(format!(
            "{} id {id:?}: unknown type {t:?} (expected one of {})",
            kind.noun(),
            types(kind).join(", ")
        ))),
        None => Ok(id.to_owned()),
    }
}

/// Splits a body into (name from the body, config section).
fn section_of(kind: ObjectKind, body: Value) -> ApiResult<(Option<String>, Value)> {
    let Value::Object(mut m) = body else {
        return Err(ApiError::bad_request(format!(
            "a {} must be a JSON object",
            kind.noun()
        )));
    };
    if let Some(t) = m.get("type") {
        let ok = t.as_str().is_some_and(|t| types(kind).contains(&t));
        if !ok {
            return Err(ApiError::bad_request(format!(
                "type: {t} is not a {} type (expected one of {})",
                kind.noun(),
                types(kind).join(", ")
            )));
        }
    }
    let name = match (m.get("name"), m.get("id")) {
        (Some(Value::String(n)), _) | (None, Some(Value::String(n))) => Some(n.clone()),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("name: must be a string")),
    };
    for k in DERIVED {
        m.remove(k);
    }
    if let Some(Value::Object(p)) = m.remove("parameters") {
        for (k, v) in p {
            m.entry(k).or_insert(v);
        }
    }
    Ok((name, Value::Object(m)))
}

async fn create(
    s: &AppState,
    kind: ObjectKind,
    body: Value,
) -> ApiResult<(StatusCode, Json<ObjectJson>)> {
    let (name, config) = section_of(kind, body)?;
    let name = match (name, kind) {
        (Some(n), _) => n,
        (None, ObjectKind::Rule) => format!("rule_{:08x}", rand_id()),
        (None, _) => {
            return Err(ApiError::bad_request(format!(
                "name: a {} needs a name",
                kind.noun()
            )));
        }
    };
    s.admin
        .apply(Change::Put {
            kind,
            name: name.clone(),
            config,
            create: true,
        })
        .await?;
    let v = s
        .admin
        .object(kind, &name)
        .ok_or_else(|| not_found(kind, &name))?;
    Ok((StatusCode::CREATED, Json(ObjectJson(v))))
}

fn rand_id() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

async fn update(
    s: &AppState,
    kind: ObjectKind,
    id: &str,
    body: Value,
) -> ApiResult<Json<ObjectJson>> {
    let name = name_of(kind, id)?;
    let Some(current) = s.admin.object(kind, &name) else {
        return Err(not_found(kind, &name));
    };
    let (_, mut cur) = section_of(kind, current)?;
    let (_, patch) = section_of(kind, body)?;
    if let (Value::Object(c), Value::Object(p)) = (&mut cur, patch) {
        for (k, v) in p {
            c.insert(k, v);
        }
    }
    s.admin
        .apply(Change::Put {
            kind,
            name: name.clone(),
            config: cur,
            create: false,
        })
        .await?;
    get(s, kind, &name)
}

fn get(s: &AppState, kind: ObjectKind, name: &str) -> ApiResult<Json<ObjectJson>> {
    s.admin
        .object(kind, name)
        .map(|v| Json(ObjectJson(v)))
        .ok_or_else(|| not_found(kind, name))
}

async fn delete(s: &AppState, kind: ObjectKind, id: &str, q: DeleteQuery) -> ApiResult<StatusCode> {
    let name = name_of(kind, id)?;
    let cascade = q.cascade.unwrap_or(false) || q.also_delete_dep_actions.unwrap_or(false);
    s.admin
        .apply(Change::Delete {
            kind,
            name,
            cascade,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable(s: &AppState, kind: ObjectKind, id: &str, flag: &str) -> ApiResult<StatusCode> {
    let name = name_of(kind, id)?;
    let enable = match flag {
        "true" => true,
        "false" => false,
        _ => {
            return Err(ApiError::bad_request(format!(
                "enable: {flag:?} is not true or false"
            )));
        }
    };
    s.admin.apply(Change::Enable { kind, name, enable }).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn list(s: &AppState, kind: ObjectKind, q: &ListQuery) -> ApiResult<Json<Paged<ObjectJson>>> {
    let all: Vec<ObjectJson> = s
        .admin
        .objects(kind)
        .into_iter()
        .filter(|v| {
            q.enable
                .is_none_or(|e| v.get("enable").and_then(Value::as_bool) == Some(e))
                && q.like_id.as_ref().is_none_or(|l| {
                    v.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.contains(l.as_str()))
                })
        })
        .map(ObjectJson)
        .collect();
    Ok(Json(paginate(all, q.page, q.limit)?))
}

fn not_found(kind: ObjectKind, name: &str) -> ApiError {
    ApiError::not_found(format!("no {} named {name:?}", kind.noun()))
}

fn metrics_of(s: &AppState, kind: ObjectKind, id: &str) -> ApiResult<Json<ObjectJson>> {
    let name = name_of(kind, id)?;
    s.admin
        .object_metrics(kind, &name)
        .map(|v| Json(ObjectJson(v)))
        .ok_or_else(|| not_found(kind, &name))
}

fn reset(s: &AppState, kind: ObjectKind, id: &str) -> ApiResult<StatusCode> {
    let name = name_of(kind, id)?;
    if s.admin.reset_metrics(kind, &name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(kind, &name))
    }
}

// ---- rules ----

/// Kafka producer actions, with status.
#[utoipa::path(get, path = "/api/v5/rules", tag = "rules", params(ListQuery),
    responses((status = 200, body = Paged<ObjectJson>), (status = 400, body = ErrorBody)))]
async fn list_rules(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Paged<ObjectJson>>> {
    list(&s, ObjectKind::Rule, &q)
}

/// Creates a rule: `{id or name, sql, actions, enable, description}`.
#[utoipa::path(post, path = "/api/v5/rules", tag = "rules", request_body = ObjectJson,
    responses((status = 201, body = ObjectJson), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_rule(
    State(s): State<AppState>,
    Body(b): Body<Value>,
) -> ApiResult<(StatusCode, Json<ObjectJson>)> {
    create(&s, ObjectKind::Rule, b).await
}

/// One rule.
#[utoipa::path(get, path = "/api/v5/rules/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    get(&s, ObjectKind::Rule, &id)
}

/// Changes a rule; the given fields replace the current ones (`{"enable": false}` disables).
#[utoipa::path(put, path = "/api/v5/rules/{id}", tag = "rules", params(("id" = String, Path)), request_body = ObjectJson,
    responses((status = 200, body = ObjectJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(b): Body<Value>,
) -> ApiResult<Json<ObjectJson>> {
    update(&s, ObjectKind::Rule, &id, b).await
}

/// Deletes a rule (its counters go with it).
#[utoipa::path(delete, path = "/api/v5/rules/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    delete(&s, ObjectKind::Rule, &id, q).await
}

/// A rule's counters and rates.
#[utoipa::path(get, path = "/api/v5/rules/{id}/metrics", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn rule_metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    metrics_of(&s, ObjectKind::Rule, &id)
}

/// Resets a rule's counters.
#[utoipa::path(put, path = "/api/v5/rules/{id}/metrics/reset", tag = "rules", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn reset_rule_metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    reset(&s, ObjectKind::Rule, &id)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleTest {
    sql: String,
    /// The input: `event_type` (e.g. `message_publish`), `topic`, `payload`, `clientid`,
    /// `username`, `qos`, ... as EMQX's rule tester takes it.
    #[schema(value_type = Object)]
    #[serde(default)]
    context: Value,
}

/// Runs SQL on a test input: the output, 412 when FROM or WHERE does not match, 400 on a
/// SQL error (with line and column).
#[utoipa::path(post, path = "/api/v5/rule_test", tag = "rules", request_body = RuleTest,
    responses((status = 200, body = ObjectJson), (status = 400, body = ErrorBody), (status = 412, body = ErrorBody)))]
async fn rule_test(State(s): State<AppState>, Body(t): Body<RuleTest>) -> ApiResult<Json<Value>> {
    let ctx = if t.context.is_null() {
        json!({})
    } else {
        t.context
    };
    s.admin.rule_test(&t.sql, ctx).map(Json)
}

/// The events a rule can select, with their columns.
#[utoipa::path(get, path = "/api/v5/rule_events", tag = "rules",
    responses((status = 200, body = [Object])))]
async fn rule_events(State(s): State<AppState>) -> Json<Value> {
    Json(s.admin.rule_events())
}

// ---- connectors ----

/// Kafka connectors, with status and the reason when not connected.
#[utoipa::path(get, path = "/api/v5/connectors", tag = "connectors", params(ListQuery),
    responses((status = 200, body = Paged<ObjectJson>)))]
async fn list_connectors(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Paged<ObjectJson>>> {
    list(&s, ObjectKind::Connector, &q)
}

/// Creates a Kafka connector: `{type: "kafka_producer", name, bootstrap_hosts, ...}`.
#[utoipa::path(post, path = "/api/v5/connectors", tag = "connectors", request_body = ObjectJson,
    responses((status = 201, body = ObjectJson), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_connector(
    State(s): State<AppState>,
    Body(b): Body<Value>,
) -> ApiResult<(StatusCode, Json<ObjectJson>)> {
    create(&s, ObjectKind::Connector, b).await
}

/// One connector: its config, status and reason.
#[utoipa::path(get, path = "/api/v5/connectors/{id}", tag = "connectors", params(("id" = String, Path, description = "kafka_producer:NAME or NAME")),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn get_connector(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    get(
        &s,
        ObjectKind::Connector,
        &name_of(ObjectKind::Connector, &id)?,
    )
}

/// Changes a connector; the actions and sources using it are rebuilt, nothing else.
#[utoipa::path(put, path = "/api/v5/connectors/{id}", tag = "connectors", params(("id" = String, Path)), request_body = ObjectJson,
    responses((status = 200, body = ObjectJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_connector(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(b): Body<Value>,
) -> ApiResult<Json<ObjectJson>> {
    update(&s, ObjectKind::Connector, &id, b).await
}

/// Deletes a connector; 409 while actions or sources use it, unless `cascade=true`.
#[utoipa::path(delete, path = "/api/v5/connectors/{id}", tag = "connectors", params(("id" = String, Path), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_connector(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    delete(&s, ObjectKind::Connector, &id, q).await
}

/// Enables or disables a connector (its actions and sources stop while disabled).
#[utoipa::path(put, path = "/api/v5/connectors/{id}/enable/{enable}", tag = "connectors",
    params(("id" = String, Path), ("enable" = bool, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn enable_connector(
    State(s): State<AppState>,
    Path((id, flag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    enable(&s, ObjectKind::Connector, &id, &flag).await
}

/// The "Test" button: checks that a connector config reaches its cluster (204) or says why
/// not, within a few seconds. Nothing is created.
#[utoipa::path(post, path = "/api/v5/connectors_probe", tag = "connectors", request_body = ObjectJson,
    responses((status = 204), (status = 400, body = ErrorBody)))]
async fn probe_connector(State(s): State<AppState>, Body(b): Body<Value>) -> ApiResult<StatusCode> {
    let (_, section) = section_of(ObjectKind::Connector, b)?;
    s.admin.probe_connector(section).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- actions ----

/// Kafka producer actions, with status.
#[utoipa::path(get, path = "/api/v5/actions", tag = "actions", params(ListQuery),
    responses((status = 200, body = Paged<ObjectJson>)))]
async fn list_actions(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Paged<ObjectJson>>> {
    list(&s, ObjectKind::Action, &q)
}

/// Creates a Kafka producer action: `{type: "kafka_producer", name, connector, topic, ...}`
/// (EMQX's `parameters` object is merged in).
#[utoipa::path(post, path = "/api/v5/actions", tag = "actions", request_body = ObjectJson,
    responses((status = 201, body = ObjectJson), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_action(
    State(s): State<AppState>,
    Body(b): Body<Value>,
) -> ApiResult<(StatusCode, Json<ObjectJson>)> {
    create(&s, ObjectKind::Action, b).await
}

/// One action: its config, status and reason.
#[utoipa::path(get, path = "/api/v5/actions/{id}", tag = "actions", params(("id" = String, Path, description = "kafka_producer:NAME or NAME")),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn get_action(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    get(&s, ObjectKind::Action, &name_of(ObjectKind::Action, &id)?)
}

/// Changes an action; the given fields replace the current ones. Only this action is rebuilt.
#[utoipa::path(put, path = "/api/v5/actions/{id}", tag = "actions", params(("id" = String, Path)), request_body = ObjectJson,
    responses((status = 200, body = ObjectJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_action(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(b): Body<Value>,
) -> ApiResult<Json<ObjectJson>> {
    update(&s, ObjectKind::Action, &id, b).await
}

/// Deletes an action; 409 while rules use it, unless `cascade=true` (the rules lose it).
#[utoipa::path(delete, path = "/api/v5/actions/{id}", tag = "actions", params(("id" = String, Path), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_action(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    delete(&s, ObjectKind::Action, &id, q).await
}

/// Enables or disables an action (a disabled action keeps its config; rules using it count failures).
#[utoipa::path(put, path = "/api/v5/actions/{id}/enable/{enable}", tag = "actions",
    params(("id" = String, Path), ("enable" = bool, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn enable_action(
    State(s): State<AppState>,
    Path((id, flag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    enable(&s, ObjectKind::Action, &id, &flag).await
}

/// An action's counters (matched, success, failed, dropped by reason, queuing, inflight,
/// retried), rates and Kafka latency percentiles.
#[utoipa::path(get, path = "/api/v5/actions/{id}/metrics", tag = "actions", params(("id" = String, Path)),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn action_metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    metrics_of(&s, ObjectKind::Action, &id)
}

/// Resets an action's counters.
#[utoipa::path(put, path = "/api/v5/actions/{id}/metrics/reset", tag = "actions", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn reset_action_metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    reset(&s, ObjectKind::Action, &id)
}

// ---- sources ----

/// Kafka consumer sources, with status.
#[utoipa::path(get, path = "/api/v5/sources", tag = "sources", params(ListQuery),
    responses((status = 200, body = Paged<ObjectJson>)))]
async fn list_sources(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Paged<ObjectJson>>> {
    list(&s, ObjectKind::Source, &q)
}

/// Creates a Kafka consumer source: `{type: "kafka_consumer", name, connector, topics, mqtt_topic, ...}`.
#[utoipa::path(post, path = "/api/v5/sources", tag = "sources", request_body = ObjectJson,
    responses((status = 201, body = ObjectJson), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_source(
    State(s): State<AppState>,
    Body(b): Body<Value>,
) -> ApiResult<(StatusCode, Json<ObjectJson>)> {
    create(&s, ObjectKind::Source, b).await
}

/// One source: its config, status and reason.
#[utoipa::path(get, path = "/api/v5/sources/{id}", tag = "sources", params(("id" = String, Path, description = "kafka_consumer:NAME or NAME")),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn get_source(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    get(&s, ObjectKind::Source, &name_of(ObjectKind::Source, &id)?)
}

/// Changes a source; it drains and stops, then its successor starts.
#[utoipa::path(put, path = "/api/v5/sources/{id}", tag = "sources", params(("id" = String, Path)), request_body = ObjectJson,
    responses((status = 200, body = ObjectJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_source(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(b): Body<Value>,
) -> ApiResult<Json<ObjectJson>> {
    update(&s, ObjectKind::Source, &id, b).await
}

/// Deletes a source; it drains its in-flight records and commits first.
#[utoipa::path(delete, path = "/api/v5/sources/{id}", tag = "sources", params(("id" = String, Path), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_source(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    delete(&s, ObjectKind::Source, &id, q).await
}

/// Enables or disables a source.
#[utoipa::path(put, path = "/api/v5/sources/{id}/enable/{enable}", tag = "sources",
    params(("id" = String, Path), ("enable" = bool, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn enable_source(
    State(s): State<AppState>,
    Path((id, flag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    enable(&s, ObjectKind::Source, &id, &flag).await
}

/// A source's counters: received, delivered, failed, in flight, lag.
#[utoipa::path(get, path = "/api/v5/sources/{id}/metrics", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = ObjectJson), (status = 404, body = ErrorBody)))]
async fn source_metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ObjectJson>> {
    metrics_of(&s, ObjectKind::Source, &id)
}

/// Resets a source's counters.
#[utoipa::path(put, path = "/api/v5/sources/{id}/metrics/reset", tag = "sources", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn reset_source_metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    reset(&s, ObjectKind::Source, &id)
}
