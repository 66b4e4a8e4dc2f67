//! `dxmesh roster`: the trust anchor's side of the roster (drafts, signing,
//! showing, verifying) and installing signed versions on a node.

use super::call::runtime;
use crate::admin::{self, AdminRequest, AdminResponse};
use crate::base::clock::now;
use crate::base::config;
use crate::base::keyfile;
use crate::trust::roster_file::{self, Draft, DraftMember};
use anyhow::{Context, bail};
use clap::Subcommand;
use dxmesh_protocol::codec;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{self, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use std::path::PathBuf;

/// `dxmesh roster ...`.
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Start a draft: version 1 of a new mesh, or the version after a signed roster.
    New {
        /// Mesh name (for a first version).
        #[arg(long, required_unless_present = "from")]
        mesh: Option<String>,
        /// The current signed roster, to draft its successor.
        #[arg(long, conflicts_with = "mesh")]
        from: Option<PathBuf>,
        /// Draft file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add (or replace) a member in a draft.
    AddMember {
        /// Draft file.
        draft: PathBuf,
        /// The node's PeerId (as `dxmesh init` printed it).
        #[arg(long)]
        peer_id: String,
        /// Department.
        #[arg(long)]
        department: String,
        /// Role.
        #[arg(long)]
        role: Role,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Listen multiaddr (repeatable).
        #[arg(long)]
        address: Vec<String>,
        /// Start of validity (RFC 3339 or date; default now).
        #[arg(long)]
        valid_from: Option<String>,
        /// End of validity (RFC 3339 or date; default one year after the start).
        #[arg(long)]
        valid_until: Option<String>,
    },
    /// Revoke a member in a draft (permanent).
    Revoke {
        /// Draft file.
        draft: PathBuf,
        /// The PeerId to revoke.
        #[arg(long)]
        peer_id: String,
    },
    /// Sign a draft with the trust anchor's key.
    Sign {
        /// Draft file.
        draft: PathBuf,
        /// The anchor's identity file.
        #[arg(long)]
        anchor_key: PathBuf,
        /// Signed roster file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a draft or signed roster as a table.
    Show {
        /// Draft (.toml) or signed roster file.
        file: PathBuf,
    },
    /// Verify a signed roster against the anchor key (and its predecessor).
    Verify {
        /// Signed roster file.
        file: PathBuf,
        /// The anchor's public key (PEM).
        #[arg(long)]
        anchor: PathBuf,
        /// The previous signed version, to check the chain.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Install signed roster versions (oldest first) on a node; a running node
    /// accepts them and spreads them to its peers.
    Install {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Signed roster files, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs `dxmesh roster ...`.
pub fn run(cmd: RosterCommand) -> anyhow::Result<()> {
    match cmd {
        RosterCommand::New { mesh, from, out } => new_draft(mesh, from, out),
        RosterCommand::AddMember {
            draft,
            peer_id,
            department,
            role,
            name,
            address,
            valid_from,
            valid_until,
        } => {
            let window = (valid_from, valid_until);
            add_member(draft, peer_id, department, role, name, address, window)
        }
        RosterCommand::Revoke { draft, peer_id } => revoke(draft, peer_id),
        RosterCommand::Sign {
            draft,
            anchor_key,
            out,
        } => sign(draft, anchor_key, out),
        RosterCommand::Show { file } => show(file),
        RosterCommand::Verify {
            file,
            anchor,
            previous,
        } => verify(file, anchor, previous),
        RosterCommand::Install { dir, files } => install(dir, files),
    }
}

/// `dxmesh roster new`: a first draft, or the draft of the version after a signed roster.
fn new_draft(mesh: Option<String>, from: Option<PathBuf>, out: PathBuf) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{}: already exists; refusing to overwrite", out.display());
    }
    let draft = match (mesh, from) {
        (Some(mesh), None) => Draft {
            mesh,
            version: 1,
            previous: None,
            revoked: vec![],
            members: vec![],
        },
        (None, Some(from)) => {
            let signed = roster_file::load_signed(&from)?;
            let roster: Roster = codec::decode(signed.body())
                .with_context(|| format!("{}: roster body does not decode", from.display()))?;
            Draft::next_after(&signed, &roster)
        }
        _ => bail!("give either --mesh (first version) or --from (next version)"),
    };
    draft.save(&out)?;
    println!(
        "wrote draft of version {} to {}",
        draft.version,
        out.display()
    );
    Ok(())
}

/// `dxmesh roster add-member`: adds (or replaces) a member in a draft.
fn add_member(
    draft: PathBuf,
    peer_id: String,
    department: String,
    role: Role,
    name: Option<String>,
    address: Vec<String>,
    (valid_from, valid_until): (Option<String>, Option<String>),
) -> anyhow::Result<()> {
    let mut d = Draft::load(&draft)?;
    let key = roster_file::key_of_peer_id(&peer_id)?;
    let from = match valid_from {
        Some(s) => Timestamp::parse(&s)?,
        None => now(),
    };
    let until = match valid_until {
        Some(s) => Timestamp::parse(&s)?,
        None => from.plus(365 * 86_400),
    };
    if d.revoked
        .iter()
        .any(|r| roster_file::key_of_peer_id(r).ok() == Some(key))
    {
        bail!(
            "{peer_id} is revoked; a revoked identity can never be a member again (use a new key)"
        );
    }
    d.members
        .retain(|m| roster_file::key_of_peer_id(&m.peer_id).ok() != Some(key));
    d.members.push(DraftMember {
        peer_id: key.peer_id().to_string(),
        display_name: name.unwrap_or_else(|| department.clone()),
        department,
        role,
        addresses: address,
        valid_from: from.to_string(),
        valid_until: until.to_string(),
    });
    d.save(&draft)?;
    println!("added {} to {}", key.peer_id(), draft.display());
    Ok(())
}

/// `dxmesh roster revoke`: removes a member from a draft and revokes its key for good.
fn revoke(draft: PathBuf, peer_id: String) -> anyhow::Result<()> {
    let mut d = Draft::load(&draft)?;
    let key = roster_file::key_of_peer_id(&peer_id)?;
    d.members
        .retain(|m| roster_file::key_of_peer_id(&m.peer_id).ok() != Some(key));
    if !d
        .revoked
        .iter()
        .any(|r| roster_file::key_of_peer_id(r).ok() == Some(key))
    {
        d.revoked.push(key.peer_id().to_string());
    }
    d.save(&draft)?;
    println!("revoked {} in {}", key.peer_id(), draft.display());
    Ok(())
}

/// `dxmesh roster sign`: the trust anchor signs a draft into a roster version.
fn sign(draft: PathBuf, anchor_key: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    let d = Draft::load(&draft)?;
    let anchor = keyfile::read_identity(&anchor_key)?;
    let roster = d.to_roster(&draft, now())?;
    let signed = Signed::sign(&anchor, &roster).context("encoding the roster")?;
    let bytes = codec::encode(&signed).context("encoding the signed roster")?;
    keyfile::write_new_file(&out, &bytes, 0o644)?;
    println!(
        "signed roster version {} ({} members, {} revoked) -> {}",
        roster.version,
        roster.members.len(),
        roster.revoked.len(),
        out.display()
    );
    println!("digest: {}", dxmesh_protocol::hex(&signed.digest()));
    Ok(())
}

/// `dxmesh roster show`: prints a draft or a signed roster.
fn show(file: PathBuf) -> anyhow::Result<()> {
    let is_draft = file.extension().is_some_and(|e| e == "toml");
    if is_draft {
        let d = Draft::load(&file)?;
        let r = d.to_roster(&file, Timestamp(0))?;
        println!("DRAFT (unsigned)");
        print!("{}", roster_file::render(&r, None, None, now()));
    } else {
        let s = roster_file::load_signed(&file)?;
        let r: Roster = codec::decode(s.body())
            .with_context(|| format!("{}: roster body does not decode", file.display()))?;
        print!(
            "{}",
            roster_file::render(&r, Some(s.signer()), Some(&s.digest()), now())
        );
    }
    Ok(())
}

/// `dxmesh roster verify`: checks a signed roster against the anchor (and its predecessor).
fn verify(file: PathBuf, anchor: PathBuf, previous: Option<PathBuf>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&anchor)
        .with_context(|| format!("{}: cannot read", anchor.display()))?;
    let anchor_key = PublicKey::from_pem(&text)
        .with_context(|| format!("{}: not a public key PEM", anchor.display()))?;
    let s = roster_file::load_signed(&file)?;
    let prev = previous.map(|p| roster_file::load_signed(&p)).transpose()?;
    let r = roster::accept_chain(prev.as_ref(), std::slice::from_ref(&s), &anchor_key)
        .with_context(|| format!("{}: refused", file.display()))?;
    println!(
        "OK: {} is roster version {} of mesh {}, signed by the trust anchor{}",
        file.display(),
        r.version,
        r.mesh,
        if prev.is_some() {
            ", and chains to the previous version"
        } else {
            ""
        }
    );
    Ok(())
}

/// `dxmesh roster install`: hands signed versions to the running node, or installs them offline.
fn install(dir: PathBuf, files: Vec<PathBuf>) -> anyhow::Result<()> {
    let mut chain = Vec::new();
    for f in &files {
        chain.push(roster_file::load_signed(f)?);
    }
    let socket = dir.join(config::ADMIN_SOCKET);
    if socket.exists() {
        let rt = runtime()?;
        let req = AdminRequest::RosterInstall {
            chain_hex: chain
                .iter()
                .map(|s| codec::encode(s).map(hex::encode))
                .collect::<Result<_, _>>()?,
        };
        match rt.block_on(admin::call(&dir, &req)) {
            Ok(AdminResponse::RosterInstalled { version }) => {
                println!("the running node holds roster version {version}");
                return Ok(());
            }
            Ok(AdminResponse::Error { message }) => {
                bail!("the node refused the roster: {message}")
            }
            Ok(other) => bail!("unexpected answer from the node: {other:?}"),
            Err(admin::AdminError::NotRunning { .. }) => {} // stale socket: install offline
            Err(e) => return Err(e.into()),
        }
    }
    let version = crate::trust::install::install_offline(&dir, chain)?;
    println!("installed; the node holds roster version {version}");
    Ok(())
}
