//! `systole search`: the hardware-aware compression search (`systole_compress::policy_search`)
//! on one architecture or every point of a sweep space; this writes what it found.

use crate::model::{samples, Calibration};
use miette::{miette, IntoDiagnostic, Result, WrapErr};
use std::path::Path;
use systole_compress::policy_search::{require_float, search as run_search};
use systole_compress::search::Point;
use systole_core::mapping::Objective;
use systole_core::ArchConfig;
use systole_onnx as onnx;

/// What `systole search` was asked.
pub struct SearchArgs<'a> {
    /// Float ONNX model.
    pub model: &'a Path,
    /// The architectures searched (one, or a space's points).
    pub archs: Vec<ArchConfig>,
    /// Latency or energy.
    pub objective: Objective,
    /// Minimum output SQNR of the chosen policy, dB.
    pub budget_db: f64,
    /// Output directory.
    pub out: &'a Path,
}

/// Runs the search and writes `search.json`, `report.md`, `policy.toml` and the fronts'
/// charts into `out`.
pub fn search(args: &SearchArgs, calibration: &Calibration) -> Result<()> {
    let path = args.model;
    let model = onnx::read(path)?;
    require_float(&model, path)?;
    let samples = samples(&model, calibration)?;
    let found = run_search(&model, path, &args.archs, args.objective, args.budget_db, &samples, |m| eprintln!("{m}"))?;

    std::fs::create_dir_all(args.out).into_diagnostic().wrap_err_with(|| format!("cannot create {}", args.out.display()))?;
    if let Some(text) = found.policy_toml() {
        write(&args.out.join("policy.toml"), &text)?;
    }
    write(&args.out.join("search.json"), &serde_json::to_string_pretty(&found.json()).into_diagnostic()?)?;
    let cost = |p: &Point| p.cost(args.objective);
    for (i, r) in found.archs.iter().enumerate() {
        let front: Vec<(f64, f64)> = r.front.iter().map(|p| (p.predicted_db, cost(p))).collect();
        let uniform: Vec<(String, f64, f64)> =
            r.uniform.iter().map(|u| (u.label.replace("uniform ", ""), u.measured_db, cost(&u.point))).collect();
        let title =
            format!("{}: compression policies on {}", path.file_stem().map_or("model".into(), |s| s.to_string_lossy()), r.arch.name);
        let unit = match args.objective {
            Objective::Latency => "cycles (accelerator layers)",
            Objective::Energy => "energy (uJ, accelerator layers)",
        };
        let chart = systole_reports::SearchFront {
            title: &title,
            cost: unit,
            front: &front,
            uniform: &uniform,
            chosen: r.chosen.as_ref().map(|c| (c.measured_db, cost(&c.point))),
        };
        let name = if found.archs.len() == 1 { "pareto".to_string() } else { format!("pareto-{i}") };
        systole_reports::write_search_chart(&chart, args.out, &name).map_err(|e| miette!("{e}"))?;
    }
    let page = found.markdown();
    write(&args.out.join("report.md"), &page)?;
    print!("{page}");
    if found.best().is_none() {
        return Err(miette!(
            help = "lower --budget-db; the dense int8 policy's SQNR is the most any policy reaches",
            "no policy meets {} dB on any architecture",
            args.budget_db
        ));
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))
}
