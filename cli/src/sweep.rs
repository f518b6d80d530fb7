//! `systole sweep`: evaluate a space on a workload or model across all cores, streaming
//! resumable results.

use indicatif::{ProgressBar, ProgressStyle};
use miette::{miette, IntoDiagnostic, Result, WrapErr};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use systole_mappings::energy::Process;
use systole_sweep::{results, Shard, Space, Target};

fn params(r: &results::Record) -> String {
    serde_json::to_string(&r.params).unwrap_or_default()
}

/// The results file of a sweep (or of one shard) in `out`.
pub fn results_path(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out.join(format!("results-{}-of-{}.jsonl", s.index, s.count)),
        None => out.join("results.jsonl"),
    }
}

/// Runs (or resumes) a sweep; returns the results file.
pub fn run(
    space_path: &Path,
    target: &Target,
    out: &Path,
    shard: Option<Shard>,
    objective: systole_core::mapping::Objective,
    synth: Option<&dyn systole_sweep::synth::Synthesizer>,
) -> Result<PathBuf> {
    let space = Space::from_file(space_path)?;
    std::fs::create_dir_all(out).into_diagnostic().wrap_err_with(|| format!("cannot create {}", out.display()))?;
    let path = results_path(out, shard);
    let mut file = results::lock(&path)?;
    let contents = results::read(&path)?;
    let (done, valid) = (contents.records, contents.valid_len);
    if let Some(r) = done.first().filter(|r| r.space != space.digest()) {
        return Err(miette!(
            help = "use another --out folder, or delete the file to start over",
            "{}: holds point {} of another space (digest {}, this space {})",
            path.display(),
            r.id,
            r.space,
            space.digest()
        ));
    }
    if let Some(r) = done.first().filter(|r| r.objective != objective) {
        return Err(miette!(
            help = "use another --out folder for another objective",
            "{}: point {} was mapped for {:?}, this run maps for {objective:?}",
            path.display(),
            r.id,
            r.objective
        ));
    }
    if let Some(r) = done.first().filter(|r| r.target != target.name) {
        return Err(miette!(
            help = "use another --out folder for another workload or model",
            "{}: point {} was evaluated on `{}`, this run on `{}`",
            path.display(),
            r.id,
            r.target,
            target.name
        ));
    }
    let ids_in_space = match shard {
        Some(s) => space.shard(s),
        None => space.order(),
    };
    let in_space: std::collections::HashSet<u64> = ids_in_space.iter().copied().collect();
    if let Some((line, r)) = done.iter().enumerate().find(|(_, r)| !in_space.contains(&r.id)) {
        return Err(miette!(
            help = "the file is another shard's or another sample's; use another --out folder",
            "{}: point {} (record {}) is not among this run's points",
            path.display(),
            r.id,
            line + 1
        ));
    }
    let done_ids: std::collections::HashSet<u64> = done.iter().map(|r| r.id).collect();
    let ids = ids_in_space;
    let todo: Vec<u64> = ids.iter().copied().filter(|id| !done_ids.contains(id)).collect();
    eprintln!(
        "sweep {}: {} points in the space, {} in this run{}, {} already in {}",
        space.name,
        space.size(),
        ids.len(),
        shard.map(|s| format!(" (shard {}/{})", s.index, s.count)).unwrap_or_default(),
        ids.len() - todo.len(),
        path.display()
    );
    results::append(&mut file, valid).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))?;
    let bar = ProgressBar::new(todo.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} points  {per_sec}  ETA {eta}").expect("a valid template"));
    let process = Process::horowitz_45nm();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<results::Record>();
    let new = std::thread::scope(|s| -> Result<Vec<results::Record>> {
        let writer = s.spawn(|| -> Result<Vec<results::Record>> {
            let mut new = vec![];
            for rec in rx {
                results::write(&mut file, &rec).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))?;
                new.push(rec);
                bar.inc(1);
            }
            Ok(new)
        });
        // Points run on the current rayon pool (--jobs); the writer thread appends.
        todo.par_iter().for_each_with(tx, |tx, &id| {
            let _ = tx.send(systole_sweep::evaluate(&space, id, target, &process, objective, synth));
        });
        writer.join().expect("the writer thread does not panic")
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let written = new.len();
    let all: Vec<results::Record> = done.into_iter().chain(new).collect();
    let ok: Vec<_> = all.iter().filter(|r| r.status == "ok").collect();
    eprintln!(
        "{written} points in {secs:.1} s ({:.0} points/min); {} ok, {} failed",
        written as f64 / secs.max(1e-9) * 60.0,
        ok.len(),
        all.len() - ok.len()
    );
    let show = |label: &str, best: Option<&&results::Record>| {
        if let Some(best) = best {
            eprintln!(
                "{label}: point {} {}: {:.3} ms, {:.1} uJ, {:.2} mm^2",
                best.id,
                params(best),
                best.latency_ms,
                best.energy_uj,
                best.area_mm2
            );
        }
    };
    show("fastest", ok.iter().min_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms)));
    show("least energy", ok.iter().min_by(|a, b| a.energy_uj.total_cmp(&b.energy_uj)));
    Ok(path)
}

/// `systole bench --space`: evaluates every point of the space on `target` (the latency
/// objective, no results file), each repetition from a cold start, on one core and on all
/// cores; prints the best time and points per second.
pub fn bench(space_path: &Path, target: &Target, repeat: usize) -> Result<()> {
    let space = Space::from_file(space_path)?;
    let ids = space.order();
    let process = Process::horowitz_45nm();
    let objective = systole_core::mapping::Objective::Latency;
    println!(
        "sweep bench: space `{}` ({} points) on `{}` ({} layers), best of {repeat}",
        space.name,
        ids.len(),
        target.name,
        target.layers.len()
    );
    let cores = rayon::current_num_threads();
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().into_diagnostic()?;
        let (secs, ok) = crate::run::best_of(repeat, || {
            let cold = target.cold();
            let records: Vec<results::Record> =
                pool.install(|| ids.par_iter().map(|&id| systole_sweep::evaluate(&space, id, &cold, &process, objective, None)).collect());
            Ok(records.iter().filter(|r| r.status == "ok").count())
        })?;
        println!(
            "{threads} core{}: {secs:.3} s for {} points ({ok} ok) = {:.1} points/s = {:.0} points/min",
            if threads == 1 { "" } else { "s" },
            ids.len(),
            ids.len() as f64 / secs,
            ids.len() as f64 / secs * 60.0
        );
        if cores == 1 {
            break;
        }
    }
    Ok(())
}
