//! ferry: wiring. Composes every crate's typed config into the config file and starts the
//! gateway from it. The binary (`main.rs`) adds the CLI, tracing subscriber and signals;
//! tests start the same gateway in-process through [`Gateway::start`].

pub mod config;
pub mod control;
mod monitor;
mod mqtt_users;
pub mod overlay;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_broker::Broker;
use ferry_engine::RuleEngine;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use control::Control;

/// A running gateway: its broker, the addresses it listens on, and its tasks.
pub struct Gateway {
    pub broker: Arc<Broker>,
    pub rules: Arc<RuleEngine>,
    /// Runtime configuration and the API's handle on everything.
    pub control: Arc<Control>,
    /// (listener name, bound address), e.g. ("tcp.default", 127.0.0.1:1883).
    pub listeners: Vec<(String, SocketAddr)>,
    /// Where the HTTP API listens, if enabled.
    pub api: Option<SocketAddr>,
    /// The TLS settings of the ssl/wss listeners, reloaded by [`Gateway::reload_certificates`].
    tls: Vec<Arc<ferry_server::TlsConfig>>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// The MQTT state sync task and its stop (it outlives the connections: their
    /// disconnects are the last changes it writes).
    state_sync: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

/// Applies a reloaded config's `[authorization]` (`ferry serve` does on SIGHUP): the next
/// check of every connection uses the new rules (cached results are dropped).
/// `[authentication]` reloads through [`Gateway::reload_authentication`]; other sections
/// need a restart.
pub fn reload_authorization(broker: &Broker, cfg: &Config) -> anyhow::Result<()> {
    let acl = cfg
        .authorization
        .compile()
        .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
    broker.set_acl(acl);
    Ok(())
}

/// Builds `[authentication]`'s chain (loading key and CA files, opening the user database
/// or sharing `users`, fetching JWKS URLs) and installs it with `allow_anonymous`: new
/// CONNECTs use it, established connections are not touched, the replaced chain (and its
/// JWKS refresh) stops once no CONNECT uses it. Returns the built-in user database if a
/// method uses it. On error nothing changes; the error names the key.
async fn install_authentication(
    cfg: &Config,
    broker: &Broker,
    users: Option<Arc<ferry_auth::users::UserDb>>,
) -> anyhow::Result<Option<Arc<ferry_auth::users::UserDb>>> {
    let uses_db = cfg
        .authentication
        .methods
        .iter()
        .any(|m| matches!(m, ferry_auth::MethodConfig::BuiltInDatabase {}));
    if uses_db {
        std::fs::create_dir_all(&cfg.node.data_dir).with_context(|| {
            format!(
                "node.data_dir: cannot create {}",
                cfg.node.data_dir.display()
            )
        })?;
    }
    let (chain, users) = ferry_auth::Chain::build(
        &cfg.authentication,
        &cfg.node.data_dir,
        broker.registry().clone(),
        users,
    )
    .await
    .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
    broker.set_authentication(ferry_broker::Authentication {
        allow_anonymous: cfg.authentication.allow_anonymous,
        chain: Some(Arc::new(chain)),
    });
    Ok(users)
}

impl Gateway {
    /// Binds every listener and starts serving. Fails if any listener cannot bind.
    pub async fn start(cfg: &Config) -> anyhow::Result<Gateway> {
        let data_dir = cfg.node.data_dir.clone();
        if cfg.api.enable {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("node.data_dir: cannot create {}", data_dir.display()))?;
        }
        let shutdown = CancellationToken::new();
        let broker = if cfg.node.persistence {
            let (dir, mqtt) = (data_dir.clone(), cfg.mqtt.clone());
            let interval = cfg.node.state_sync_interval.0;
            let (broker, restored) = tokio::task::spawn_blocking(move || {
                let store = ferry_store::RedbStore::open(&dir)?;
                Broker::with_store(mqtt, Arc::new(store), interval)
            })
            .await
            .context("opening the MQTT state")?
            .map_err(|e| anyhow::anyhow!("node.data_dir: {e}"))?;
            tracing::info!(
                sessions = restored.sessions,
                subscriptions = restored.subscriptions,
                queued = restored.queued,
                inflight = restored.inflight,
                retained = restored.retained,
                expired_sessions = restored.expired,
                dropped_subscriptions = restored.subscriptions_dropped,
                expired_retained = restored.retained_expired,
                "MQTT state loaded from {}",
                data_dir.join(ferry_store::FILE_NAME).display()
            );
            broker
        } else {
            Broker::new(cfg.mqtt.clone())
        };
        broker.set_banned(
            ferry_broker::limits::Banned::new(&cfg.banned)
                .map_err(|e| anyhow::anyhow!("banned.addresses: {e}"))?,
        );
        reload_authorization(&broker, cfg)?;
        let users = install_authentication(cfg, &broker, None).await?;
        let control = Control::new(cfg.clone(), broker.clone())?;
        if let Some(db) = users {
            control.set_user_db(db);
        }
        let rules = control.rules.clone();
        let hook: Arc<dyn ferry_broker::Hook> = rules.clone();
        let _ = broker.install_hooks(vec![hook]);
        control.start_sources().await?;
        let mut tasks = JoinSet::new();
        let mut listeners = Vec::new();
        let mut tls = Vec::new();
        for (ep, bind) in endpoints(cfg)? {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("listeners.{}.bind: cannot listen on {bind}", ep.name))?;
            let addr = listener.local_addr()?;
            listeners.push((ep.name.clone(), addr));
            tls.extend(ep.tls());
            tasks.spawn(ferry_server::serve(
                listener,
                ep,
                broker.clone(),
                shutdown.clone(),
            ));
        }
        let api = if cfg.api.enable {
            let settings = cfg.api.settings();
            let auth_settings = settings.auth.clone();
            let dir = data_dir.clone();
            let auth = tokio::task::spawn_blocking(move || {
                ferry_api::auth::Auth::open(&dir, auth_settings)
            })
            .await
            .context("opening the API users")?
            .map_err(|e| anyhow::anyhow!("api: {e}"))?;
            let listener = tokio::net::TcpListener::bind(cfg.api.bind)
                .await
                .with_context(|| format!("api.bind: cannot listen on {}", cfg.api.bind))?;
            let addr = listener.local_addr()?;
            let admin: Arc<dyn ferry_api::Admin> = control.clone();
            let app = ferry_api::router(admin, Arc::new(auth), settings);
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) =
                    ferry_api::serve(listener, app, stop, std::time::Duration::from_secs(5)).await
                {
                    tracing::error!("API listener failed: {e}");
                }
            });
            Some(addr)
        } else {
            None
        };
        let (c, stop) = (control.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval(monitor::SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => c.monitor.tick(&c),
                    _ = stop.cancelled() => return,
                }
            }
        });
        let state_sync = cfg.node.persistence.then(|| {
            let stop = CancellationToken::new();
            let s = stop.clone();
            let task = tokio::spawn(broker.clone().run_sync(async move { s.cancelled().await }));
            (stop, task)
        });
        control.set_running();
        Ok(Gateway {
            broker,
            rules,
            control,
            listeners,
            api,
            tls,
            shutdown,
            tasks,
            state_sync,
        })
    }

    /// Applies a reloaded config's `[authentication]` (`ferry serve` does on SIGHUP): the
    /// new chain answers new CONNECTs; connected clients stay. A config whose chain cannot
    /// be built (a missing key or CA file) changes nothing: the error names the key.
    pub async fn reload_authentication(&self, cfg: &Config) -> anyhow::Result<()> {
        let data_dir = self.control.view().config.node.data_dir.clone();
        let mut cfg = cfg.clone();
        // The data dir is read at start only; the user database stays where it is.
        cfg.node.data_dir = data_dir;
        let users = install_authentication(&cfg, &self.broker, self.control.user_db()).await?;
        if let Some(db) = users {
            self.control.set_user_db(db);
        }
        Ok(())
    }

    /// Reads every ssl/wss listener's certificate files again (SIGHUP). New handshakes use
    /// them; established connections are not touched. A listener whose files are bad keeps
    /// its previous certificate.
    pub fn reload_certificates(&self) {
        for t in &self.tls {
            match t.reload() {
                Ok(()) => {
                    self.broker
                        .metrics()
                        .inc(ferry_broker::BrokerMetric::CertReloaded);
                    tracing::info!(certfile = %t.options().certfile.display(), "certificate reloaded");
                }
                Err(e) => {
                    self.broker
                        .metrics()
                        .inc(ferry_broker::BrokerMetric::CertReloadFailed);
                    tracing::warn!("certificate reload failed, keeping the previous one: {e}");
                }
            }
        }
    }

    /// Stops accepting, closes every connection (DISCONNECT 0x8B to MQTT 5 clients) and
    /// waits for the listeners to drain.
    pub async fn stop(mut self) {
        self.control.set_draining();
        // Sources first: their in-flight records can still be acknowledged by subscribers.
        self.control.stop_sources().await;
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        // Connections are closed and their sessions detached: write the MQTT state.
        if let Some((stop, task)) = self.state_sync.take() {
            stop.cancel();
            let _ = task.await;
            let broker = self.broker.clone();
            match tokio::task::spawn_blocking(move || broker.close_store()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("writing the MQTT state at stop failed: {e}"),
                Err(e) => tracing::error!("writing the MQTT state at stop failed: {e}"),
            }
        }
        // Connections are closed: nothing new reaches Kafka; let in-flight records land.
        self.control
            .stop_kafka(std::time::Duration::from_secs(5))
            .await;
    }
}

/// Every configured listener, TCP first, with its TLS files loaded.
fn endpoints(cfg: &Config) -> anyhow::Result<Vec<(ferry_server::Endpoint, SocketAddr)>> {
    use ferry_server::Endpoint;
    let l = &cfg.listeners;
    let mut out = Vec::new();
    for (name, c) in &l.tcp {
        out.push((Endpoint::tcp(name, c), c.bind));
    }
    for (name, c) in &l.ssl {
        let ep = Endpoint::ssl(name, c).map_err(|e| anyhow::anyhow!("listeners.ssl.{name}.{e}"))?;
        out.push((ep, c.bind));
    }
    for (name, c) in &l.ws {
        out.push((Endpoint::ws(name, c), c.bind));
    }
    for (name, c) in &l.wss {
        let ep = Endpoint::wss(name, c).map_err(|e| anyhow::anyhow!("listeners.wss.{name}.{e}"))?;
        out.push((ep, c.bind));
    }
    Ok(out)
}
