//! `systole search` end to end: per-layer sensitivity, then on each architecture the
//! simulator's costs, the Pareto front, the uniform policies and the searched ones checked
//! by real compression runs ([`crate::refine`]); the outcome as JSON, a Markdown report and
//! the chosen policy as a `systole compress --policy` file.

use crate::prune::{sensitivity, Pruning};
use crate::refine::{Checked, Checker};
use crate::search::{pareto, uniform, Candidate, Costs, Point};
use crate::CompressError;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;
use systole_core::layer::Layer;
use systole_core::mapping::Objective;
use systole_core::ArchConfig;
use systole_onnx::{ptq, OnnxModel};

/// The search on one architecture.
#[derive(Debug, serde::Serialize)]
pub struct ArchResult {
    /// The architecture.
    pub arch: ArchConfig,
    /// Per layer and candidate, the simulator's costs.
    pub costs: Costs,
    /// The predicted Pareto front, most accurate first.
    pub front: Vec<Point>,
    /// Every uniform policy, measured.
    pub uniform: Vec<Checked>,
    /// Per non-dense uniform policy: the searched policy at its measured SQNR.
    pub at_uniform_accuracy: Vec<(String, Option<Checked>)>,
    /// The cheapest policy that meets the budget when measured.
    pub chosen: Option<Checked>,
}

/// What the search found.
#[derive(Debug)]
pub struct SearchOutcome {
    /// The float model's file.
    pub model: String,
    /// Latency or energy.
    pub objective: Objective,
    /// Minimum output SQNR of the chosen policy, dB.
    pub budget_db: f64,
    /// The candidates per layer.
    pub candidates: Vec<Candidate>,
    /// The compressible layers' names.
    pub layers: Vec<String>,
    /// Per layer, whether its input may be int4.
    pub int4_inputs: Vec<bool>,
    /// Per layer and candidate, the noise ratio of the accuracy proxy.
    pub sensitivity: Vec<Vec<f64>>,
    /// Per architecture, in the order given.
    pub archs: Vec<ArchResult>,
}

/// The float model `model` (read from `path`) searched on `archs`: per layer the cheapest
/// candidates whose output SQNR on `samples` stays at least `budget_db`. `progress` is told
/// each stage.
pub fn search(
    model: &OnnxModel,
    path: &Path,
    archs: &[ArchConfig],
    objective: Objective,
    budget_db: f64,
    samples: &[ptq::Sample],
    mut progress: impl FnMut(String),
) -> Result<SearchOutcome, CompressError> {
    require_float(model, path)?;
    let candidates = Candidate::all();
    let spec: Vec<(Pruning, Option<u8>, u8)> = candidates.iter().map(|c| (c.pruning, Some(c.bits), c.act_bits)).collect();
    progress(format!("sensitivity: {} candidates per layer, {} calibration input(s)", candidates.len(), samples.len()));
    let sens = sensitivity(model, path, &spec, samples)?;
    let net = systole_onnx::import(&ptq::quantize(model, path, samples)?, path)?;
    let by_name: HashMap<&str, &Layer> = net.layers().map(|(_, l)| (l.name.as_str(), l)).collect();
    let layers: Vec<Option<Layer>> = sens.layers.iter().map(|n| by_name.get(n.as_str()).map(|l| (*l).clone())).collect();

    let mut measured = HashMap::new();
    let mut results = vec![];
    for arch in archs {
        progress(format!("costs on {}: {} layers x {} candidates", arch.name, layers.len(), candidates.len()));
        let costs = Costs::measure(arch, &layers, &sens.int4_inputs, &candidates, objective)?;
        let front = pareto(&costs, &sens.ratio, objective, 400);
        let mut checker = Checker {
            costs: &costs,
            ratio: &sens.ratio,
            objective,
            model,
            path,
            layers: &sens.layers,
            int4_inputs: &sens.int4_inputs,
            candidates: &candidates,
            samples,
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
        let chosen = checker.meet(&front, budget_db, "chosen")?;
        measured = checker.measured;
        results.push(ArchResult { arch: arch.clone(), costs, front, uniform: uniforms, at_uniform_accuracy: at, chosen });
    }
    Ok(SearchOutcome {
        model: path.display().to_string(),
        objective,
        budget_db,
        candidates,
        layers: sens.layers,
        int4_inputs: sens.int4_inputs,
        sensitivity: sens.ratio,
        archs: results,
    })
}

/// An error unless `model` (read from `path`) is a float model.
pub fn require_float(model: &OnnxModel, path: &Path) -> Result<(), CompressError> {
    if ptq::is_float(model) {
        Ok(())
    } else {
        Err(CompressError::NotFloat { path: path.into() })
    }
}

impl SearchOutcome {
    /// The architecture whose chosen policy is cheapest, with that policy.
    pub fn best(&self) -> Option<(&ArchResult, &Checked)> {
        let cost = |p: &Point| p.cost(self.objective);
        self.archs.iter().filter_map(|r| r.chosen.as_ref().map(|c| (r, c))).min_by(|a, b| cost(&a.1.point).total_cmp(&cost(&b.1.point)))
    }

    /// The best chosen policy as a `systole compress --policy` file.
    pub fn policy_toml(&self) -> Option<String> {
        let (r, c) = self.best()?;
        let mut s = format!("# Found by `systole search` for {}; use with `systole compress --policy`.\n", r.arch.name);
        for ((name, &k), &int4) in self.layers.iter().zip(&c.point.choice).zip(&self.int4_inputs) {
            let cand = self.candidates[k];
            let act_bits = cand.act_bits_for(int4);
            let _ = write!(s, "\n[layers.\"{name}\"]\nprune = \"{}\"\nbits = {}\nact_bits = {act_bits}\n", cand.pruning, cand.bits);
        }
        Some(s)
    }

    /// The whole outcome (`search.json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.model,
            "objective": self.objective,
            "budget_db": self.budget_db,
            "candidates": self.candidates,
            "layers": self.layers,
            "sensitivity": self.sensitivity,
            "archs": self.archs,
        })
    }

    /// The report (`report.md`): per architecture the uniform and chosen policies, the
    /// searched policy at each uniform one's accuracy, the chosen policy per layer and the
    /// front.
    pub fn markdown(&self) -> String {
        let objective = self.objective;
        let unit = match objective {
            Objective::Latency => "cycles",
            Objective::Energy => "uJ",
        };
        let cost = |p: &Point| match objective {
            Objective::Latency => format!("{}", p.cycles),
            Objective::Energy => format!("{:.1}", p.energy_uj),
        };
        let mut s = format!(
            "# Compression search: {}\n\nObjective: {} of the accelerator layers ({unit}), from the simulator. Accuracy proxy: output SQNR \
             against the float model (measured by compressing the model; the front's prediction adds the layers' noise ratios). \
             Budget: {} dB.\n",
            self.model,
            match objective {
                Objective::Latency => "latency",
                Objective::Energy => "energy",
            },
            self.budget_db
        );
        for r in &self.archs {
            let _ = writeln!(
                s,
                "\n## {}\n\n| policy | {unit} | energy (uJ) | predicted dB | measured dB |\n|---|---|---|---|---|",
                r.arch.name
            );
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
                        let (a, b) = (u.point.cost(objective), c.point.cost(objective));
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
                for (l, (name, &k)) in self.layers.iter().zip(&c.point.choice).enumerate() {
                    let (cy, en) = (&r.costs.cycles[l], &r.costs.energy_uj[l]);
                    let _ =
                        writeln!(s, "| {name} | {} | {} | {} | {:.2} | {:.2} |", self.candidates[k].label(), cy[0], cy[k], en[0], en[k]);
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
}
