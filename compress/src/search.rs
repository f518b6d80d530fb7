//! Hardware-aware compression search, in the manner of HAQ (Wang et al., CVPR 2019) and AMC
//! (He et al., ECCV 2018): per layer, a pruning pattern and a weight precision, chosen to
//! minimize the latency or energy the simulator reports on an [`ArchConfig`] under a budget
//! on the accuracy proxy (output SQNR against the float model).
//!
//! ```text
//!  float ONNX ──sensitivity: per layer x candidate, the output noise ratio r[l][c] with
//!     │          only that layer compressed (systole_compress::prune::sensitivity)
//!  int8 network ──costs: per layer x candidate, the simulator's cycles and energy of the
//!     │          layer compiled in that format (sparsity, weight bits) on the arch
//!     ▼
//!  Pareto front: for each multiplier lambda, every layer takes argmin cost + lambda r
//!  (a Lagrangian relaxation of the multiple-choice knapsack); predicted SQNR
//!  -10 log10(sum r) under the additive-noise model, exact cost (layers are independent
//!  programs). The caller checks the chosen point with a real compression run.
//! ```
//!
//! Costs are the simulator's (`systole_sim::estimate`, which equals a full simulation's
//! cycles) and the 45 nm energy model of the layer's access counts, never FLOPs: a 2:4 layer
//! the hardware cannot skip (channels not in fours, depthwise) costs what dense does.

use crate::prune::Pruning;
use rayon::prelude::*;
use systole_compiler::CompileError;
use systole_core::layer::Layer;
use systole_core::mapping::Objective;
use systole_core::{ArchConfig, Sparsity};
use systole_mappings::search::Choice;

/// One per-layer choice: a pruning pattern and the weight bits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// Magnitude pruning of the layer's weights.
    #[serde(serialize_with = "display")]
    pub pruning: Pruning,
    /// Weight bits, 8 or 4 (per-channel symmetric).
    pub bits: u8,
    /// Input activation bits, 8 or 4; 4 applies where the layer's input can be int4 (a
    /// conv or GEMM layer's output), elsewhere the candidate is its int8-activation twin.
    pub act_bits: u8,
}

fn display<S: serde::Serializer>(p: &Pruning, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

impl Candidate {
    /// The candidates the search picks from: dense, 2:4 and 1:4, at 8 bits; dense and 2:4
    /// at 4 bits (the hardware packs int4 or skips N:4 per layer, so 2:4 int4 runs as
    /// dense int4; it stays a candidate for instances without packing); and dense int4
    /// with int4 activations (int4 x int4 on instances with `int4_activations`).
    pub fn all() -> Vec<Candidate> {
        let nm = |n| Pruning::NofM { n, m: 4 };
        let c = |pruning, bits, act_bits| Candidate { pruning, bits, act_bits };
        vec![c(Pruning::None, 8, 8), c(nm(2), 8, 8), c(nm(1), 8, 8), c(Pruning::None, 4, 8), c(nm(2), 4, 8), c(Pruning::None, 4, 4)]
    }

    /// The input activation bits this candidate gives a layer whose input can be int4
    /// (`int4_input`) or cannot.
    pub fn act_bits_for(&self, int4_input: bool) -> u8 {
        if int4_input {
            self.act_bits
        } else {
            8
        }
    }

    /// A short label: `dense/8`, `2:4/4`, `dense/4a4` (int4 activations).
    pub fn label(&self) -> String {
        let p = match self.pruning {
            Pruning::None => "dense".to_string(),
            p => p.to_string(),
        };
        let act = if self.act_bits == 4 { "a4" } else { "" };
        format!("{p}/{}{act}", self.bits)
    }

    /// `layer` as the compressed model's importer would see it: the N:4 format its pruned
    /// weights satisfy (when the layer has groups of four channels), its weight bits, and
    /// int4 inputs when `int4_input` (its input can be int4; the zero point is then an
    /// int4 one, which does not change the cost).
    pub fn apply(&self, layer: &Layer, int4_input: bool) -> Layer {
        let mut l = layer.clone();
        l.weight_bits = self.bits;
        if self.act_bits_for(int4_input) == 4 {
            l.act_bits = 4;
            l.quant.x_zp = l.quant.x_zp.clamp(-8, 7);
        }
        if let Pruning::NofM { n, m: 4 } = self.pruning {
            l.sparsity = Sparsity::for_nonzeros(n);
            if l.validate().is_err() {
                l.sparsity = Sparsity::Dense;
            }
        }
        l
    }
}

/// The simulator's cost of every layer in every candidate format on one instance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Costs {
    /// `cycles[layer][candidate]`.
    pub cycles: Vec<Vec<u64>>,
    /// `energy_uj[layer][candidate]`, microjoules (45 nm model of the access counts).
    pub energy_uj: Vec<Vec<f64>>,
}

impl Costs {
    /// Compiles every layer in every candidate's format for `arch` (mappings chosen for
    /// `objective`) and times it with the simulator. `layers[l]` is `None` for a layer the
    /// accelerator does not run (it costs nothing here).
    pub fn measure(
        arch: &ArchConfig,
        layers: &[Option<Layer>],
        int4_inputs: &[bool],
        candidates: &[Candidate],
        objective: Objective,
    ) -> Result<Costs, CompileError> {
        let rows: Vec<Vec<(u64, f64)>> = layers
            .par_iter()
            .zip(int4_inputs)
            .map(|(layer, &int4_input)| {
                candidates
                    .iter()
                    .map(|c| {
                        let Some(layer) = layer else { return Ok((0, 0.0)) };
                        let program = systole_compiler::plan_layer(arch, &c.apply(layer, int4_input), Choice::Best(objective))?;
                        let cycles = systole_sim::estimate(arch, &program).map(|e| e.report.cycles).unwrap_or(u64::MAX);
                        Ok((cycles, systole_mappings::search::program_energy_pj(arch, &program) / 1e6))
                    })
                    .collect::<Result<Vec<_>, CompileError>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(Costs {
            cycles: rows.iter().map(|r| r.iter().map(|c| c.0).collect()).collect(),
            energy_uj: rows.iter().map(|r| r.iter().map(|c| c.1).collect()).collect(),
        })
    }

    /// What `objective` minimizes for layer `l` on candidate `c`.
    pub fn cost_of(&self, objective: Objective, l: usize, c: usize) -> f64 {
        match objective {
            Objective::Latency => self.cycles[l][c] as f64,
            Objective::Energy => self.energy_uj[l][c],
        }
    }
}

/// One policy: a candidate index per layer, its exact cost and its predicted proxy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    /// Candidate index per layer.
    pub choice: Vec<usize>,
    /// Cycles of the accelerator layers.
    pub cycles: u64,
    /// Energy of the accelerator layers, microjoules.
    pub energy_uj: f64,
    /// Output SQNR under the additive-noise model, dB.
    pub predicted_db: f64,
}

impl Point {
    /// The point of `choice`.
    pub fn of(choice: Vec<usize>, costs: &Costs, ratio: &[Vec<f64>]) -> Point {
        let cycles = choice.iter().enumerate().map(|(l, &c)| costs.cycles[l][c]).sum();
        let energy_uj = choice.iter().enumerate().map(|(l, &c)| costs.energy_uj[l][c]).sum();
        let noise: f64 = choice.iter().enumerate().map(|(l, &c)| ratio[l][c]).sum();
        Point { choice, cycles, energy_uj, predicted_db: -10.0 * noise.max(1e-300).log10() }
    }

    /// What `objective` minimizes.
    pub fn cost(&self, objective: Objective) -> f64 {
        match objective {
            Objective::Latency => self.cycles as f64,
            Objective::Energy => self.energy_uj,
        }
    }
}

/// Every layer on candidate `c`.
pub fn uniform(c: usize, costs: &Costs, ratio: &[Vec<f64>]) -> Point {
    Point::of(vec![c; ratio.len()], costs, ratio)
}

/// The Pareto front of cost against predicted SQNR, most accurate first: for each of
/// `steps` multipliers `lambda` (log-spaced over the range that spans the layers' cost and
/// noise scales), each layer independently takes the candidate minimizing `cost + lambda *
/// ratio`; dominated and repeated policies are dropped.
pub fn pareto(costs: &Costs, ratio: &[Vec<f64>], objective: Objective, steps: usize) -> Vec<Point> {
    let layers = ratio.len();
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let costs_seen: Vec<f64> = (0..layers)
        .flat_map(|l| (0..ratio[l].len()).map(move |c| (l, c)))
        .map(|(l, c)| costs.cost_of(objective, l, c))
        .filter(|&v| positive(v))
        .collect();
    let ratios_seen: Vec<f64> = ratio.iter().flatten().copied().filter(|&v| positive(v)).collect();
    let (Some(cmax), Some(rmin)) = (costs_seen.iter().copied().reduce(f64::max), ratios_seen.iter().copied().reduce(f64::min)) else {
        return vec![Point::of(vec![0; layers], costs, ratio)];
    };
    let (cmin, rmax) = (costs_seen.iter().copied().fold(cmax, f64::min), ratios_seen.iter().copied().fold(rmin, f64::max));
    // lambda from "cost decides" to "noise decides".
    let (lo, hi) = ((cmin / rmax / 1e3).ln(), (cmax / rmin * 1e3).ln());
    let mut points: Vec<Point> = (0..steps)
        .map(|i| {
            let lambda = (lo + (hi - lo) * i as f64 / (steps - 1).max(1) as f64).exp();
            let choice = (0..layers)
                .map(|l| {
                    (0..ratio[l].len())
                        .min_by(|&a, &b| {
                            let f = |c: usize| costs.cost_of(objective, l, c) + lambda * ratio[l][c];
                            f(a).total_cmp(&f(b)).then(a.cmp(&b))
                        })
                        .unwrap_or(0)
                })
                .collect();
            Point::of(choice, costs, ratio)
        })
        .collect();
    points.extend(greedy_path(costs, ratio, objective));
    points.sort_by(|a, b| b.predicted_db.total_cmp(&a.predicted_db).then(a.cost(objective).total_cmp(&b.cost(objective))));
    points.dedup_by(|a, b| a.choice == b.choice);
    let mut front: Vec<Point> = vec![];
    for p in points {
        if front.last().is_none_or(|best| p.cost(objective) < best.cost(objective)) {
            front.push(p);
        }
    }
    front
}

/// The policies met going from every layer on its most accurate candidate towards the
/// cheapest one change at a time, each change the one that saves the most cost per unit of
/// noise added (HAQ's and AMC's layer-by-layer view): points between the corners of the
/// Lagrangian front.
fn greedy_path(costs: &Costs, ratio: &[Vec<f64>], objective: Objective) -> Vec<Point> {
    let layers = ratio.len();
    let mut choice: Vec<usize> = (0..layers)
        .map(|l| (0..ratio[l].len()).min_by(|&a, &b| ratio[l][a].total_cmp(&ratio[l][b]).then(a.cmp(&b))).unwrap_or(0))
        .collect();
    let mut path = vec![Point::of(choice.clone(), costs, ratio)];
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for l in 0..layers {
            let (c0, r0) = (costs.cost_of(objective, l, choice[l]), ratio[l][choice[l]]);
            for (c, &r) in ratio[l].iter().enumerate() {
                let saving = c0 - costs.cost_of(objective, l, c);
                if saving <= 0.0 {
                    continue;
                }
                let rate = saving / (r - r0).max(1e-300);
                if best.is_none_or(|b| rate > b.0) {
                    best = Some((rate, l, c));
                }
            }
        }
        let Some((_, l, c)) = best else { break };
        choice[l] = c;
        path.push(Point::of(choice.clone(), costs, ratio));
    }
    path
}

/// The index of the cheapest point of `front` (most accurate first) whose predicted SQNR is
/// at least `budget_db`; the points before it are dearer and more accurate, where the
/// caller steps when a check misses the budget.
pub fn cheapest_within(front: &[Point], budget_db: f64) -> Option<usize> {
    front.iter().rposition(|p| p.predicted_db >= budget_db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two layers, two candidates (0: exact and expensive, 1: noisy and cheap).
    fn toy() -> (Costs, Vec<Vec<f64>>) {
        let costs = Costs { cycles: vec![vec![100, 40], vec![100, 90]], energy_uj: vec![vec![1.0, 0.5], vec![1.0, 0.2]] };
        // Layer 0 is cheap to compress and insensitive, layer 1 the opposite in latency.
        (costs, vec![vec![1e-6, 1e-3], vec![1e-6, 1e-1]])
    }

    #[test]
    fn pareto_by_hand() {
        let (costs, ratio) = toy();
        let front = pareto(&costs, &ratio, Objective::Latency, 200);
        let choices: Vec<Vec<usize>> = front.iter().map(|p| p.choice.clone()).collect();
        // Exact (200 cycles, 2e-6), layer 0 compressed (140, 1.001e-3), both (130, 0.101);
        // layer 1 alone (190, 0.1) is dominated.
        assert_eq!(choices, vec![vec![0, 0], vec![1, 0], vec![1, 1]]);
        assert_eq!(front.iter().map(|p| p.cycles).collect::<Vec<_>>(), vec![200, 140, 130]);
        assert!((front[1].predicted_db - (-10.0 * 1.001e-3f64.log10())).abs() < 1e-9);
        // A 20 dB budget (noise ratio 0.01) admits layer 0 only.
        assert_eq!(cheapest_within(&front, 20.0), Some(1));
        assert_eq!(cheapest_within(&front, 80.0), None);
    }

    #[test]
    fn the_objective_changes_the_choice() {
        let (costs, ratio) = toy();
        // In energy, compressing layer 1 saves most (0.8 uJ) but costs 0.1 of noise.
        let front = pareto(&costs, &ratio, Objective::Energy, 200);
        assert_eq!(front.last().unwrap().choice, vec![1, 1]);
        assert!((front.last().unwrap().energy_uj - 0.7).abs() < 1e-12);
    }
}
