//! Health, node, stats, metrics, monitor, Prometheus and the OpenAPI document.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::admin::{NodeInfo, NodeState};
use crate::error::{ApiError, ApiResult, ErrorBody, Query};

/// Routes that need no login.
pub(crate) fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(prometheus_metrics))
        .routes(routes!(prometheus_stats))
}

pub(crate) fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(nodes))
        .routes(routes!(node))
        .routes(routes!(stats))
        .routes(routes!(metrics))
        .routes(routes!(monitor))
        .routes(routes!(monitor_current))
        .routes(routes!(config))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatusQuery {
    /// `text` (default) or `json`.
    format: Option<String>,
}

/// Whether the node serves traffic: 200 when running, 503 while starting or draining.
#[utoipa::path(get, path = "/status", tag = "status", params(StatusQuery),
    responses((status = 200, description = "Serving", body = String),
              (status = 503, description = "Starting or draining", body = String)))]
async fn status(State(s): State<AppState>, Query(q): Query<StatusQuery>) -> Response {
    let state = s.admin.state();
    let node = s.admin.node();
    let code = if state == NodeState::Running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = match state {
        NodeState::Starting => "starting",
        NodeState::Running => "running",
        NodeState::Draining => "draining",
    };
    if q.format.as_deref() == Some("json") {
        let body = json!({"node_name": node.node, "rel_vsn": node.version,
            "broker_status": if state == NodeState::Running { "started" } else { "stopped" },
            "app_status": word});
        return (code, Json(body)).into_response();
    }
    let text = format!(
        "Node {} is {}\nferry is {}\n",
        node.node,
        if state == NodeState::Running {
            "started"
        } else {
            "stopped"
        },
        word
    );
    (code, text).into_response()
}

/// This node (Ferry runs as one node).
#[utoipa::path(get, path = "/api/v5/nodes", tag = "nodes",
    responses((status = 200, body = [NodeInfo])))]
async fn nodes(State(s): State<AppState>) -> Json<Vec<NodeInfo>> {
    Json(vec![s.admin.node()])
}

/// One node by name.
#[utoipa::path(get, path = "/api/v5/nodes/{node}", tag = "nodes",
    params(("node" = String, Path, description = "Node name")),
    responses((status = 200, body = NodeInfo), (status = 404, body = ErrorBody)))]
async fn node(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<NodeInfo>> {
    let n = s.admin.node();
    if n.node == name {
        Ok(Json(n))
    } else {
        Err(ApiError::not_found(format!("no node named {name:?}")))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AggregateQuery {
    /// true: one object; false (default): one object per node, with `node`.
    aggregate: Option<bool>,
}

fn per_node(s: &AppState, aggregate: Option<bool>, m: BTreeMap<String, u64>) -> Value {
    if aggregate == Some(true) {
        json!(m)
    } else {
        let mut v = json!(m);
        if let Value::Object(o) = &mut v {
            o.insert("node".into(), json!(s.admin.node().node));
        }
        json!([v])
    }
}

/// Gauges: connections, live connections, sessions, subscriptions, topics, retained.
#[utoipa::path(get, path = "/api/v5/stats", tag = "metrics", params(AggregateQuery),
    responses((status = 200, description = "EMQX stats", body = Object)))]
async fn stats(State(s): State<AppState>, Query(q): Query<AggregateQuery>) -> Json<Value> {
    Json(per_node(&s, q.aggregate, s.admin.stats()))
}

/// Counters (EMQX names: `messages.received`, `messages.dropped`, ...).
#[utoipa::path(get, path = "/api/v5/metrics", tag = "metrics", params(AggregateQuery),
    responses((status = 200, description = "EMQX metrics", body = Object)))]
async fn metrics(State(s): State<AppState>, Query(q): Query<AggregateQuery>) -> Json<Value> {
    Json(per_node(&s, q.aggregate, s.admin.metrics()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MonitorQuery {
    /// Only the samples of the last `latest` seconds.
    latest: Option<u64>,
}

/// Samples every 10 s over the last hour (counts per interval and gauges), oldest first.
#[utoipa::path(get, path = "/api/v5/monitor", tag = "metrics", params(MonitorQuery),
    responses((status = 200, body = [Object])))]
async fn monitor(State(s): State<AppState>, Query(q): Query<MonitorQuery>) -> Json<Value> {
    Json(json!(s.admin.monitor(q.latest)))
}

/// Rates now (messages per second) and current gauges.
#[utoipa::path(get, path = "/api/v5/monitor_current", tag = "metrics",
    responses((status = 200, body = Object)))]
async fn monitor_current(State(s): State<AppState>) -> Json<Value> {
    Json(json!(s.admin.monitor_current()))
}

/// The effective configuration: the file plus changes made through the API.
#[utoipa::path(get, path = "/api/v5/configs", tag = "config",
    responses((status = 200, body = Object)))]
async fn config(State(s): State<AppState>) -> Json<Value> {
    Json(s.admin.effective_config())
}

async fn prometheus_text(s: &AppState, headers: &HeaderMap) -> Response {
    if s.settings.metrics_auth && !s.auth.check_basic(headers).await {
        return ApiError::Unauthorized(
            "GET /metrics needs HTTP Basic credentials: a user (username:password) or an API key (key:secret)".into(),
        )
        .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.admin.prometheus(),
    )
        .into_response()
}

/// Prometheus text exposition (no login unless `[api] metrics_auth = true`).
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn prometheus_metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    prometheus_text(&s, &headers).await
}

/// The same text at EMQX's path, for Prometheus configs written for EMQX.
#[utoipa::path(get, path = "/api/v5/prometheus/stats", tag = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn prometheus_stats(State(s): State<AppState>, headers: HeaderMap) -> Response {
    prometheus_text(&s, &headers).await
}
