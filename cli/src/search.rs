//! `systole search`: the hardware-aware compression search (see `systole_compress::search`) on one
//! architecture or every point of a sweep space, checked with real compression runs.

use crate::model::{samples, Calibration};
use miette::{miette, IntoDiagnostic, Result, WrapErr};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;
use systole_compress::prune::{self as compress, Policy, Pruning};
use systole_compress::search::{cheapest_within, pareto, uniform, Candidate, Costs, Point};
use systole_core::layer::Layer;
use systole_core::mapping::Objective;
use systole_core::ArchConfig;
use systole_onnx::{self as onnx, ptq};

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

/// One policy checked with a real compression run.
#[derive(serde::Serialize)]
struct Checked {
    label: String,
    point: Point,
    /// Output SQNR of the compressed model against the float one, dB (lowest output).
    measured_db: f64,
}

/// The search on one architecture.
#[derive(serde::Serialize)]
struct ArchResult {
    arch: ArchConfig,
    costs: Costs,
    front: Vec<Point>,
    uniform: Vec<Checked>,
    /// Per non-dense uniform policy: the searched policy at its measured SQNR.
    at_uniform_accuracy: Vec<(String, Option<Checked>)>,
    chosen: Option<Checked>,
}

/// Runs the search and writes `search.json`, `report.md` and `policy.toml` into `out`.
pub fn search(args: &SearchArgs, calibration: &Calibration) -> Result<()> {
    let path = args.model;
    let model = onnx::read(path)?;
    if !ptq::is_float(&model) {
        return Err(miette!(help = "search compresses the float model", "{}: the model is already quantized", path.display()));
    }
    let samples = samples(&model, calibration)?;
    let candidates = Candidate::all();
    let spec: Vec<(Pruning, Option<u8>, u8)> = candidates.iter().map(|c| (c.pruning, Some(c.bits), c.act_bits)).collect();
    eprintln!("sensitivity: {} candidates per layer, {} calibration input(s)", candidates.len(), samples.len());
    let sens = compress::sensitivity(&model, path, &spec, &samples)?;
    let net = onnx::import(&ptq::quantize(&model, path, &samples)?, path)?;
    let by_name: HashMap<&str, &Layer> = net.layers().map(|(_, l)| (l.name.as_str(), l)).collect();
    let layers: Vec<Option<Layer>> = sens.layers.iter().map(|n| by_name.get(n.as_str()).map(|l| (*l).clone())).collect();

    let mut measured = HashMap::new();
    let mut results = vec![];
    for arch in &args.archs {
        eprintln!("costs on {}: {} layers x {} candidates", arch.name, layers.len(), candidates.len());
        let costs = Costs::measure(arch, &layers, &sens.int4_inputs, &candidates, args.objective)?;
        let front = pareto(&costs, &sens.ratio, args.objective, 400);
        let mut checker = Checker {
            costs: &costs,
            ratio: &sens.ratio,
            objective: args.objective,
            model: &model,
            path,
            layers: &sens.layers,
            int4_inputs: &sens.int4_inputs,
            candidates: &candidates,
            samples: &samples,
            measured: std::mem::take(&mut measured),
        };
        let mut uniforms = vec![];
        for (c, cand) in candidates.iter().enumerate() {
            uniforms.push(checker.check(format!("uniform {}", cand.label()), &uniform(c, &costs, &sens.ratio))?);
        }
        let mut at = vec![];
        for u in uniforms.iter().skip(1) {
            at.push((u.label.clone(), checker.meet(&front, u.measured_db, &format!("searched at {}", u.label))?));
        }
        let chosen = checker.meet(&front, args.budget_db, "chosen")?;
        measured = checker.measured;
        results.push(ArchResult { arch: arch.clone(), costs, front, uniform: uniforms, at_uniform_accuracy: at, chosen });
    }

    std::fs::create_dir_all(args.out).into_diagnostic().wrap_err_with(|| format!("cannot create {}", args.out.display()))?;
    let cost = |p: &Point| p.cost(args.objective);
    let best =
        results.iter().filter_map(|r| r.chosen.as_ref().map(|c| (r, c))).min_by(|a, b| cost(&a.1.point).total_cmp(&cost(&b.1.point)));
    if let Some((r, c)) = best {
        let text = policy_toml(&sens.layers, &sens.int4_inputs, &candidates, &c.point.choice, &r.arch.name);
        write(&args.out.join("policy.toml"), &text)?;
    }
    let json = serde_json::json!({
        "model": path.display().to_string(),
        "objective": args.objective,
        "budget_db": args.budget_db,
        "candidates": candidates,
        "layers": sens.layers,
        "sensitivity": sens.ratio,
        "archs": results,
    });
    write(&args.out.join("search.json"), &serde_json::to_string_pretty(&json).into_diagnostic()?)?;
    for (i, r) in results.iter().enumerate() {
        let cost = |p: &Point| p.cost(args.objective);
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
        let name = if results.len() == 1 { "pareto".to_string() } else { format!("pareto-{i}") };
        systole_reports::write_search_chart(&chart, args.out, &name).map_err(|e| miette!("{e}"))?;
    }
    let page = report(args, &candidates, &sens.layers, &results);
    write(&args.out.join("report.md"), &page)?;
    print!("{page}");
    if best.is_none() {
        return Err(miette!(
            help = "lower --budget-db; the dense int8 policy's SQNR is the most any policy reaches",
            "no policy meets {} dB on any architecture",
            args.budget_db
        ));
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Measured single-layer moves tried after the bisection along the front.
const REFINE_MOVES: usize = 12;

/// Measures policies with real compression runs, each once.
struct Checker<'a> {
    costs: &'a Costs,
    ratio: &'a [Vec<f64>],
    objective: Objective,
    model: &'a onnx::OnnxModel,
    path: &'a Path,
    layers: &'a [String],
    int4_inputs: &'a [bool],
    candidates: &'a [Candidate],
    samples: &'a [ptq::Sample],
    measured: HashMap<Vec<usize>, f64>,
}

impl Checker<'_> {
    /// `point` with its measured SQNR (the lowest over the graph outputs).
    fn check(&mut self, label: String, point: &Point) -> Result<Checked> {
        let db = match self.measured.get(&point.choice) {
            Some(&db) => db,
            None => {
                let policy = policy(self.layers, self.int4_inputs, self.candidates, &point.choice);
                let (_, report) = compress::compress(self.model, self.path, &policy, self.samples)?;
                let db = report.outputs.iter().map(|o| o.1).fold(f64::INFINITY, f64::min);
                self.measured.insert(point.choice.clone(), db);
                db
            }
        };
        Ok(Checked { label, point: point.clone(), measured_db: db })
    }

    /// The cheapest point of `front` (most accurate first) that meets `budget` when
    /// measured: a bisection along the front, whose measured SQNR falls as its cost does,
    /// started from the cheapest point predicted to meet the budget.
    fn meet(&mut self, front: &[Point], budget: f64, label: &str) -> Result<Option<Checked>> {
        let mut ok = match self.check(label.to_string(), &front[0])? {
            c if c.measured_db >= budget => c,
            _ => return Ok(None),
        };
        let (mut lo, mut hi) = (0, front.len());
        let mut probe = cheapest_within(front, budget).unwrap_or(0).max(1);
        while lo + 1 < hi {
            let c = self.check(label.to_string(), &front[probe])?;
            if c.measured_db >= budget {
                lo = probe;
                ok = c;
            } else {
                hi = probe;
            }
            probe = (lo + hi) / 2;
        }
        // The front is built from predictions; a few measured single-layer moves to cheaper
        // candidates, best predicted saving per noise first, recover what they missed.
        let mut moves: Vec<(f64, usize, usize)> = vec![];
        for (l, &c0) in ok.point.choice.iter().enumerate() {
            for c in 0..self.candidates.len() {
                let saving = self.costs.cost_of(self.objective, l, c0) - self.costs.cost_of(self.objective, l, c);
                if saving > 0.0 {
                    moves.push((saving / (self.ratio[l][c] - self.ratio[l][c0]).max(1e-300), l, c));
                }
            }
        }
        moves.sort_by(|a, b| b.0.total_cmp(&a.0));
        for &(_, l, c) in moves.iter().take(REFINE_MOVES) {
            if ok.point.choice[l] == c
                || self.costs.cost_of(self.objective, l, c) >= self.costs.cost_of(self.objective, l, ok.point.choice[l])
            {
                continue;
            }
            let mut choice = ok.point.choice.clone();
            choice[l] = c;
            let c = self.check(label.to_string(), &Point::of(choice, self.costs, self.ratio))?;
            if c.measured_db >= budget {
                ok = c;
            }
        }
        Ok(Some(ok))
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))
}

/// The compression policy of `choice`.
/// The compression policy of `choice`; int4 activations only where `int4_inputs` allows.
fn policy(layers: &[String], int4_inputs: &[bool], candidates: &[Candidate], choice: &[usize]) -> Policy {
    let mut p = Policy::default();
    for ((name, &c), &int4) in layers.iter().zip(choice).zip(int4_inputs) {
        p.layers.insert(name.clone(), candidates[c].pruning);
        p.layer_bits.insert(name.clone(), candidates[c].bits);
        p.layer_act_bits.insert(name.clone(), candidates[c].act_bits_for(int4));
    }
    p
}

/// `choice` as a `systole compress --policy` file.
fn policy_toml(layers: &[String], int4_inputs: &[bool], candidates: &[Candidate], choice: &[usize], arch: &str) -> String {
    let mut s = format!("# Found by `systole search` for {arch}; use with `systole compress --policy`.\n");
    for ((name, &c), &int4) in layers.iter().zip(choice).zip(int4_inputs) {
        let cand = candidates[c];
        let act_bits = cand.act_bits_for(int4);
        let _ = write!(s, "\n[layers.\"{name}\"]\nprune = \"{}\"\nbits = {}\nact_bits = {act_bits}\n", cand.pruning, cand.bits);
    }
    s
}

fn report(args: &SearchArgs, candidates: &[Candidate], layers: &[String], results: &[ArchResult]) -> String {
    let unit = match args.objective {
        Objective::Latency => "cycles",
        Objective::Energy => "uJ",
    };
    let cost = |p: &Point| match args.objective {
        Objective::Latency => format!("{}", p.cycles),
        Objective::Energy => format!("{:.1}", p.energy_uj),
    };
    let mut s = format!(
        "# Compression search: {}\n\nObjective: {} of the accelerator layers ({unit}), from the simulator. Accuracy proxy: output SQNR \
         against the float model (measured by compressing the model; the front's prediction adds the layers' noise ratios). \
         Budget: {} dB.\n",
        args.model.display(),
        match args.objective {
            Objective::Latency => "latency",
            Objective::Energy => "energy",
        },
        args.budget_db
    );
    for r in results {
        let _ =
            writeln!(s, "\n## {}\n\n| policy | {unit} | energy (uJ) | predicted dB | measured dB |\n|---|---|---|---|---|", r.arch.name);
        let row = |s: &mut String, c: &Checked| {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} |",
                c.label,
                cost(&c.point),
                c.point.energy_uj,
                c.point.predicted_db,
                c.measured_db
            );
        };
        for u in &r.uniform {
            row(&mut s, u);
        }
        if let Some(c) = &r.chosen {
            row(&mut s, c);
        }
        let _ = writeln!(s, "\nAt each uniform policy's measured SQNR, the searched policy:\n\n| uniform | its {unit} | searched {unit} | saving | measured dB |\n|---|---|---|---|---|");
        for (label, found) in &r.at_uniform_accuracy {
            let u = r.uniform.iter().find(|u| &u.label == label).expect("a uniform row");
            match found {
                Some(c) => {
                    let (a, b) = (u.point.cost(args.objective), c.point.cost(args.objective));
                    let _ = writeln!(
                        s,
                        "| {label} | {} | {} | {:.1}% | {:.1} |",
                        cost(&u.point),
                        cost(&c.point),
                        100.0 * (a - b) / a.max(f64::MIN_POSITIVE),
                        c.measured_db
                    );
                }
                None => {
                    let _ = writeln!(s, "| {label} | {} | none found | | |", cost(&u.point));
                }
            }
        }
        if let Some(c) = &r.chosen {
            let _ = writeln!(
                s,
                "\nChosen policy per layer, against dense int8 on the same instance:\n\n| layer | choice | cycles before | cycles after | energy before (uJ) | energy after (uJ) |\n|---|---|---|---|---|---|"
            );
            for (l, (name, &k)) in layers.iter().zip(&c.point.choice).enumerate() {
                let (cy, en) = (&r.costs.cycles[l], &r.costs.energy_uj[l]);
                let _ = writeln!(s, "| {name} | {} | {} | {} | {:.2} | {:.2} |", candidates[k].label(), cy[0], cy[k], en[0], en[k]);
            }
        }
        let _ = writeln!(
            s,
            "\nPareto front ({} points): {unit} vs predicted dB: {}",
            r.front.len(),
            r.front.iter().map(|p| format!("{} @ {:.1}", cost(p), p.predicted_db)).collect::<Vec<_>>().join(", ")
        );
    }
    s
}
