//! The processes of the demo: the node daemons it starts ([`Children`],
//! stopped on every exit path), and [`Demo`], which runs `dxmesh` commands
//! as child processes, waits for conditions and starts nodes; plus the two
//! text helpers the steps use on command output and config files.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The peak resident memory (VmHWM, KiB) of process `pid`; 0 if gone.
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|x| x.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `cmd` to its end like `Command::output`, watching its peak
/// resident memory (KiB) every 20 ms while it runs.
pub(super) fn output_with_peak(cmd: &mut Command) -> std::io::Result<(std::process::Output, u64)> {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut peak = 0;
    let status = loop {
        peak = peak.max(peak_kib(child.id()));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((
        std::process::Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        },
        peak,
    ))
}

/// Child processes to stop, shared with the signal handler.
#[derive(Clone, Default)]
pub(super) struct Children(Arc<Mutex<Vec<Child>>>);

impl Children {
    pub(super) fn add(&self, c: Child) {
        if let Ok(mut v) = self.0.lock() {
            v.push(c);
        }
    }

    /// Peak resident memory (VmHWM, KiB) of each child, in start order.
    pub(super) fn peaks(&self) -> Vec<u64> {
        let Ok(v) = self.0.lock() else { return vec![] };
        v.iter().map(|c| peak_kib(c.id())).collect()
    }
    pub(super) fn stop_all(&self) {
        let Ok(mut v) = self.0.lock() else { return };
        for c in v.iter_mut() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in v.iter_mut() {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        v.clear();
    }
}

/// The running demo: the `dxmesh` binary, the output directory (every
/// command runs in it) and the node processes started so far.
pub(super) struct Demo {
    pub(super) exe: PathBuf,
    pub(super) out: PathBuf,
    pub(super) children: Children,
}

/// The mesh's shared clock file in the output directory (see
/// [`crate::base::clock`]): every command and node of the demo runs with
/// it, and the demo moves it from one cycle to the next.
pub(super) const CLOCK: &str = "clock";

/// The nodes stop with the demo however it ends (an error, a panic
/// unwinding, the end of its steps).
impl Drop for Demo {
    fn drop(&mut self) {
        self.children.stop_all();
    }
}

impl Demo {
    pub(super) fn dx(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.exe)
            .args(args)
            .current_dir(&self.out)
            .env("RUST_LOG", "warn")
            .env(crate::base::clock::CLOCK_FILE_ENV, self.out.join(CLOCK))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running dxmesh {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "dxmesh {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sets the mesh's shared clock `days` ahead of the system's, and waits
    /// the second every process takes to read it again.
    pub(super) fn set_clock(&self, days: i64) -> anyhow::Result<()> {
        crate::base::fsutil::write_atomic(
            &self.out.join(CLOCK),
            format!("{}\n", days * 86_400).as_bytes(),
            0o600,
        )?;
        std::thread::sleep(Duration::from_millis(1_500));
        Ok(())
    }

    pub(super) fn node_dir(&self, name: &str) -> String {
        format!("nodes/{name}")
    }

    pub(super) fn status(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let text = self.dx(&["status", "--json", "--dir", &self.node_dir(name)])?;
        Ok(serde_json::from_str(&text)?)
    }

    pub(super) fn wait<T>(
        &self,
        what: &str,
        secs: u64,
        mut f: impl FnMut() -> Option<T>,
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return Ok(v);
            }
            if start.elapsed() > Duration::from_secs(secs) {
                bail!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(super) fn start(&self, name: &str) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.out.join(format!("nodes/{name}/node.log")))?;
        let child = Command::new(&self.exe)
            .args(["run", "--dir", &self.node_dir(name)])
            .current_dir(&self.out)
            .env("RUST_LOG", "info")
            .env(crate::base::clock::CLOCK_FILE_ENV, self.out.join(CLOCK))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting a node")?;
        self.children.add(child);
        self.wait(&format!("{name} to start"), 30, || {
            self.status(name).ok().filter(|s| {
                s["listen_addresses"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
        })?;
        Ok(())
    }
}

pub(super) fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}: "))
            .map(|v| v.trim().to_string())
    })
}

pub(super) fn edit(path: &Path, from: &str, to: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    std::fs::write(path, text.replacen(from, to, 1))?;
    Ok(())
}
