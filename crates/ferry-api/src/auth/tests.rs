//! Unit tests of [`Auth`] without HTTP: persistence, the default admin, users, keys,
//! token expiry on tokio's paused clock.

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn open(dir: &Path) -> Result<Auth, AuthError> {
    Auth::open(dir, AuthSettings::default())
}

#[test]
fn first_open_creates_the_default_admin_and_a_second_open_reads_it_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let auth = open(dir.path())?;
    let users = auth.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "admin");
    assert_eq!(users[0].role, Role::Administrator);
    assert!(users[0].password_change_required);
    let ok = auth.login("admin", "public")?;
    assert!(ok.password_change_required);

    auth.change_password("admin", "public", "n3w-Secret", None)?;
    auth.add_user(NewUser {
        username: "viewer1".into(),
        password: "look-but-1".into(),
        role: Role::Viewer,
        description: "reads".into(),
    })?;
    let (key, secret) = auth.create_api_key(NewApiKey {
        name: "ci".into(),
        expired_at: None,
        desc: String::new(),
        enable: true,
        role: Role::Administrator,
    })?;
    drop(auth);

    let again = open(dir.path())?;
    assert_eq!(again.users().len(), 2, "no second default admin");
    let admin = again.login("admin", "n3w-Secret")?;
    assert!(!admin.password_change_required);
    assert_eq!(again.login("viewer1", "look-but-1")?.role, Role::Viewer);
    assert_eq!(again.check_api_key(&key.api_key, &secret)?.name, "ci");
    assert!(
        again.token_principal(&ok.token).is_none(),
        "tokens do not survive"
    );
    Ok(())
}

#[test]
fn files_hold_hashes_never_passwords_or_secrets() -> TestResult {
    let dir = tempfile::tempdir()?;
    let auth = open(dir.path())?;
    auth.change_password("admin", "public", "n3w-Secret", None)?;
    let (_, secret) = auth.create_api_key(NewApiKey {
        name: "ci".into(),
        expired_at: None,
        desc: String::new(),
        enable: true,
        role: Role::Viewer,
    })?;
    let users = std::fs::read_to_string(dir.path().join("api/users.json"))?;
    let keys = std::fs::read_to_string(dir.path().join("api/api_keys.json"))?;
    assert!(!users.contains("n3w-Secret") && !users.contains("public"));
    assert!(users.contains("$argon2id$"));
    assert!(!keys.contains(&secret));
    assert!(keys.contains("$argon2id$"));
    Ok(())
}

#[test]
fn unknown_user_and_wrong_password_fail_alike_then_lock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let auth = Auth::open(
        dir.path(),
        AuthSettings {
            max_login_failures: 2,
            ..AuthSettings::default()
        },
    )?;
    let wrong = auth.login("admin", "nope").err().map(|e| e.to_string());
    let unknown = auth.login("nobody", "nope").err().map(|e| e.to_string());
    assert_eq!(wrong, unknown);
    assert!(matches!(
        auth.login("admin", "nope"),
        Err(AuthError::BadCredentials)
    ));
    assert!(
        matches!(auth.login("admin", "public"), Err(AuthError::Locked(_))),
        "locked even with the right password"
    );
    Ok(())
}

#[test]
fn the_last_administrator_stays() -> TestResult {
    let dir = tempfile::tempdir()?;
    let auth = open(dir.path())?;
    assert!(matches!(
        auth.delete_user("admin", None),
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        auth.update_user("admin", Some(Role::Viewer), None),
        Err(AuthError::Conflict(_))
    ));
    auth.add_user(NewUser {
        username: "second".into(),
        password: "an0ther-one".into(),
        role: Role::Administrator,
        description: String::new(),
    })?;
    assert!(matches!(
        auth.delete_user("second", Some("second")),
        Err(AuthError::Conflict(m)) if m.contains("itself")
    ));
    auth.update_user("admin", Some(Role::Viewer), Some("demoted".into()))?;
    auth.delete_user("admin", Some("second"))?;
    assert!(matches!(
        auth.delete_user("nobody", None),
        Err(AuthError::UserNotFound(_))
    ));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_after_the_ttl() -> TestResult {
    let dir = tempfile::tempdir()?;
    let auth = Auth::open(
        dir.path(),
        AuthSettings {
            token_ttl: Duration::from_secs(60),
            ..AuthSettings::default()
        },
    )?;
    let ok = auth.login("admin", "public")?;
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(auth.token_principal(&ok.token).is_some());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(auth.token_principal(&ok.token).is_none());
    Ok(())
}

#[test]
fn password_change_revokes_the_users_other_tokens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let auth = open(dir.path())?;
    let a = auth.login("admin", "public")?.token;
    let b = auth.login("admin", "public")?.token;
    auth.change_password("admin", "public", "n3w-Secret", Some(&a))?;
    assert!(
        auth.token_principal(&a)
            .is_some_and(|(_, required)| !required)
    );
    assert!(auth.token_principal(&b).is_none());
    assert!(matches!(
        auth.change_password("admin", "wrong", "0ther-Secret", None),
        Err(AuthError::Invalid(p)) if p[0].starts_with("old_pwd")
    ));
    Ok(())
}

#[test]
fn api_keys_refuse_when_disabled_or_expired_and_bootstrap_keys_are_read_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let boot = dir.path().join("keys.txt");
    std::fs::write(&boot, "# for CI\nscript:s3cret-value:viewer\n")?;
    let auth = Auth::open(
        dir.path(),
        AuthSettings {
            bootstrap_file: Some(boot.clone()),
            ..AuthSettings::default()
        },
    )?;
    let p = auth.check_api_key("script", "s3cret-value")?;
    assert_eq!((p.role, p.kind), (Role::Viewer, PrincipalKind::ApiKey));
    assert!(auth.check_api_key("script", "wrong").is_err());
    assert!(matches!(
        auth.delete_api_key("script"),
        Err(AuthError::Conflict(_))
    ));

    let (k, secret) = auth.create_api_key(NewApiKey {
        name: "ci".into(),
        expired_at: Some("2999-01-01T00:00:00Z".into()),
        desc: "d".into(),
        enable: true,
        role: Role::Administrator,
    })?;
    assert_eq!(k.expired_at, "2999-01-01T00:00:00Z");
    auth.update_api_key(
        "ci",
        ApiKeyUpdate {
            enable: Some(false),
            ..ApiKeyUpdate::default()
        },
    )?;
    assert!(matches!(
        auth.check_api_key(&k.api_key, &secret),
        Err(AuthError::Refused(m)) if m.contains("disabled")
    ));
    let v = auth.update_api_key(
        "ci",
        ApiKeyUpdate {
            enable: Some(true),
            expired_at: Some("2000-01-01T00:00:00Z".into()),
            ..ApiKeyUpdate::default()
        },
    )?;
    assert!(v.expired);
    assert!(matches!(
        auth.check_api_key(&k.api_key, &secret),
        Err(AuthError::Refused(m)) if m.contains("expired")
    ));
    drop(auth);

    // Persisted keys survive; the bootstrap file is read again, never copied to disk.
    let keys = std::fs::read_to_string(dir.path().join("api/api_keys.json"))?;
    assert!(!keys.contains("script"));
    std::fs::write(&boot, "ok:fine-secret\n\nbroken line\n")?;
    let e = Auth::open(
        dir.path(),
        AuthSettings {
            bootstrap_file: Some(boot),
            ..AuthSettings::default()
        },
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("keys.txt:3:"), "{e}");
    Ok(())
}

#[test]
fn a_newer_or_corrupt_file_is_an_error_not_a_reset() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("api"))?;
    std::fs::write(
        dir.path().join("api/users.json"),
        r#"{"version":2,"users":[]}"#,
    )?;
    assert!(matches!(open(dir.path()), Err(AuthError::Corrupt { .. })));
    std::fs::write(dir.path().join("api/users.json"), "{")?;
    assert!(matches!(open(dir.path()), Err(AuthError::Corrupt { .. })));
    Ok(())
}
