//! Property tests: random layers x random architectures x both dataflows, compiled and
//! simulated, bit-exact against the golden model. Shrunk failures are pinned below as
//! named tests.

use proptest::prelude::*;
use systole_compiler::CompileError;
use systole_core::layer::{Layer, LayerOp};
use systole_core::workload::LayerData;
use systole_core::ArchConfig;
use systole_testbenches::strategies::{arch, conv_shape, gemm_shape, layer, side};
use systole_testbenches::{golden_vs_sim, golden_vs_sim_with};

/// One generated problem: an architecture, a layer and the seed of its tensors.
#[derive(Debug, Clone)]
struct Case {
    arch: ArchConfig,
    layer: Layer,
    seed: u64,
}

impl Case {
    /// Like [`Case::check`], but a capacity error naming a memory field also passes.
    fn check_or_capacity(&self) -> Result<(), TestCaseError> {
        let data = LayerData::random(&self.layer, self.seed);
        match systole_compiler::compile_layer(&self.arch, &self.layer, &data) {
            Err(CompileError::DoesNotFit { field, need, have, .. }) => {
                prop_assert!(field.ends_with("_sram_kib") || field == "param_entries", "field {}", field);
                prop_assert!(need > have);
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e.to_string())),
            Ok(_) => self.check(),
        }
    }

    /// Compiles, simulates and compares with golden; also checks the report's invariants.
    fn check(&self) -> Result<(), TestCaseError> {
        let data = LayerData::random(&self.layer, self.seed);
        let out = golden_vs_sim(&self.arch, &self.layer, &data).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Some(m) = out.mismatch() {
            return Err(TestCaseError::fail(m));
        }
        let r = &out.report;
        prop_assert_eq!(r.macs, self.layer.shape.macs());
        prop_assert_eq!(r.cycles_by_cause.values().sum::<u64>(), r.cycles, "causes must add up to the total");
        prop_assert!(r.utilization <= 1.0, "utilization {} above 1", r.utilization);
        Ok(())
    }
}

fn case(roomy: bool, layer: impl Strategy<Value = Layer>) -> impl Strategy<Value = Case> {
    (arch(roomy, side()), layer, any::<u64>()).prop_map(|(arch, layer, seed)| Case { arch, layer, seed })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn conv_matches_golden(c in case(true, layer(LayerOp::Conv, conv_shape(false)))) {
        c.check()?;
    }

    #[test]
    fn depthwise_matches_golden(c in case(true, layer(LayerOp::Depthwise, conv_shape(true)))) {
        c.check()?;
    }

    #[test]
    fn gemm_matches_golden(c in case(true, layer(LayerOp::Gemm, gemm_shape()))) {
        c.check()?;
    }

    #[test]
    fn minimal_memories_fit_or_say_which(
        c in case(false, prop_oneof![layer(LayerOp::Conv, conv_shape(false)), layer(LayerOp::Depthwise, conv_shape(true))])
    ) {
        c.check_or_capacity()?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Not only the chosen mapping is right: any feasible one (tile sizes, loop order) of a
    /// random layer on a random architecture gives golden's output.
    #[test]
    fn every_feasible_mapping_matches_golden(
        c in case(true, prop_oneof![layer(LayerOp::Conv, conv_shape(false)), layer(LayerOp::Depthwise, conv_shape(true)), layer(LayerOp::Gemm, gemm_shape())]),
        pick in any::<prop::sample::Index>(),
    ) {
        if let Ok(mappings) = systole_mappings::search::feasible_mappings(&c.arch, &c.layer) {
            let m = *pick.get(&mappings);
            let out = golden_vs_sim_with(&c.arch, &c.layer, &LayerData::random(&c.layer, c.seed), systole_mappings::search::Choice::Fixed(m))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(out.program.mapping, Some(m));
            if let Some(msg) = out.mismatch() {
                return Err(TestCaseError::fail(format!("{m}: {msg}")));
            }
        }
    }

    /// The sweep's fast path (timing and access counts from instruction fields, no data)
    /// gives exactly the cycle-accurate simulator's report for the same program; and the
    /// sweep's data-free plan of a layer is that program without its DRAM image.
    #[test]
    fn fast_path_equals_the_simulator(
        c in case(true, prop_oneof![layer(LayerOp::Conv, conv_shape(false)), layer(LayerOp::Depthwise, conv_shape(true)), layer(LayerOp::Gemm, gemm_shape())])
    ) {
        let (arch, layer, data) = (&c.arch, &c.layer, LayerData::random(&c.layer, c.seed));
        let plan = systole_compiler::plan_layer(arch, layer, systole_mappings::search::Choice::Best(Default::default()));
        match systole_compiler::compile_layer(arch, layer, &data) {
            Ok(program) => {
                let (_, full) = systole_sim::run(arch, &program, &[&data.input]).unwrap();
                let fast = systole_sim::estimate(arch, &program).unwrap();
                let mut full_report = full.report;
                full_report.output_digest.clear();
                prop_assert_eq!(&fast.report, &full_report);
                prop_assert_eq!(&fast.timing, &full.timing);
                let plan = plan.unwrap();
                prop_assert!(plan.dram_init.is_empty());
                prop_assert_eq!(&plan.instrs, &program.instrs);
                prop_assert_eq!((plan.mapping, plan.dram_size, plan.macs), (program.mapping, program.dram_size, program.macs));
                prop_assert_eq!(systole_sim::estimate(arch, &plan).unwrap().report, fast.report);
            }
            Err(e) => prop_assert_eq!(plan.unwrap_err().to_string(), e.to_string()),
        }
    }
}
