//! The measured step of the search: policies checked by compressing the model for real
//! (each policy once), and the cheapest point of a front that meets an SQNR budget when
//! measured: a bisection along the front, then a few measured single-layer moves.

use crate::prune::{compress, Policy};
use crate::search::{cheapest_within, Candidate, Costs, Point};
use crate::CompressError;
use std::collections::HashMap;
use std::path::Path;
use systole_core::mapping::Objective;
use systole_onnx::{ptq, OnnxModel};

/// Measured single-layer moves tried after the bisection along the front.
pub const REFINE_MOVES: usize = 12;

/// One policy checked with a real compression run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    /// What the policy is (e.g. `uniform 2:4 int8`, `chosen`).
    pub label: String,
    /// The policy and its predicted costs.
    pub point: Point,
    /// Output SQNR of the compressed model against the float one, dB (lowest output).
    pub measured_db: f64,
}

/// Measures policies with real compression runs, each once.
pub struct Checker<'a> {
    /// Per layer and candidate, the simulator's costs.
    pub costs: &'a Costs,
    /// Per layer and candidate, the noise ratio of the accuracy proxy.
    pub ratio: &'a [Vec<f64>],
    /// Latency or energy.
    pub objective: Objective,
    /// The float model and its file.
    pub model: &'a OnnxModel,
    /// The model's file, for messages.
    pub path: &'a Path,
    /// The compressible layers' names.
    pub layers: &'a [String],
    /// Per layer, whether its input may be int4.
    pub int4_inputs: &'a [bool],
    /// The candidates per layer.
    pub candidates: &'a [Candidate],
    /// The calibration inputs.
    pub samples: &'a [ptq::Sample],
    /// Measured SQNR by choice, shared between architectures (the model's accuracy does not
    /// depend on the instance).
    pub measured: HashMap<Vec<usize>, f64>,
}

impl Checker<'_> {
    /// `point` with its measured SQNR (the lowest over the graph outputs).
    pub fn check(&mut self, label: String, point: &Point) -> Result<Checked, CompressError> {
        let db = match self.measured.get(&point.choice) {
            Some(&db) => db,
            None => {
                let policy = policy(self.layers, self.int4_inputs, self.candidates, &point.choice);
                let (_, report) = compress(self.model, self.path, &policy, self.samples)?;
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
    pub fn meet(&mut self, front: &[Point], budget: f64, label: &str) -> Result<Option<Checked>, CompressError> {
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

/// The compression policy of `choice`; int4 activations only where `int4_inputs` allows.
pub fn policy(layers: &[String], int4_inputs: &[bool], candidates: &[Candidate], choice: &[usize]) -> Policy {
    let mut p = Policy::default();
    for ((name, &c), &int4) in layers.iter().zip(choice).zip(int4_inputs) {
        p.layers.insert(name.clone(), candidates[c].pruning);
        p.layer_bits.insert(name.clone(), candidates[c].bits);
        p.layer_act_bits.insert(name.clone(), candidates[c].act_bits_for(int4));
    }
    p
}
