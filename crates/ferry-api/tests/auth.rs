//! Authentication of the API, driven through the real router over a real socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::admin::{
    Change, ClientView, NodeInfo, NodeState, ObjectKind, PublishRequest, PublishResult,
    RetainedView, SubscriptionView, TopicView,
};
use ferry_api::auth::{Auth, AuthSettings};
use ferry_api::{Admin, ApiError, ApiSettings};
use ferry_testkit::http::{Cred, Resp};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NEW_PWD: &str = "n3w-Secret";

/// An `Admin` with nothing behind it: these tests only exercise authentication.
struct NoBroker;

#[async_trait::async_trait]
impl Admin for NoBroker {
    fn state(&self) -> NodeState {
        NodeState::Running
    }
    fn node(&self) -> NodeInfo {
        NodeInfo {
            node: "ferry@test".into(),
            node_status: "running".into(),
            version: "test".into(),
            uptime: 0,
            connections: 0,
            live_connections: 0,
            memory_used: 0,
            process_available: 0,
            role: "core".into(),
            sys_path: String::new(),
            edition: "opensource".into(),
        }
    }
    fn stats(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    fn metrics(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    fn monitor(&self, _: Option<u64>) -> Vec<BTreeMap<String, Value>> {
        Vec::new()
    }
    fn monitor_current(&self) -> BTreeMap<String, Value> {
        BTreeMap::new()
    }
    fn prometheus(&self) -> String {
        String::new()
    }
    fn clients(&self) -> Vec<ClientView> {
        Vec::new()
    }
    fn client(&self, _: &str) -> Option<ClientView> {
        None
    }
    fn kick(&self, _: &str) -> bool {
        false
    }
    fn subscriptions(&self) -> Vec<SubscriptionView> {
        Vec::new()
    }
    fn topics(&self) -> Vec<TopicView> {
        Vec::new()
    }
    fn retained(&self, _: &str) -> Result<Vec<RetainedView>, ApiError> {
        Ok(Vec::new())
    }
    fn retained_get(&self, _: &str) -> Option<RetainedView> {
        None
    }
    fn retained_delete(&self, _: &str) -> bool {
        false
    }
    fn retained_clear(&self) -> usize {
        0
    }
    fn publish(&self, _: PublishRequest) -> Result<PublishResult, ApiError> {
        Err(ApiError::Unavailable("no broker".into()))
    }
    fn objects(&self, _: ObjectKind) -> Vec<Value> {
        Vec::new()
    }
    fn object(&self, _: ObjectKind, _: &str) -> Option<Value> {
        None
    }
    fn object_metrics(&self, _: ObjectKind, _: &str) -> Option<Value> {
        None
    }
    fn reset_metrics(&self, _: ObjectKind, _: &str) -> bool {
        false
    }
    async fn apply(&self, _: Change) -> Result<(), ApiError> {
        Ok(())
    }
    async fn probe_connector(&self, _: Value) -> Result<(), ApiError> {
        Ok(())
    }
    fn rule_test(&self, _: &str, context: Value) -> Result<Value, ApiError> {
        Ok(context)
    }
    fn rule_events(&self) -> Value {
        json!([])
    }
    fn effective_config(&self) -> Value {
        json!({})
    }
}

/// A running API on 127.0.0.1:0, stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(
    data_dir: &Path,
    settings: AuthSettings,
) -> Result<Server, Box<dyn std::error::Error>> {
    let dir = data_dir.to_path_buf();
    let auth = tokio::task::spawn_blocking(move || Auth::open(&dir, settings)).await??;
    let app = ferry_api::router(
        Arc::new(NoBroker),
        Arc::new(auth),
        ApiSettings {
            max_body_bytes: 4096,
            ..ApiSettings::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(ferry_api::serve(
        listener,
        app,
        stop.clone(),
        Duration::from_secs(1),
    ));
    Ok(Server { addr, stop })
}

/// One request through the shared test client (`ferry_testkit::http`).
async fn call(
    srv: &Server,
    method: &str,
    path: &str,
    cred: Cred<'_>,
    body: Option<&str>,
) -> Result<Resp, Box<dyn std::error::Error>> {
    Ok(ferry_testkit::http::call(srv.addr, method, path, cred, body).await?)
}

async fn login(srv: &Server, user: &str, pwd: &str) -> Result<Resp, Box<dyn std::error::Error>> {
    let body = json!({"username": user, "password": pwd}).to_string();
    call(srv, "POST", "/api/v5/login", Cred::None, Some(&body)).await
}

/// Logs in as the default admin and changes its password; returns a usable token.
async fn admin_token(srv: &Server) -> Result<String, Box<dyn std::error::Error>> {
    let r = login(srv, "admin", "public").await?;
    let token = r.body["token"].as_str().ok_or("no token")?.to_owned();
    let body = json!({"old_pwd": "public", "new_pwd": NEW_PWD}).to_string();
    let r = call(
        srv,
        "POST",
        "/api/v5/users/admin/change_pwd",
        Cred::Bearer(&token),
        Some(&body),
    )
    .await?;
    assert_eq!(r.status, 204, "{r:?}");
    Ok(token)
}

#[tokio::test]
async fn default_admin_must_change_its_password_before_anything_else() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    let r = login(&srv, "admin", "public").await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["role"], "administrator");
    assert_eq!(r.body["password_change_required"], true);
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    let token = r.body["token"].as_str().ok_or("no token")?.to_owned();

    let r = call(&srv, "GET", "/api/v5/users", Cred::Bearer(&token), None).await?;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.code(), "PASSWORD_CHANGE_REQUIRED");
    assert!(
        r.message()
            .contains("POST /api/v5/users/admin/change_pwd {old_pwd, new_pwd}"),
        "{r:?}"
    );

    // Weak passwords are refused with the rule named.
    let path = "/api/v5/users/admin/change_pwd";
    for (new, rule) in [
        ("abc", "8 to 64 characters"),
        ("abcdefghij", "two of letters, digits and symbols"),
        ("public", "default password"),
    ] {
        let body = json!({"old_pwd": "public", "new_pwd": new}).to_string();
        let r = call(&srv, "POST", path, Cred::Bearer(&token), Some(&body)).await?;
        assert_eq!(r.status, 400, "{new}: {r:?}");
        assert!(r.message().contains(rule), "{new}: {r:?}");
        assert!(
            r.body["problems"][0]
                .as_str()
                .is_some_and(|p| p.starts_with("new_pwd:"))
        );
    }
    let body = json!({"old_pwd": "wrong", "new_pwd": NEW_PWD}).to_string();
    let r = call(&srv, "POST", path, Cred::Bearer(&token), Some(&body)).await?;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.message().contains("old_pwd"), "{r:?}");

    let body = json!({"old_pwd": "public", "new_pwd": NEW_PWD}).to_string();
    let r = call(&srv, "POST", path, Cred::Bearer(&token), Some(&body)).await?;
    assert_eq!(r.status, 204, "{r:?}");
    let r = call(&srv, "GET", "/api/v5/users", Cred::Bearer(&token), None).await?;
    assert_eq!(r.status, 200, "the same token now passes: {r:?}");
    assert_eq!(r.body[0]["password_change_required"], false);
    assert_eq!(login(&srv, "admin", "public").await?.status, 401);
    let r = login(&srv, "admin", NEW_PWD).await?;
    assert_eq!(r.body["password_change_required"], false, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_naming_both_ways_to_authenticate() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    for cred in [Cred::None, Cred::Bearer("nope"), Cred::Basic("k", "s")] {
        let r = call(&srv, "GET", "/api/v5/users", cred, None).await?;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.code(), "UNAUTHORIZED");
        assert!(
            r.message().contains("Bearer") && r.message().contains("Basic"),
            "{r:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn wrong_password_is_401_like_an_unknown_user_and_repeats_lock_the_username() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(
        dir.path(),
        AuthSettings {
            max_login_failures: 3,
            ..AuthSettings::default()
        },
    )
    .await?;
    let wrong = login(&srv, "admin", "wrong").await?;
    let unknown = login(&srv, "ghost", "wrong").await?;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body, unknown.body, "no user enumeration");
    login(&srv, "admin", "wrong").await?;
    login(&srv, "admin", "wrong").await?;
    let r = login(&srv, "admin", "public").await?;
    assert_eq!(r.status, 423, "locked even with the right password: {r:?}");
    assert!(r.message().contains("locked"), "{r:?}");
    assert_eq!(
        login(&srv, "ghost", "x").await?.status,
        401,
        "counted per username"
    );
    Ok(())
}

#[tokio::test]
async fn tokens_expire_and_logout_revokes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(
        dir.path(),
        AuthSettings {
            token_ttl: Duration::from_millis(300),
            ..AuthSettings::default()
        },
    )
    .await?;
    let token = admin_token(&srv).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&srv, "GET", "/api/v5/users", Cred::Bearer(&token), None).await?;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "token never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    let token = admin_token(&srv).await?;
    let r = call(
        &srv,
        "POST",
        "/api/v5/logout",
        Cred::Bearer(&token),
        Some(r#"{"username":"admin"}"#),
    )
    .await?;
    assert_eq!(r.status, 204, "{r:?}");
    let r = call(&srv, "GET", "/api/v5/users", Cred::Bearer(&token), None).await?;
    assert_eq!(r.status, 401, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn api_key_secret_is_shown_once_and_basic_auth_honours_enable_and_expiry() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    let admin = admin_token(&srv).await?;
    let bearer = Cred::Bearer(&admin);
    let r = call(
        &srv,
        "POST",
        "/api/v5/api_key",
        bearer,
        Some(r#"{"name":"ci","desc":"pipeline"}"#),
    )
    .await?;
    assert_eq!(r.status, 200, "{r:?}");
    let key = r.body["api_key"].as_str().ok_or("no api_key")?.to_owned();
    let secret = r.body["api_secret"]
        .as_str()
        .ok_or("no api_secret")?
        .to_owned();
    assert_eq!(r.body["expired_at"], "infinity");
    assert_eq!(r.body["enable"], true);

    let r = call(&srv, "GET", "/api/v5/api_key", Cred::Bearer(&admin), None).await?;
    assert_eq!(r.status, 200);
    assert_eq!(r.body[0]["name"], "ci");
    assert!(
        !r.text.contains(&secret) && !r.text.contains("api_secret"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("argon2"), "{}", r.text);
    let r = call(
        &srv,
        "GET",
        "/api/v5/api_key/ci",
        Cred::Bearer(&admin),
        None,
    )
    .await?;
    assert!(r.status == 200 && !r.text.contains(&secret), "{r:?}");
    let keys_file = std::fs::read_to_string(dir.path().join("api/api_keys.json"))?;
    assert!(!keys_file.contains(&secret));

    let r = call(
        &srv,
        "GET",
        "/api/v5/users",
        Cred::Basic(&key, &secret),
        None,
    )
    .await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = call(
        &srv,
        "GET",
        "/api/v5/users",
        Cred::Basic(&key, "wrong"),
        None,
    )
    .await?;
    assert_eq!(r.status, 401, "{r:?}");

    let r = call(
        &srv,
        "PUT",
        "/api/v5/api_key/ci",
        Cred::Bearer(&admin),
        Some(r#"{"enable":false}"#),
    )
    .await?;
    assert_eq!((r.status, &r.body["enable"]), (200, &json!(false)), "{r:?}");
    let r = call(
        &srv,
        "GET",
        "/api/v5/users",
        Cred::Basic(&key, &secret),
        None,
    )
    .await?;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.message().contains("disabled"), "{r:?}");

    let body = r#"{"enable":true,"expired_at":"2001-01-01T00:00:00Z"}"#;
    let r = call(
        &srv,
        "PUT",
        "/api/v5/api_key/ci",
        Cred::Bearer(&admin),
        Some(body),
    )
    .await?;
    assert_eq!((r.status, &r.body["expired"]), (200, &json!(true)), "{r:?}");
    let r = call(
        &srv,
        "GET",
        "/api/v5/users",
        Cred::Basic(&key, &secret),
        None,
    )
    .await?;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.message().contains("expired"), "{r:?}");

    let r = call(
        &srv,
        "PUT",
        "/api/v5/api_key/ci",
        Cred::Bearer(&admin),
        Some(r#"{"expired_at":"soon"}"#),
    )
    .await?;
    assert_eq!(r.status, 400, "{r:?}");
    let r = call(
        &srv,
        "POST",
        "/api/v5/api_key",
        Cred::Bearer(&admin),
        Some(r#"{"name":"ci"}"#),
    )
    .await?;
    assert_eq!(r.status, 409, "{r:?}");
    let r = call(
        &srv,
        "DELETE",
        "/api/v5/api_key/ci",
        Cred::Bearer(&admin),
        None,
    )
    .await?;
    assert_eq!(r.status, 204, "{r:?}");
    let r = call(
        &srv,
        "GET",
        "/api/v5/api_key/ci",
        Cred::Bearer(&admin),
        None,
    )
    .await?;
    assert_eq!(r.status, 404, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn bootstrap_file_keys_authenticate_and_a_bad_line_names_its_number() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bootstrap_keys");
    std::fs::write(
        &file,
        "# scripts\n\nadmin-script:Adm1n-secret\nreader:R3ader-secret:viewer\n",
    )?;
    let settings = AuthSettings {
        bootstrap_file: Some(file.clone()),
        ..AuthSettings::default()
    };
    let srv = start(dir.path(), settings.clone()).await?;
    let r = call(
        &srv,
        "GET",
        "/api/v5/api_key",
        Cred::Basic("admin-script", "Adm1n-secret"),
        None,
    )
    .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text.contains("bootstrap_file"), "{}", r.text);
    let body = r#"{"name":"x"}"#;
    let r = call(
        &srv,
        "POST",
        "/api/v5/api_key",
        Cred::Basic("reader", "R3ader-secret"),
        Some(body),
    )
    .await?;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{r:?}");
    drop(srv);

    std::fs::write(&file, "ok:fine-secret\nno-colon-here\n")?;
    let d = dir.path().to_path_buf();
    let err = tokio::task::spawn_blocking(move || Auth::open(&d, settings))
        .await?
        .err()
        .ok_or("a bad line must fail")?;
    assert!(err.to_string().contains("bootstrap_keys:2:"), "{err}");
    Ok(())
}

#[tokio::test]
async fn viewer_reads_and_tests_rules_but_cannot_change_anything() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    let admin = admin_token(&srv).await?;
    let body = json!({"username": "vera", "password": "L00k-only", "role": "viewer", "description": "ops"});
    let r = call(
        &srv,
        "POST",
        "/api/v5/users",
        Cred::Bearer(&admin),
        Some(&body.to_string()),
    )
    .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["role"], "viewer");
    let users_file = std::fs::read_to_string(dir.path().join("api/users.json"))?;
    assert!(!users_file.contains("L00k-only") && !users_file.contains(NEW_PWD));

    let r = login(&srv, "vera", "L00k-only").await?;
    assert_eq!(r.body["password_change_required"], false, "{r:?}");
    let vera = r.body["token"].as_str().ok_or("no token")?.to_owned();
    let v = || Cred::Bearer(&vera);
    assert_eq!(
        call(&srv, "GET", "/api/v5/users", v(), None).await?.status,
        200
    );
    assert_eq!(
        call(&srv, "GET", "/api/v5/api_key", v(), None)
            .await?
            .status,
        200
    );
    let new_user = json!({"username": "x", "password": "an0ther-one"}).to_string();
    for (method, path, body) in [
        ("POST", "/api/v5/users", Some(new_user.as_str())),
        ("PUT", "/api/v5/users/admin", Some(r#"{"description":"x"}"#)),
        ("DELETE", "/api/v5/users/admin", None),
        ("POST", "/api/v5/api_key", Some(r#"{"name":"k"}"#)),
        (
            "POST",
            "/api/v5/users/admin/change_pwd",
            Some(r#"{"old_pwd":"a","new_pwd":"b"}"#),
        ),
    ] {
        let r = call(&srv, method, path, v(), body).await?;
        assert_eq!(
            (r.status, r.code()),
            (403, "FORBIDDEN"),
            "{method} {path}: {r:?}"
        );
    }
    // The route itself belongs to the rules group; the middleware lets the viewer through.
    let r = call(
        &srv,
        "POST",
        "/api/v5/rule_test",
        v(),
        Some(r#"{"sql":"SELECT 1","context":{}}"#),
    )
    .await?;
    assert!(r.status != 401 && r.status != 403, "{r:?}");
    let body = json!({"old_pwd": "L00k-only", "new_pwd": "L00k-0nly!"}).to_string();
    let r = call(
        &srv,
        "POST",
        "/api/v5/users/vera/change_pwd",
        v(),
        Some(&body),
    )
    .await?;
    assert_eq!(r.status, 204, "a viewer changes its own password: {r:?}");
    Ok(())
}

#[tokio::test]
async fn users_cannot_delete_themselves_or_the_last_administrator() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    let admin = admin_token(&srv).await?;
    let r = call(
        &srv,
        "DELETE",
        "/api/v5/users/admin",
        Cred::Bearer(&admin),
        None,
    )
    .await?;
    assert_eq!(r.status, 409, "{r:?}");
    let r = call(
        &srv,
        "PUT",
        "/api/v5/users/admin",
        Cred::Bearer(&admin),
        Some(r#"{"role":"viewer"}"#),
    )
    .await?;
    assert_eq!(r.status, 409, "{r:?}");
    let r = call(
        &srv,
        "DELETE",
        "/api/v5/users/ghost",
        Cred::Bearer(&admin),
        None,
    )
    .await?;
    assert_eq!(r.status, 404, "{r:?}");
    let body = json!({"username": "admin", "password": "an0ther-one"}).to_string();
    let r = call(
        &srv,
        "POST",
        "/api/v5/users",
        Cred::Bearer(&admin),
        Some(&body),
    )
    .await?;
    assert_eq!(r.status, 409, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_are_400_and_oversized_413_never_500() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    for body in [
        "{bad",
        "[]",
        r#"{"username":"admin"}"#,
        r#"{"username":1,"password":"x"}"#,
    ] {
        let r = call(&srv, "POST", "/api/v5/login", Cred::None, Some(body)).await?;
        assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"), "{body}: {r:?}");
    }
    let r = call(&srv, "POST", "/api/v5/login", Cred::None, None).await?;
    assert_eq!(r.status, 400, "no body: {r:?}");
    let admin = admin_token(&srv).await?;
    for (path, body) in [
        (
            "/api/v5/users",
            r#"{"username":"x","password":"an0ther-one","role":"root"}"#,
        ),
        (
            "/api/v5/users",
            r#"{"username":"bad name","password":"an0ther-one"}"#,
        ),
        ("/api/v5/api_key", r#"{"name":"k","expired_at":"tomorrow"}"#),
        ("/api/v5/api_key", r#"{"name":"k","extra":1}"#),
        ("/api/v5/users/admin/change_pwd", "{"),
    ] {
        let r = call(&srv, "POST", path, Cred::Bearer(&admin), Some(body)).await?;
        assert_eq!(
            (r.status, r.code()),
            (400, "BAD_REQUEST"),
            "{path} {body}: {r:?}"
        );
    }
    let big = format!(
        r#"{{"username":"admin","password":"{}"}}"#,
        "x".repeat(8192)
    );
    let r = call(&srv, "POST", "/api/v5/login", Cred::None, Some(&big)).await?;
    assert_eq!(r.status, 413, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn users_and_keys_persist_across_restarts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let srv = start(dir.path(), AuthSettings::default()).await?;
    let admin = admin_token(&srv).await?;
    let r = call(
        &srv,
        "POST",
        "/api/v5/api_key",
        Cred::Bearer(&admin),
        Some(r#"{"name":"ci","role":"viewer"}"#),
    )
    .await?;
    let key = r.body["api_key"].as_str().ok_or("no key")?.to_owned();
    let secret = r.body["api_secret"].as_str().ok_or("no secret")?.to_owned();
    drop(srv);

    let srv = start(dir.path(), AuthSettings::default()).await?;
    let r = call(&srv, "GET", "/api/v5/users", Cred::Bearer(&admin), None).await?;
    assert_eq!(r.status, 401, "tokens do not survive a restart");
    let r = login(&srv, "admin", NEW_PWD).await?;
    assert_eq!(
        (r.status, &r.body["password_change_required"]),
        (200, &json!(false)),
        "{r:?}"
    );
    let r = call(
        &srv,
        "GET",
        "/api/v5/api_key",
        Cred::Basic(&key, &secret),
        None,
    )
    .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body[0]["role"], "viewer");
    Ok(())
}

#[test]
fn auth_routes_are_in_the_openapi_document() {
    let doc = ferry_api::openapi_json();
    for path in [
        "/api/v5/login",
        "/api/v5/logout",
        "/api/v5/users",
        "/api/v5/users/{username}",
        "/api/v5/users/{username}/change_pwd",
        "/api/v5/api_key",
        "/api/v5/api_key/{name}",
    ] {
        assert!(doc.contains(&format!("\"{path}\"")), "{path} missing");
    }
}
