//! ferry: the binary. Owns the CLI, config loading, the tracing subscriber, signals, and
//! wiring the crates together. Libraries never own these.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ferry::{Config, Gateway, config};

mod admins;
mod tools;
mod users;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "MQTT broker with lossless streaming into Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve {
        /// Config file (TOML). Without it the defaults apply (see `ferry config example`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Config file tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Rule tools.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Simulate devices publishing telemetry (TeslaMate-style vehicles, temp/hum sensors, homes).
    Simulate(tools::SimulateArgs),
    /// Publish one message (like mosquitto_pub).
    Pub(tools::PubArgs),
    /// Subscribe and print messages (like mosquitto_sub).
    Sub(tools::SubArgs),
    /// Load generator: pub, sub, conn, kafka.
    Bench {
        #[command(subcommand)]
        command: tools::BenchCommand,
    },
    /// Manage the HTTP API's users in the data dir (while Ferry is stopped).
    Admins(admins::AdminsArgs),
    /// Manage the MQTT clients' built-in user database in the data dir.
    Users(users::UsersArgs),
    /// Kafka tools.
    Kafka {
        #[command(subcommand)]
        command: KafkaCommand,
    },
}

#[derive(Subcommand)]
enum KafkaCommand {
    /// Print the records of a topic as they arrive: partition, offset, key, value.
    Tail {
        /// "host:port[,host:port]".
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
        #[arg(long)]
        topic: String,
        /// Start from the oldest record instead of new ones.
        #[arg(long)]
        from_beginning: bool,
    },
}

#[derive(Subcommand)]
enum RuleCommand {
    /// Run a rule on a test input without a broker; prints each output as one JSON line.
    Test {
        /// The rule SQL.
        #[arg(long)]
        sql: String,
        /// The input, as EMQX's rule-test API takes it: {"topic", "payload" (a string),
        /// "clientid", "username", "qos", "event_type", "peerhost", "timestamp",
        /// "pub_props", ...}. Missing fields get defaults.
        #[arg(long, default_value = "{}")]
        context: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the documented default config.
    Example,
    /// Check a config file and report every problem.
    Check { file: PathBuf },
    /// Print the effective config as TOML: the file (or the defaults) plus the changes made
    /// through the API, which are kept in the data dir (`DATA/config/overlay.json`).
    Show {
        /// Config file (TOML); its `[node] data_dir` locates the API changes.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Simulate(a) => client_tool(tools::simulate(a)),
        Command::Pub(a) => client_tool(tools::publish(a)),
        Command::Sub(a) => client_tool(tools::subscribe(a)),
        Command::Bench { command } => client_tool(tools::bench(command)),
        Command::Admins(a) => admins::run(a),
        Command::Users(a) => users::run(a),
        Command::Kafka {
            command:
                KafkaCommand::Tail {
                    bootstrap,
                    topic,
                    from_beginning,
                },
        } => kafka_tail(&bootstrap, &topic, from_beginning),
        Command::Rule {
            command: RuleCommand::Test { sql, context },
        } => rule_test(&sql, &context),
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => Config::load(&file)
            .map(|_| println!("{}: ok", file.display()))
            .map_err(Into::into),
        Command::Config {
            command: ConfigCommand::Show { config },
        } => show_config(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client-side tool.
fn client_tool(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    // One thread: no cross-thread wake-ups, so the tool costs less CPU per message.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(f)
}

fn kafka_tail(bootstrap: &str, topic: &str, from_beginning: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let stdout = std::io::stdout();
    ferry_kafka::tail::tail(
        bootstrap,
        topic,
        from_beginning,
        None,
        |r| {
            let key = r
                .key
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let mut out = stdout.lock();
            let _ = writeln!(
                out,
                "partition={} offset={} key={} {}",
                r.partition,
                r.offset,
                key,
                String::from_utf8_lossy(&r.value)
            );
        },
        || false,
    )
    .map_err(|e| anyhow::anyhow!("kafka tail: {e}"))
}

fn rule_test(sql: &str, context: &str) -> anyhow::Result<()> {
    let outs = match ferry_rules::test_rule(sql, context) {
        // Like a false WHERE: no output, exit 0 (the API answers 412 for the same case).
        Err(ferry_rules::TestError::NotMatched(why)) => {
            eprintln!("ferry: no match: {why}");
            return Ok(());
        }
        r => r?,
    };
    if outs.is_empty() {
        eprintln!("ferry: no output (the WHERE or INCASE condition was not met)");
    }
    for out in outs {
        println!("{}", ferry_rules::Value::Map(out).to_json());
    }
    Ok(())
}

fn show_config(path: Option<PathBuf>) -> anyhow::Result<()> {
    let base = match &path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let effective = ferry::overlay::effective(&base).map_err(|e| anyhow::anyhow!(e))?;
    let problems = effective.validate();
    anyhow::ensure!(
        problems.is_empty(),
        "the effective config is invalid:\n  {}",
        problems.join("\n  ")
    );
    print!(
        "{}",
        toml::to_string(&effective).context("printing the config")?
    );
    Ok(())
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match &path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.log.level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        // Before the listening lines: a SIGHUP sent once they are printed must not kill us.
        let hup = hangup();
        let gateway = Gateway::start(&cfg).await?;
        for (name, addr) in &gateway.listeners {
            tracing::info!("listener {name} on {addr}");
            // Machine-readable for scripts and tests that bind port 0.
            say(&format!("ferry: listening on {addr} ({name})"));
        }
        if let Some(addr) = gateway.api {
            tracing::info!("API on http://{addr}");
            say(&format!("ferry: api on {addr}"));
        }
        wait_for_signal(&gateway, hup, path.as_deref()).await;
        tracing::info!("shutting down");
        // The same registry feeds the API, Prometheus and this log.
        let registry = gateway.broker.registry().clone();
        gateway.stop().await;
        for (name, a) in registry.actions() {
            tracing::info!(action = %name, m = ?a.json(), "kafka action metrics");
        }
        for (name, s) in registry.sources() {
            tracing::info!(source = %name, m = ?s.json(), "kafka source metrics");
        }
        tracing::info!(m = ?registry.json(), "stopped");
        for (name, r) in registry.rules() {
            tracing::info!(rule = %name, m = ?r.json(), "rule metrics");
        }
        Ok(())
    })
}

/// SIGHUP: reads the config file again and applies its `[authorization]` rules and its
/// `[authentication]` chain, each on its own: a section that cannot be applied keeps the one
/// in force, and the error (naming the key) is logged. A file that does not load changes
/// nothing.
async fn reload_access(path: &std::path::Path, gateway: &Gateway) {
    let cfg = match Config::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!("SIGHUP: config not reloaded: {e:#}");
            return;
        }
    };
    match ferry::reload_authorization(&gateway.broker, &cfg) {
        Ok(()) => tracing::info!("SIGHUP: [authorization] reloaded from {}", path.display()),
        Err(e) => tracing::error!(
            "SIGHUP: [authorization] not reloaded, keeping the rules in force: {e:#}"
        ),
    }
    match gateway.reload_authentication(&cfg).await {
        Ok(()) => tracing::info!("SIGHUP: [authentication] reloaded from {}", path.display()),
        Err(e) => tracing::error!(
            "SIGHUP: [authentication] not reloaded, keeping the chain in force: {e:#}"
        ),
    }
}

/// A line on stdout for scripts; a reader that went away (a closed pipe) is no error.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

fn hangup() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).ok()
    }
}

/// Waits for SIGINT or SIGTERM; SIGHUP reloads the ssl/wss listeners' certificates,
/// `[authorization]` and `[authentication]`.
async fn wait_for_signal(gateway: &Gateway, hup: Hangup, config: Option<&std::path::Path>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = hup;
        let hangup = async |hup: &mut Option<tokio::signal::unix::Signal>| match hup {
            Some(h) => h.recv().await,
            None => std::future::pending().await,
        };
        match signal(SignalKind::terminate()) {
            Ok(mut term) => loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return,
                    _ = term.recv() => return,
                    _ = hangup(&mut hup) => {
                        tracing::info!("SIGHUP: reloading certificates");
                        gateway.reload_certificates();
                        if let Some(path) = config {
                            reload_access(path, gateway).await;
                        }
                    }
                }
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (gateway, hup, config);
        let _ = tokio::signal::ctrl_c().await;
    }
}
