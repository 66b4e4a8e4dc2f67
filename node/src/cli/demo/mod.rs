//! `dxmesh demo`: a whole province's cycle on a real local mesh of seven
//! node processes (public security, civil affairs, health, the disabled
//! persons' federation, HR/social security, the provincial comparator and
//! the ministry), driven exactly as operators would drive it: every step
//! is a `dxmesh` command run as a child process (see `deploy/local-mesh.sh`
//! for the same steps by hand). Every process it starts is stopped when it
//! ends, fails, or is interrupted.
//!
//! The steps run in order, each a function sharing the run's context
//! (`context.rs`): `setup.rs` (exports, trust, mesh, imports), `cycle.rs`
//! (agreements, publish, compare and the ministry upload) and `results.rs`
//! (quarantine reports, audit, the check against `expected/`, the
//! analysts' files, the report page and the closing summary), then
//! `consoles.rs` (an account on every node's operator console, and their
//! addresses); with `--cycles N`, `cycles.rs` runs the next months on the
//! same mesh (its shared clock moved a period each time), and
//! `figures.rs` prints and keeps each cycle's figures (`cycles.json`);
//! `process.rs` runs the commands and `options.rs` holds what the demo runs. With `--serve` the mesh keeps running until Ctrl-C.

mod consoles;
mod context;
mod cycle;
mod cycles;
mod figures;
mod options;
mod process;
mod results;
mod setup;

pub use options::DemoOptions;

use anyhow::{Context, bail};
use context::Cx;
use process::{Children, Demo};
use std::path::Path;

/// Runs the demo; returns whether the results matched `expected/` (None without one).
pub fn run(opts: &DemoOptions) -> anyhow::Result<Option<bool>> {
    let exe = std::env::current_exe().context("locating the dxmesh binary")?;
    prepare_out(&opts.out)?;
    let out = std::path::absolute(&opts.out)?;
    let demo = Demo {
        exe,
        out: out.clone(),
        children: Children::default(),
    };
    // Stop every child on Ctrl-C or SIGTERM too.
    let on_signal = demo.children.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(crate::base::clock::shutdown_signal());
            eprintln!("\ninterrupted: stopping every node");
            on_signal.stop_all();
            std::process::exit(130);
        }
    });
    let result = run_steps(&demo, opts);
    demo.children.stop_all();
    result
}

fn prepare_out(out: &Path) -> anyhow::Result<()> {
    let marker = out.join(".dxmesh-demo");
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        if !marker.exists() {
            bail!(
                "{}: exists and is not a dxmesh demo directory; choose another --out",
                out.display()
            );
        }
        std::fs::remove_dir_all(out)
            .with_context(|| format!("{}: cannot clear the previous demo", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(
        &marker,
        "created by dxmesh demo; removed and recreated by the next run\n",
    )?;
    Ok(())
}

fn run_steps(demo: &Demo, opts: &DemoOptions) -> anyhow::Result<Option<bool>> {
    if opts.cycles > 1 && opts.input.is_some() {
        bail!("--cycles needs the generated province (its next months); not --input");
    }
    demo.set_clock(0)?;
    let cx = Cx::new(demo, opts);
    let input = setup::exports(&cx)?;
    let peers = setup::trust(&cx)?;
    setup::start_mesh(&cx)?;
    let mut fig = figures::Figures::new(1);
    fig.time("import", || setup::import(&cx, &input))?;
    let (terms, mut agreements) = cycle::agreements(&cx, &peers)?;
    fig.time("publish", || cycle::publish(&cx))?;
    let (compared, upload) = cycle::compare(&cx, &peers, &terms, &mut fig)?;
    agreements.insert("upload", upload.thread().to_string());
    results::quarantine(&cx)?;
    let audit_ok = results::audit(&cx)?;
    let expected_dir = input.join("expected");
    let verdict = results::check(&cx, &expected_dir);
    fig.finish(&cx, verdict)?;
    results::analyst(&cx)?;
    results::write_report(&cx, &agreements, verdict, &[])?;
    results::print_summary(&cx, &compared, &expected_dir, verdict, audit_ok)?;
    let verdict = match cycles::run(&cx, &terms, &upload)? {
        Some((later, summaries)) => {
            let verdict = verdict.map(|first| first && later);
            // The report again, with the trend over every cycle.
            results::write_report(&cx, &agreements, verdict, &summaries)?;
            verdict
        }
        None => verdict,
    };
    consoles::open(&cx)?;
    if !opts.serve {
        println!("(the mesh stops now; `dxmesh demo --serve` keeps it running to look around)");
    }
    if opts.serve {
        println!("serving the mesh until Ctrl-C");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(verdict)
}
