//! Importing an export as a new generation of a dataset: the reader,
//! normaliser and writer threads of the pipeline, the report, and the
//! atomic switch of `CURRENT` once every file is synced, and the durable
//! receipt each import leaves for the daemon to log; listing datasets.

use super::mapping;
use super::model::{
    CURRENT_FILE, DATASETS_DIR, Format, ImportError, ImportOptions, ImportReport, QUARANTINE_FILE,
    RECORDS_FILE, REPORT_FILE, SHRINK_LIMIT_PERCENT, generation_dir, io_err, read_current,
    validate_name,
};
use super::normalise;
use super::reader;
use super::records;
use super::source;
use super::writer;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The reports of every dataset with a completed import, by name.
pub fn list(data_dir: &Path) -> Result<Vec<ImportReport>, ImportError> {
    let root = data_dir.join(DATASETS_DIR);
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&root)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&root))?;
        if let Some(name) = entry.file_name().to_str()
            && validate_name(name).is_ok()
            && entry.path().is_dir()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut reports = Vec::new();
    for name in names {
        match reader::read_current_report(data_dir, &name) {
            Ok(report) => reports.push(report),
            Err(ImportError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(reports)
}

fn create_dir_private(path: &Path) -> Result<(), ImportError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))
}

fn sync_dir(path: &Path) -> Result<(), ImportError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path))
}

fn create_private_file(path: &Path) -> Result<File, ImportError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))
}

/// Holds the dataset's advisory lock while alive.
struct DatasetLock(#[allow(dead_code)] File);

fn lock_dataset(dataset_dir: &Path, name: &str) -> Result<DatasetLock, ImportError> {
    let (file, path) = super::model::lock_file(dataset_dir)?;
    match file.try_lock() {
        Ok(()) => Ok(DatasetLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(ImportError::Busy(name.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// Imports a department export as a new generation of dataset `opts.dataset`
/// under `data_dir`, and returns its report (also kept as `report.json`).
///
/// On any error nothing of this import becomes visible: the previous
/// generation stays current and readable.
pub fn import(data_dir: &Path, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    validate_name(&opts.dataset)?;
    let format = match opts.format {
        Some(f) => f,
        None => Format::from_path(&opts.file).ok_or_else(|| ImportError::UnknownFormat {
            file: opts.file.clone(),
        })?,
    };
    let mapping = match &opts.mapping {
        Some(path) => mapping::Mapping::load(path)?,
        None => mapping::Mapping::default(),
    };
    let (source, header) = source::Source::open(opts, format)?;
    let plan = normalise::Plan::new(&header, &mapping, &opts.file)?;

    let root = data_dir.join(DATASETS_DIR);
    let ds_dir = root.join(&opts.dataset);
    create_dir_private(&ds_dir)?;
    sync_dir(&root)?;
    sync_dir(data_dir)?;
    let _lock = lock_dataset(&ds_dir, &opts.dataset)?;
    // A killed import's half-written `CURRENT` (we hold the lock).
    crate::base::fsutil::remove_leftovers(&ds_dir, &[crate::base::fsutil::ATOMIC_TMP_PREFIX], 0);
    let previous = read_current(&ds_dir)?;
    let generation = previous
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| ImportError::Corrupt {
            file: ds_dir.join(CURRENT_FILE),
            problem: "generation number overflow".into(),
        })?;
    let gen_dir = generation_dir(&ds_dir, generation);
    if gen_dir.exists() {
        // Left over by an import that crashed before publishing (we hold the lock).
        std::fs::remove_dir_all(&gen_dir).map_err(io_err(&gen_dir))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(&gen_dir)
        .map_err(io_err(&gen_dir))?;

    let report = match write_generation(&gen_dir, source, &plan, opts, format, generation) {
        Ok(report) => report,
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(&gen_dir) {
                tracing::warn!(dir = %gen_dir.display(), error = %rm, "cannot remove failed import");
            }
            return Err(e);
        }
    };
    if let Err(e) = refuse_shrinking(&ds_dir, previous, &report, opts) {
        if let Err(rm) = std::fs::remove_dir_all(&gen_dir) {
            tracing::warn!(dir = %gen_dir.display(), error = %rm, "cannot remove refused import");
        }
        return Err(e);
    }
    sync_dir(&gen_dir)?;
    sync_dir(&ds_dir)?;
    let current = ds_dir.join(CURRENT_FILE);
    crate::base::fsutil::write_atomic(&current, format!("{generation}\n").as_bytes(), 0o600)
        .map_err(io_err(&current))?;
    write_receipt(&ds_dir, &report)?;
    let mut keep = super::pins::pinned(&ds_dir);
    keep.insert(generation);
    remove_old_generations(&ds_dir, &keep);
    Ok(report)
}

/// Refuses to replace the current generation (`previous`) with one of no
/// rows or under [`SHRINK_LIMIT_PERCENT`] of its rows, unless the
/// operator accepts it: a truncated export must not wipe a dataset.
fn refuse_shrinking(
    ds_dir: &Path,
    previous: Option<u64>,
    report: &ImportReport,
    opts: &ImportOptions,
) -> Result<(), ImportError> {
    let Some(generation) = previous.filter(|_| !opts.accept_shrink) else {
        return Ok(());
    };
    let current = match reader::read_report(&generation_dir(ds_dir, generation)) {
        Ok(r) => r.rows_kept,
        // A generation whose report is gone cannot be compared: the import
        // goes on, as a first one would.
        Err(_) => return Ok(()),
    };
    let rows = report.rows_kept;
    if current > 0 && (rows == 0 || rows * 100 < current * SHRINK_LIMIT_PERCENT) {
        return Err(ImportError::Shrinking {
            file: opts.file.clone(),
            dataset: opts.dataset.clone(),
            rows,
            current,
            generation,
        });
    }
    Ok(())
}

/// The folder of a dataset's import receipts, which the daemon consumes.
pub const RECEIPTS_DIR: &str = "imports";

/// Leaves a durable receipt of the import (its report, as
/// `imports/<generation>.json`) for the daemon to log and remove: every
/// generation is logged, however many imports run between two of its
/// ticks or while it is down. Written after `CURRENT`: a crash between the
/// two leaves the current generation, which the daemon logs too.
fn write_receipt(ds_dir: &Path, report: &ImportReport) -> Result<(), ImportError> {
    let dir = ds_dir.join(RECEIPTS_DIR);
    create_dir_private(&dir)?;
    let path = dir.join(format!("{:010}.json", report.generation));
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| ImportError::Corrupt {
        file: path.clone(),
        problem: e.to_string(),
    })?;
    crate::base::fsutil::write_atomic(&path, &bytes, 0o600).map_err(io_err(&path))
}

/// The import receipts waiting under `data_dir`, oldest first per dataset
/// (each with its file, to remove once logged). A receipt that cannot be
/// read is skipped with a warning and left for an operator.
pub fn receipts(data_dir: &Path) -> Vec<(PathBuf, ImportReport)> {
    let mut out = Vec::new();
    let Ok(datasets) = std::fs::read_dir(data_dir.join(DATASETS_DIR)) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = datasets.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for ds in dirs {
        let Ok(files) = std::fs::read_dir(ds.join(RECEIPTS_DIR)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            match std::fs::read(&f)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<ImportReport>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => out.push((f, r)),
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "an import receipt cannot be read; left in place")
                }
            }
        }
    }
    out
}

/// Removes every generation directory but those in `keep` (the current
/// one and those feeds pin; best effort: a leftover costs disk space,
/// never correctness, since readers follow `CURRENT` or a pin).
fn remove_old_generations(ds_dir: &Path, keep: &std::collections::BTreeSet<u64>) {
    let Ok(entries) = std::fs::read_dir(ds_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("gen-"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if !keep.contains(&n)
            && let Err(e) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove old generation");
        }
    }
}

/// Batches of parsed rows travel from the reader thread to the normaliser.
const BATCH_ROWS: usize = 4096;
/// Batches in flight between the reader thread and the normaliser.
const BATCHES_IN_FLIGHT: usize = 16;

fn write_generation(
    gen_dir: &Path,
    source: source::Source,
    plan: &normalise::Plan,
    opts: &ImportOptions,
    format: Format,
    generation: u64,
) -> Result<ImportReport, ImportError> {
    let records_path = gen_dir.join(RECORDS_FILE);
    let records_file = create_private_file(&records_path)?;
    let quarantine_path = gen_dir.join(QUARANTINE_FILE);
    let quarantine_file = create_private_file(&quarantine_path)?;
    let file_len = std::fs::metadata(&opts.file)
        .map_err(io_err(&opts.file))?
        .len();
    // The records take about the export's size (more than that for a
    // compressed workbook: checked again by the writes themselves).
    super::extsort::ensure_space(gen_dir, file_len, "importing this export")?;
    let quarantine = normalise::Quarantine::new(
        BufWriter::with_capacity(64 * 1024, quarantine_file),
        &quarantine_path,
        opts.file.display().to_string(),
    )?;
    let mut normaliser =
        normalise::Normaliser::new(plan, opts.reference, &opts.file, file_len, quarantine);
    // A workbook's date column holds Excel serial dates and date cells with times.
    normaliser.workbook_dates = format.is_workbook();

    let (stats, kept, summary) = std::thread::scope(|s| {
        let (batch_tx, batch_rx) = mpsc::sync_channel::<source::Batch>(BATCHES_IN_FLIGHT);
        let (spare_batch_tx, spare_batch_rx) = mpsc::channel::<source::Batch>();
        let (block_tx, block_rx) = mpsc::sync_channel::<records::Block>(4);
        let (spare_block_tx, spare_block_rx) = mpsc::channel::<records::Block>();
        let reader = std::thread::Builder::new()
            .name("dataset-read".into())
            .spawn_scoped(s, move || source.run(batch_tx, spare_batch_rx, BATCH_ROWS))
            .map_err(|e| ImportError::Internal(format!("cannot start reader thread: {e}")))?;
        let writer_path = records_path.clone();
        let dedup = super::dedup::Dedup::new(gen_dir, opts.memory, file_len);
        let writer = std::thread::Builder::new()
            .name("dataset-write".into())
            .spawn_scoped(s, move || {
                writer::write_blocks(records_file, &writer_path, block_rx, spare_block_tx, dedup)
            })
            .map_err(|e| ImportError::Internal(format!("cannot start writer thread: {e}")))?;
        let outcome = normaliser.run(batch_rx, spare_batch_tx, block_tx, spare_block_rx);
        let read = reader
            .join()
            .map_err(|_| ImportError::Internal("reader thread panicked".into()))?;
        let written = writer
            .join()
            .map_err(|_| ImportError::Internal("writer thread panicked".into()))?;
        // Errors in file order: the normaliser saw earlier rows than the
        // reader's error; the writer fails only on I/O.
        match outcome {
            Err(normalise::Stop::Failed(e)) => return Err(e),
            Err(normalise::Stop::WriterGone) => {
                written?;
                return Err(ImportError::Internal("writer thread stopped".into()));
            }
            Ok(()) => {}
        }
        let summary = read?;
        let kept = written?;
        Ok((normaliser.finish()?, kept, summary))
    })?;

    let imported_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report = ImportReport {
        dataset: opts.dataset.clone(),
        file: opts.file.display().to_string(),
        format,
        columns: plan.canonical_names(),
        source_columns: plan.columns.iter().map(|c| c.source.clone()).collect(),
        id_column: plan.id_column().to_string(),
        rows_read: stats.rows_read,
        rows_kept: kept.rows_kept,
        rows_quarantined: stats.rows_quarantined,
        fixes: stats.fixes,
        quarantined: stats.quarantined,
        duplicate_rows: kept.duplicate_rows,
        distinct_ids: kept.distinct_ids,
        ids_with_several_rows: kept.ids_with_several_rows,
        source_sha256: summary.sha256,
        encoding: summary.encoding,
        delimiter: summary
            .delimiter
            .map(|d| super::model::delimiter_name(d).to_string()),
        sheet: summary.sheet,
        imported_at,
        generation,
    };
    let report_path = gen_dir.join(REPORT_FILE);
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| ImportError::Internal(format!("cannot encode report: {e}")))?;
    let mut file = create_private_file(&report_path)?;
    file.write_all(&json)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io_err(&report_path))?;
    Ok(report)
}
