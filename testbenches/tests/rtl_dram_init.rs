//! The DRAM initialization sequencer (`hdl::dram_init`) against a Wishbone slave that
//! acknowledges after random delays: it writes exactly the table's registers and values,
//! in order, each a classic cycle (all byte lanes, `we`), waits at least each wait's cycles
//! between the writes around it, raises `done` only after the last acknowledgement and
//! then leaves the bus alone. Its Verilog lints.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_hdl::dram_init::{DramInit, InitStep};
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::tools::{scratch, verilator_lint};

fn steps() -> Vec<InitStep> {
    let w = |addr, value| InitStep::Write { addr, value };
    vec![
        w(0x80c, 0),
        w(0x810, 5),
        InitStep::Wait(37),
        w(0x804, 0x0b),
        w(0x808, 1),
        InitStep::Wait(0),
        InitStep::Wait(3),
        w(0, 1),
        w(0x800, 1),
        InitStep::Wait(9),
    ]
}

#[test]
fn the_sequencer_plays_its_table_on_the_control_bus() {
    for seed in 0..4 {
        let steps = steps();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut init = DramInit::new(&steps);
        init.connect_all();
        // (cycle of the acknowledged write, byte address, value)
        let mut writes: Vec<(u64, u32, u32)> = vec![];
        let mut delay: Option<u32> = None;
        let mut done_at = None;
        for cycle in 0..400u64 {
            init.wb_ack.next = false;
            assert!(settle(&mut init));
            let strobe = init.wb_cyc.val() && init.wb_stb.val();
            if strobe {
                assert!(init.wb_we.val() && init.wb_sel.val().to_u64() == 15, "seed {seed}: a full-word write");
                let left = *delay.get_or_insert_with(|| rng.gen_range(0..4));
                if left == 0 {
                    init.wb_ack.next = true;
                    assert!(settle(&mut init));
                    writes.push((cycle, init.wb_adr.val().to_u64() as u32 * 4, init.wb_dat_w.val().to_u64() as u32));
                    delay = None;
                } else {
                    delay = Some(left - 1);
                }
            }
            match done_at {
                None if init.done.val() => done_at = Some(cycle),
                Some(_) => assert!(init.done.val() && !strobe, "seed {seed}: done stays, the bus idle"),
                None => {}
            }
            clock_cycle(&mut init, |b| &mut b.clock);
        }
        let want: Vec<(u32, u32)> = steps
            .iter()
            .filter_map(|s| match *s {
                InitStep::Write { addr, value } => Some((addr, value)),
                InitStep::Wait(_) => None,
            })
            .collect();
        assert_eq!(writes.iter().map(|&(_, a, v)| (a, v)).collect::<Vec<_>>(), want, "seed {seed}");
        // Between the writes around a wait, at least its cycles (and the idle cycle after
        // each acknowledgement).
        let mut k = 0;
        let mut waited = 0;
        for s in &steps {
            match *s {
                InitStep::Wait(n) => waited += u64::from(n),
                InitStep::Write { .. } => {
                    if k > 0 {
                        assert!(writes[k].0 - writes[k - 1].0 > waited + 1, "seed {seed}: write {k} after {waited} cycles of waits");
                    }
                    waited = 0;
                    k += 1;
                }
            }
        }
        let last = writes.last().unwrap().0;
        assert!(done_at.is_some_and(|d| d > last + 9), "seed {seed}: done at {done_at:?}, the last write at {last}");
    }
}

#[test]
fn the_sequencer_lints() {
    let rtl = emit(&mut DramInit::new(&steps()));
    let dir = scratch("dram-init-lint");
    let waivers = [
        ("DECLFILENAME", "rust-hdl names the top module `top`"),
        ("WIDTH", "rust-hdl writes integer literals as 32-bit constants"),
        ("UNUSEDSIGNAL", "the table word's bits between the wait flag and the address"),
    ];
    verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{e}"));
}
