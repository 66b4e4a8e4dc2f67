//! `dxmesh keygen`, `init`, `run`, `status` and `peers`: making a node,
//! running it, and asking it how it is.

use super::call::runtime;
use crate::admin::{self, AdminRequest, AdminResponse, StatusInfo};
use crate::base::clock::shutdown_signal;
use crate::base::config::{
    self, Config, ConsoleConfig, LogConfig, LogFormatSetting, NetworkConfig, TrustConfig,
};
use crate::base::keyfile;
use crate::base::logging::{self, LogFormat};
use crate::daemon;
use anyhow::{Context, bail};
use clap::Args;
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::Role;
use std::path::{Path, PathBuf};

/// `dxmesh init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Node directory to create.
    #[arg(long)]
    pub dir: PathBuf,
    /// Department (`public_security`, `civil_affairs`, `health`,
    /// `disabled_federation`, `hr`, `comparator`, `ministry`, or another name).
    #[arg(long)]
    pub department: String,
    /// Role: provider, comparator or ministry.
    #[arg(long)]
    pub role: Role,
    /// The provincial trust anchor's public key (PEM).
    #[arg(long)]
    pub anchor: PathBuf,
    /// Name shown to people (default: the department).
    #[arg(long)]
    pub name: Option<String>,
    /// Listen multiaddr (repeatable).
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/7400")]
    pub listen: Vec<String>,
    /// Bootstrap peer multiaddr with /p2p/<PeerId> (repeatable).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// `host:port` of the HTTPS operator console (port 0: any free port;
    /// `none`: no console). A self-signed certificate for it is made in
    /// `console/`.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub console: String,
    /// MiB of memory the node's large jobs keep to (`[limits] memory_mib`;
    /// beyond it they sort on disk). The default suits a node with 8 GiB.
    #[arg(long, default_value_t = config::DEFAULT_MEMORY_MIB)]
    pub memory_mib: u64,
}

/// Runs the daemon in `dir` (logs as `log_format`, else as the node's config says).
pub fn run(dir: PathBuf, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let format = match log_format {
        Some(f) => f,
        None => match Config::load(&dir) {
            Ok(c) if c.log.format == LogFormatSetting::Json => LogFormat::Json,
            _ => LogFormat::Human,
        },
    };
    logging::init(format);
    runtime()?.block_on(async {
        daemon::run(&dir, shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    })
}

/// `dxmesh status`.
pub fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let status = fetch_status(dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render_status(&status));
    }
    Ok(())
}

/// `dxmesh peers`.
pub fn peers(dir: &Path) -> anyhow::Result<()> {
    let status = fetch_status(dir)?;
    print!("{}", render_peers(&status));
    Ok(())
}

/// `dxmesh keygen`.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    let rng = ring::rand::SystemRandom::new();
    let identity = Identity::generate(&rng).context("generating an identity")?;
    keyfile::write_identity(out, &identity)?;
    println!("wrote {}", out.display());
    println!("peer_id: {}", identity.peer_id());
    print!("{}", identity.public().to_pem());
    Ok(())
}

/// `dxmesh init`.
pub fn init(args: InitArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    if args.memory_mib < config::MIN_MEMORY_MIB {
        bail!(
            "--memory-mib {}: less than the {} MiB a node needs",
            args.memory_mib,
            config::MIN_MEMORY_MIB
        );
    }
    for f in [config::CONFIG_FILE, config::KEY_FILE] {
        if dir.join(f).exists() {
            bail!(
                "{}: already exists; refusing to overwrite a node directory",
                dir.join(f).display()
            );
        }
    }
    let anchor_text = std::fs::read_to_string(&args.anchor).with_context(|| {
        format!(
            "{}: cannot read the anchor public key",
            args.anchor.display()
        )
    })?;
    PublicKey::from_pem(&anchor_text)
        .with_context(|| format!("{}: not an Ed25519 public key PEM", args.anchor.display()))?;
    if args.department.trim().is_empty() {
        bail!("--department must not be empty");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("{}: cannot restrict permissions", dir.display()))?;
    }
    let rng = ring::rand::SystemRandom::new();
    let identity = Identity::generate(&rng).context("generating an identity")?;
    keyfile::write_identity(&dir.join(config::KEY_FILE), &identity)?;
    keyfile::write_new_file(
        &dir.join(config::ANCHOR_FILE),
        anchor_text.as_bytes(),
        0o644,
    )?;
    let config = Config {
        display_name: args.name.clone().unwrap_or_else(|| args.department.clone()),
        department: args.department,
        role: args.role,
        data_dir: PathBuf::from("data"),
        network: NetworkConfig {
            listen: args.listen,
            bootstrap: args.bootstrap,
            peer_exchange_secs: 5,
            requests_per_sec: 50,
            request_burst: 200,
        },
        trust: TrustConfig {
            anchor_public_key: PathBuf::from(config::ANCHOR_FILE),
        },
        log: LogConfig::default(),
        key_custodians: Default::default(),
        schedule: Default::default(),
        console: (args.console != "none").then(|| ConsoleConfig::on(&args.console)),
        limits: config::LimitsConfig {
            memory_mib: args.memory_mib,
        },
    };
    if let Some(console) = &config.console {
        let host = console
            .listen
            .rsplit_once(':')
            .map_or(console.listen.as_str(), |(h, _)| h)
            .trim_matches(['[', ']']);
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if !names.iter().any(|n| n == host) && !host.is_empty() && host != "0.0.0.0" {
            names.push(host.to_string());
        }
        crate::console::tls::make_self_signed(
            &dir.join(&console.cert),
            &dir.join(&console.key),
            &names,
        )?;
    }
    config.write_new(dir)?;
    // Validate what we wrote exactly as `run` will read it.
    Config::load(dir)?;
    println!("created node directory {}", dir.display());
    println!("peer_id: {}", identity.peer_id());
    print!("{}", identity.public().to_pem());
    println!(
        "next: ask the trust anchor to add this PeerId to the roster, then `dxmesh roster install --dir {} ROSTER`",
        dir.display()
    );
    Ok(())
}

fn fetch_status(dir: &Path) -> anyhow::Result<StatusInfo> {
    let response = runtime()?.block_on(admin::call(dir, &AdminRequest::Status))?;
    match response {
        AdminResponse::Status(s) => Ok(*s),
        AdminResponse::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the node: {other:?}"),
    }
}

fn render_status(s: &StatusInfo) -> String {
    let mut out = String::new();
    out.push_str(&format!("peer id:     {}\n", s.peer_id));
    out.push_str(&format!("department:  {} ({})\n", s.department, s.role));
    out.push_str(&format!("name:        {}\n", s.display_name));
    out.push_str(&format!(
        "roster:      version {}{} ({})\n",
        s.roster_version,
        s.mesh
            .as_ref()
            .map(|m| format!(" of mesh {m}"))
            .unwrap_or_default(),
        s.self_admission
    ));
    out.push_str(&format!("uptime:      {}s\n", s.uptime_secs));
    if let Some(url) = &s.console_url {
        out.push_str(&format!("console:     {url}\n"));
    }
    out.push_str("listening:\n");
    for a in &s.listen_addresses {
        out.push_str(&format!("  {a}\n"));
    }
    out.push_str(&render_peers(s));
    if !s.epochs.is_empty() {
        out.push_str("current epochs:\n");
        for e in &s.epochs {
            out.push_str(&format!(
                "  {:<12} {:<8} {} {}\n",
                e.dataset,
                e.side,
                &e.agreement[..e.agreement.len().min(16)],
                e.epoch.line()
            ));
        }
    }
    out.push_str(&format!(
        "audit log:   {} entries, {} sealed in the latest checkpoint\n",
        s.audit.entries, s.audit.sealed
    ));
    for w in &s.audit.witnesses {
        out.push_str(&format!(
            "  witnessed by {:<20} up to {:<8} {}\n",
            w.department, w.cosigned, w.peer_id
        ));
    }
    if !s.refusals.is_empty() {
        out.push_str(&format!("recent refusals ({}):\n", s.refusals.len()));
        for r in &s.refusals {
            out.push_str(&format!(
                "  {} {} {} {}\n",
                r.at,
                r.peer_id.as_deref().unwrap_or("-"),
                r.remote.as_deref().unwrap_or("-"),
                r.reason
            ));
        }
    }
    out.push_str("public key:\n");
    out.push_str(&s.public_key_pem);
    out
}

fn render_peers(s: &StatusInfo) -> String {
    let mut out = format!("connected peers ({}):\n", s.connected.len());
    for p in &s.connected {
        out.push_str(&format!(
            "  {:<20} {:<10} {:<28} {}\n",
            p.department, p.role, p.display_name, p.peer_id
        ));
    }
    out
}
