//! `dxmesh demo` and `dxmesh synth`: a synthetic province, and a whole
//! cycle over it on a local mesh.

use crate::base::clock::now;
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;

/// `dxmesh demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Residents to generate.
    #[arg(long, default_value_t = 200_000)]
    pub residents: u64,
    /// Use department exports in this directory (canonical layout) instead.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "dxmesh-demo")]
    pub out: PathBuf,
    /// Reference date of the cycle (default today).
    #[arg(long)]
    pub ref_date: Option<String>,
    /// Home province code.
    #[arg(long, default_value = "44")]
    pub home_province: String,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run this comparison job file instead of deploy/jobs.toml. A result
    /// whose job the agreements do not name is refused by its provider:
    /// the demo goes on and prints the refusal code.
    #[arg(long)]
    pub jobs: Option<PathBuf>,
    /// Keep the mesh running after the cycle, until Ctrl-C, to look around
    /// in each node's operator console.
    #[arg(long)]
    pub serve: bool,
    /// Run this many consecutive cycles (months) on the same mesh: the
    /// mesh's shared clock moves one period each time, the departments
    /// import the next month's exports, and each cycle is compared with
    /// the one before (`cycle-<k>/`, with its change lists) and checked.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=24))]
    pub cycles: u32,
    /// MiB of memory each node's large jobs keep to (`[limits]
    /// memory_mib` in every node's config).
    #[arg(long, default_value_t = crate::base::config::DEFAULT_MEMORY_MIB)]
    pub memory_mib: u64,
}

/// `dxmesh synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Residents.
    #[arg(long)]
    pub residents: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Reference date (default today).
    #[arg(long)]
    pub ref_date: Option<String>,
    /// Home province code.
    #[arg(long, default_value = "44")]
    pub home_province: String,
    /// The cycle to write: 0 is the province at the reference date; cycle
    /// K is the same people K periods later with each period's deaths, new
    /// insurance and moves out (and its expected results).
    #[arg(long, default_value_t = 0)]
    pub cycle: u32,
    /// Days from one cycle to the next.
    #[arg(long, default_value_t = 30)]
    pub period_days: u32,
}

/// Runs `dxmesh demo`.
pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let DemoArgs {
        residents,
        input,
        out,
        ref_date,
        home_province,
        seed,
        jobs,
        serve,
        cycles,
        memory_mib,
    } = args;
    let reference = match ref_date {
        Some(d) => dxmesh_protocol::date::Date::parse(&d)?,
        None => now().date(),
    };
    let jobs = jobs
        .map(|p| {
            std::fs::read_to_string(&p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read the job file: {e}", p.display()))
        })
        .transpose()?;
    let verdict = super::demo::run(&super::demo::DemoOptions {
        residents,
        input,
        out,
        reference,
        home_province,
        seed,
        jobs,
        serve,
        cycles,
        memory_mib,
    })?;
    if verdict == Some(false) {
        bail!("the results differ from expected/");
    }
    Ok(())
}

/// Runs `dxmesh synth`.
pub fn synth(args: SynthArgs) -> anyhow::Result<()> {
    let SynthArgs {
        residents,
        out,
        seed,
        ref_date,
        home_province,
        cycle,
        period_days,
    } = args;
    let reference = match ref_date {
        Some(d) => dxmesh_protocol::date::Date::parse(&d)?,
        None => now().date(),
    };
    let t = std::time::Instant::now();
    let report = crate::sim::synth::synth(&crate::sim::synth::SynthOptions {
        residents,
        out: out.clone(),
        seed,
        reference,
        home_province,
        cycle,
        period_days,
    })?;
    println!(
        "wrote a province of {residents} residents to {} in {:.1}s: cycle {}, reference date {}, home province {}, seed {}",
        out.display(),
        t.elapsed().as_secs_f64(),
        report.cycle,
        report.reference,
        report.home_province,
        report.seed,
    );
    print!("{}", report_lines(&report, &out));
    Ok(())
}

/// What `synth` wrote, for a person: each export with its rows and the
/// rows generated with a fault, then the expected results.
fn report_lines(report: &crate::sim::synth::SynthReport, out: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "  {:<34} {:>12}  {:>9}",
        "export", "rows", "with a fault"
    );
    for (file, rows) in report
        .files
        .iter()
        .filter(|(f, _)| !f.starts_with("expected/"))
    {
        let faults: u64 = report.faults.get(file).map_or(0, |f| f.values().sum());
        let _ = writeln!(text, "  {file:<34} {rows:>12}  {faults:>9}");
    }
    let c = &report.counts;
    let _ = writeln!(text, "expected results (people, in expected/):");
    for (name, n, what) in [
        (
            "uninsured",
            c.uninsured,
            "registered, 16 or older, insured nowhere",
        ),
        (
            "deceased_insured",
            c.deceased_insured,
            "dead but still drawing a pension",
        ),
        (
            "disabled_uninsured",
            c.disabled_uninsured,
            "disabled and insured nowhere",
        ),
        (
            "name_conflicts",
            c.name_conflicts,
            "a different name in HR than in the registry",
        ),
        (
            "(other province)",
            c.removed_other_province,
            "uninsured here but insured in another province: the ministry index takes them off",
        ),
    ] {
        let _ = writeln!(text, "  {name:<20} {n:>10}  {what}");
    }
    let _ = writeln!(
        text,
        "every count, and every fault by kind: {}",
        out.join("expected/summary.json").display()
    );
    text
}
