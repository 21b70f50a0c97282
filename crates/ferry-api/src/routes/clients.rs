//! Clients, subscriptions, topics, retained messages and publishing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::page::{Paged, paginate};
use crate::AppState;
use crate::admin::{
    ClientView, PublishRequest, PublishResult, RetainedView, SubscriptionView, TopicView,
};
use crate::error::{ApiError, ApiResult, Body, ErrorBody, Query};

pub(crate) fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients))
        .routes(routes!(get_client, kick_client))
        .routes(routes!(client_subscriptions))
        .routes(routes!(list_subscriptions))
        .routes(routes!(list_topics))
        .routes(routes!(list_retained, clear_retained))
        .routes(routes!(get_retained, delete_retained))
        .routes(routes!(publish))
        .routes(routes!(publish_bulk))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClientQuery {
    page: Option<usize>,
    limit: Option<usize>,
    clientid: Option<String>,
    username: Option<String>,
    /// Substring of the client id.
    like_clientid: Option<String>,
    /// Substring of the username.
    like_username: Option<String>,
    ip_address: Option<String>,
    /// `connected` or `disconnected`.
    conn_state: Option<String>,
    /// 3, 4 or 5.
    proto_ver: Option<u8>,
    clean_start: Option<bool>,
}

fn matches(c: &ClientView, q: &ClientQuery) -> bool {
    q.clientid.as_ref().is_none_or(|x| *x == c.clientid)
        && q.username
            .as_ref()
            .is_none_or(|x| c.username.as_ref() == Some(x))
        && q.like_clientid
            .as_ref()
            .is_none_or(|x| c.clientid.contains(x.as_str()))
        && q.like_username
            .as_ref()
            .is_none_or(|x| c.username.as_ref().is_some_and(|u| u.contains(x.as_str())))
        && q.ip_address.as_ref().is_none_or(|x| *x == c.ip_address)
        && q.conn_state
            .as_ref()
            .is_none_or(|x| (x == "connected") == c.connected)
        && q.proto_ver.is_none_or(|v| v == c.proto_ver)
        && q.clean_start.is_none_or(|v| v == c.clean_start)
}

/// Clients (connected, and persistent sessions whose client is offline).
#[utoipa::path(get, path = "/api/v5/clients", tag = "clients", params(ClientQuery),
    responses((status = 200, body = Paged<ClientView>), (status = 400, body = ErrorBody)))]
async fn list_clients(
    State(s): State<AppState>,
    Query(q): Query<ClientQuery>,
) -> ApiResult<Json<Paged<ClientView>>> {
    if let Some(st) = &q.conn_state
        && st != "connected"
        && st != "disconnected"
    {
        return Err(ApiError::bad_request(
            "conn_state: must be connected or disconnected",
        ));
    }
    let mut all: Vec<ClientView> = s
        .admin
        .clients()
        .into_iter()
        .filter(|c| matches(c, &q))
        .collect();
    all.sort_by(|a, b| a.clientid.cmp(&b.clientid));
    Ok(Json(paginate(all, q.page, q.limit)?))
}

fn no_client(id: &str) -> ApiError {
    ApiError::not_found(format!("no client with id {id:?}"))
}

/// One client's details: address, protocol, keep alive, session expiry, queue, inflight and counters.
#[utoipa::path(get, path = "/api/v5/clients/{clientid}", tag = "clients",
    params(("clientid" = String, Path)),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorBody)))]
async fn get_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    s.admin.client(&id).map(Json).ok_or_else(|| no_client(&id))
}

/// Disconnects the client (DISCONNECT 0x98 to MQTT 5 clients) and discards its session.
#[utoipa::path(delete, path = "/api/v5/clients/{clientid}", tag = "clients",
    params(("clientid" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn kick_client(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if s.admin.kick(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_client(&id))
    }
}

/// A client's subscriptions.
#[utoipa::path(get, path = "/api/v5/clients/{clientid}/subscriptions", tag = "clients",
    params(("clientid" = String, Path)),
    responses((status = 200, body = [SubscriptionView]), (status = 404, body = ErrorBody)))]
async fn client_subscriptions(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<SubscriptionView>>> {
    if s.admin.client(&id).is_none() {
        return Err(no_client(&id));
    }
    Ok(Json(
        s.admin
            .subscriptions()
            .into_iter()
            .filter(|x| x.clientid == id)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SubQuery {
    page: Option<usize>,
    limit: Option<usize>,
    clientid: Option<String>,
    /// The filter exactly as subscribed.
    topic: Option<String>,
    /// Subscriptions whose filter matches this topic name.
    match_topic: Option<String>,
    qos: Option<u8>,
    share_group: Option<String>,
}

/// Does the filter `f` match the topic name `t`?
pub(crate) fn filter_matches(f: &str, t: &str) -> bool {
    let mut fl = f.split('/');
    let mut tl = t.split('/');
    if t.starts_with('$') && (f.starts_with('+') || f.starts_with('#')) {
        return false;
    }
    loop {
        match (fl.next(), tl.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Subscriptions, filtered by client, topic, a topic they match, QoS or share group.
#[utoipa::path(get, path = "/api/v5/subscriptions", tag = "subscriptions", params(SubQuery),
    responses((status = 200, body = Paged<SubscriptionView>), (status = 400, body = ErrorBody)))]
async fn list_subscriptions(
    State(s): State<AppState>,
    Query(q): Query<SubQuery>,
) -> ApiResult<Json<Paged<SubscriptionView>>> {
    if q.qos.is_some_and(|x| x > 2) {
        return Err(ApiError::bad_request("qos: must be 0, 1 or 2"));
    }
    let all: Vec<SubscriptionView> = s
        .admin
        .subscriptions()
        .into_iter()
        .filter(|x| {
            q.clientid.as_ref().is_none_or(|c| *c == x.clientid)
                && q.topic.as_ref().is_none_or(|t| *t == x.topic)
                && q.match_topic
                    .as_ref()
                    .is_none_or(|t| filter_matches(&x.topic, t))
                && q.qos.is_none_or(|v| v == x.qos)
                && q.share_group
                    .as_ref()
                    .is_none_or(|g| x.share_group.as_ref() == Some(g))
        })
        .collect();
    Ok(Json(paginate(all, q.page, q.limit)?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TopicQuery {
    page: Option<usize>,
    limit: Option<usize>,
    /// Only this topic filter.
    topic: Option<String>,
}

/// Topic filters with at least one subscriber.
#[utoipa::path(get, path = "/api/v5/topics", tag = "topics", params(TopicQuery),
    responses((status = 200, body = Paged<TopicView>), (status = 400, body = ErrorBody)))]
async fn list_topics(
    State(s): State<AppState>,
    Query(q): Query<TopicQuery>,
) -> ApiResult<Json<Paged<TopicView>>> {
    let all: Vec<TopicView> = s
        .admin
        .topics()
        .into_iter()
        .filter(|t| q.topic.as_ref().is_none_or(|x| *x == t.topic))
        .collect();
    Ok(Json(paginate(all, q.page, q.limit)?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RetainedQuery {
    page: Option<usize>,
    limit: Option<usize>,
    /// A topic filter (default `#`: all).
    topic: Option<String>,
}

/// Retained messages (without payloads; read one to get it).
#[utoipa::path(get, path = "/api/v5/mqtt/retainer/messages", tag = "retainer", params(RetainedQuery),
    responses((status = 200, body = Paged<RetainedView>), (status = 400, body = ErrorBody)))]
async fn list_retained(
    State(s): State<AppState>,
    Query(q): Query<RetainedQuery>,
) -> ApiResult<Json<Paged<RetainedView>>> {
    let all = s.admin.retained(q.topic.as_deref().unwrap_or("#"))?;
    Ok(Json(paginate(all, q.page, q.limit)?))
}

/// Deletes every retained message.
#[utoipa::path(delete, path = "/api/v5/mqtt/retainer/messages", tag = "retainer",
    responses((status = 204)))]
async fn clear_retained(State(s): State<AppState>) -> StatusCode {
    s.admin.retained_clear();
    StatusCode::NO_CONTENT
}

fn no_retained(t: &str) -> ApiError {
    ApiError::not_found(format!("no retained message on {t:?}"))
}

/// One retained message with its payload (base64). The topic is URL-encoded in the path.
#[utoipa::path(get, path = "/api/v5/mqtt/retainer/message/{topic}", tag = "retainer",
    params(("topic" = String, Path)),
    responses((status = 200, body = RetainedView), (status = 404, body = ErrorBody)))]
async fn get_retained(
    State(s): State<AppState>,
    Path(topic): Path<String>,
) -> ApiResult<Json<RetainedView>> {
    s.admin
        .retained_get(&topic)
        .map(Json)
        .ok_or_else(|| no_retained(&topic))
}

/// Deletes one retained message. The topic is URL-encoded in the path.
#[utoipa::path(delete, path = "/api/v5/mqtt/retainer/message/{topic}", tag = "retainer",
    params(("topic" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_retained(
    State(s): State<AppState>,
    Path(topic): Path<String>,
) -> ApiResult<StatusCode> {
    if s.admin.retained_delete(&topic) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_retained(&topic))
    }
}

/// Publishes one message as if a client had.
#[utoipa::path(post, path = "/api/v5/publish", tag = "publish", request_body = PublishRequest,
    responses((status = 200, body = PublishResult), (status = 400, body = ErrorBody)))]
async fn publish(
    State(s): State<AppState>,
    Body(req): Body<PublishRequest>,
) -> ApiResult<Json<PublishResult>> {
    s.admin.publish(req).map(Json)
}

/// Most messages one bulk publish takes.
const MAX_BULK: usize = 1000;

/// Publishes several messages, in order; each gets its own result.
#[utoipa::path(post, path = "/api/v5/publish/bulk", tag = "publish", request_body = [PublishRequest],
    responses((status = 200, body = [PublishResult]), (status = 400, body = ErrorBody)))]
async fn publish_bulk(
    State(s): State<AppState>,
    Body(reqs): Body<Vec<PublishRequest>>,
) -> ApiResult<Json<Vec<PublishResult>>> {
    if reqs.len() > MAX_BULK {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BULK} messages per bulk publish"
        )));
    }
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        out.push(s.admin.publish(r)?);
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::filter_matches;

    #[test]
    fn filters_match_as_mqtt_says() {
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("#", "a/b"));
        assert!(!filter_matches("#", "$SYS/x"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("a/b", "a/c"));
    }
}
