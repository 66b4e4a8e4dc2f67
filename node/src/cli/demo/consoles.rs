//! After the cycle: an administrator account `demo` on every node's
//! operator console (one random password for all, in `console.txt`), and
//! each console's address, so that a newcomer can look around.

use super::context::Cx;
use super::options::NODES;
use anyhow::Context;

/// Makes the accounts and prints the consoles' addresses.
pub(super) fn open(cx: &Cx<'_>) -> anyhow::Result<()> {
    let (demo, out) = (cx.demo, cx.out);
    let mut secret = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| anyhow::anyhow!("no randomness for the console password"))?;
    let password = hex::encode(secret);
    let file = out.join("console-password.txt");
    crate::base::fsutil::write_atomic(&file, format!("{password}\n").as_bytes(), 0o600)?;
    let mut lines = vec![format!(
        "operator consoles (account `demo`, administrator; password {password}, also in console-password.txt):"
    )];
    for (name, _, _) in NODES {
        let dir = demo.node_dir(name);
        demo.dx(&[
            "console",
            "user",
            "add",
            "--dir",
            &dir,
            "--user",
            "demo",
            "--role",
            "administrator",
            "--password-file",
            file.to_str().context("path")?,
        ])?;
        let url = demo.status(name)?["console_url"]
            .as_str()
            .unwrap_or("(no console)")
            .to_string();
        lines.push(format!("  {name:<20} {url}"));
    }
    let text = lines.join("\n") + "\n";
    std::fs::write(out.join("console.txt"), &text)?;
    print!("{text}");
    Ok(())
}
