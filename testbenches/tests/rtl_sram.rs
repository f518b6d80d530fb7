//! The scratchpad/accumulator RAM block: rust-hdl's simulator and the emitted Verilog under
//! Icarus against a reference memory on random traffic, and block-RAM inference by Yosys.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::sram::SyncRam;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::tools::{block_ram_cell, icarus_vectors, scratch, yosys_stats};

/// Per cycle: read address, write address, write data, write enable.
fn traffic(depth: usize, cycles: usize, seed: u64) -> Vec<[i64; 4]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Few addresses, so that reads often hit recent writes, including same-cycle ones.
    let hot = depth.min(8);
    (0..cycles)
        .map(|_| {
            let addr = |rng: &mut ChaCha8Rng| if rng.gen_bool(0.7) { rng.gen_range(0..hot) } else { rng.gen_range(0..depth) } as i64;
            [addr(&mut rng), addr(&mut rng), rng.gen::<i8>() as i64, rng.gen_bool(0.5) as i64]
        })
        .collect()
}

/// `read_data` in every cycle: the word read in the previous cycle, before that cycle's
/// write.
fn reference(depth: usize, t: &[[i64; 4]]) -> Vec<i64> {
    let mut mem = vec![0i64; depth];
    let mut out = vec![0];
    for &[ra, wa, wd, we] in t {
        out.push(mem[ra as usize]);
        if we == 1 {
            mem[wa as usize] = wd;
        }
    }
    out.truncate(t.len());
    out
}

fn rust_hdl(depth: usize, t: &[[i64; 4]]) -> Vec<i64> {
    let mut ram = SyncRam::<Signed<8>>::new(depth);
    ram.connect_all();
    let mut out = vec![];
    for &[ra, wa, wd, we] in t {
        ram.read_address.next = (ra as u64).into();
        ram.write_address.next = (wa as u64).into();
        ram.write_data.next = wd.into();
        ram.write_enable.next = we == 1;
        assert!(settle(&mut ram));
        out.push(ram.read_data.val().bigint().try_into().unwrap());
        clock_cycle(&mut ram, |r| &mut r.clock);
    }
    out
}

#[test]
fn ram_matches_reference_in_rust_hdl_and_icarus() {
    for (depth, seed) in [(1usize, 1u64), (5, 2), (64, 3), (1000, 4)] {
        let t = traffic(depth, 300, seed);
        let want = reference(depth, &t);
        assert_eq!(rust_hdl(depth, &t), want, "rust-hdl, depth {depth}");
        let dir = scratch(&format!("sram-{depth}"));
        let rtl = emit(&mut SyncRam::<Signed<8>>::new(depth));
        let inputs = [("read_address", 24), ("write_address", 24), ("write_data", 8), ("write_enable", 1)].map(|(n, b)| (n.to_string(), b));
        let cycles: Vec<Vec<i64>> = t.iter().map(|c| c.to_vec()).collect();
        let got = icarus_vectors(&dir, &rtl, true, &inputs, &[("read_data".to_string(), 8)], &cycles).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<i64> = got.iter().map(|row| row[0].expect("known value")).collect();
        assert_eq!(got, want, "Icarus, depth {depth}");
    }
}

#[test]
fn yosys_infers_block_ram() {
    // 4096 x 8 bits: eight iCE40 SB_RAM40_4K (512 x 8 each) or two ECP5 DP16KD.
    let rtl = emit(&mut SyncRam::<Signed<8>>::new(4096));
    let dir = scratch("sram-synth");
    for family in ["ice40", "ecp5"] {
        let stats = yosys_stats(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{e}"));
        let cell = block_ram_cell(family);
        assert!(stats.contains(cell), "{family}: no {cell} in\n{stats}");
    }
}

/// A scratchpad read with a stagger (`ByteRam::staggered`): lane `k` of group `m` (lanes
/// `g*m ..`) shows, `1 + k % g` cycles after the edge at which its group read, byte `k` of
/// the word addressed `g*m` cycles before that edge, as the memory held it then; random
/// byte writes to a few hot words meet the reads.
#[test]
fn a_staggered_byte_ram_reads_each_group_at_its_old_address() {
    use systole_hdl::sram::ByteRam;
    let (lanes, group, depth, cycles) = (6usize, 2usize, 8usize, 200usize);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Per cycle: read address, write address, then per lane its byte and write enable.
    let t: Vec<Vec<i64>> = (0..cycles)
        .map(|_| {
            let mut row = vec![rng.gen_range(0..depth) as i64, rng.gen_range(0..depth) as i64];
            row.extend((0..lanes).map(|_| rng.gen::<i8>() as i64));
            row.extend((0..lanes).map(|_| rng.gen_bool(0.3) as i64));
            row
        })
        .collect();
    // The memory before each edge's writes, and the edges' reads.
    let mut mem = vec![vec![0i64; lanes]; depth];
    let mut before = vec![];
    for row in &t {
        before.push(mem.clone());
        for k in 0..lanes {
            if row[2 + lanes + k] == 1 {
                mem[row[1] as usize][k] = row[2 + k];
            }
        }
    }
    let want = |c: usize, k: usize| -> i64 {
        let (m, i) = (k / group, k % group);
        // Edge `e` (the end of cycle `e`) read the group's byte; it shows from cycle e + 1 + i.
        let Some(e) = c.checked_sub(1 + i) else { return 0 };
        let Some(at) = e.checked_sub(group * m) else { return before[e][0][k] };
        before[e][t[at][0] as usize][k]
    };
    let mut ram = ByteRam::new(lanes, depth).staggered(group);
    ram.connect_all();
    for (c, row) in t.iter().enumerate() {
        ram.read_address.next = (row[0] as u64).into();
        ram.write_address.next = (row[1] as u64).into();
        for k in 0..lanes {
            ram.write_data[k].next = row[2 + k].into();
            ram.write_enable[k].next = row[2 + lanes + k] == 1;
        }
        assert!(settle(&mut ram));
        for k in 0..lanes {
            let got: i64 = ram.read_data[k].val().bigint().try_into().unwrap();
            assert_eq!(got, want(c, k), "rust-hdl, cycle {c}, lane {k}");
        }
        clock_cycle(&mut ram, |r| &mut r.clock);
    }
    let mut inputs = vec![("read_address".to_string(), 24), ("write_address".to_string(), 24)];
    inputs.extend((0..lanes).map(|k| (format!("write_data${k}"), 8)));
    inputs.extend((0..lanes).map(|k| (format!("write_enable${k}"), 1)));
    let outputs: Vec<(String, usize)> = (0..lanes).map(|k| (format!("read_data${k}"), 8)).collect();
    let dir = scratch("sram-staggered");
    let rtl = emit(&mut ByteRam::new(lanes, depth).staggered(group));
    let got = icarus_vectors(&dir, &rtl, true, &inputs, &outputs, &t).unwrap_or_else(|e| panic!("{e}"));
    for (c, row) in got.iter().enumerate() {
        for (k, value) in row.iter().enumerate() {
            assert_eq!(*value, Some(want(c, k)), "Icarus, cycle {c}, lane {k}");
        }
    }
}

/// A block RAM delay line ([`systole_hdl::delay::RamDelay`]) under Icarus in both bodies:
/// the register chain as emitted, and the iCE40 circular buffer as the flow's Yosys
/// script maps it (an `SB_RAM40_4K`, simulated with Yosys's cell model). In every cycle
/// after the first `depth`, the output is the kept bits of the input `depth` cycles
/// before; before that, zero. The rust-hdl model gives the same trace.
#[test]
fn a_block_ram_delay_line_is_a_chain_of_registers_on_every_target() {
    use systole_hdl::delay::RamDelay;
    use systole_testbenches::tools::ice40_netlist;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (depth, kept) in [(2usize, 12usize), (5, 7), (16, 12), (19, 3)] {
        let ins: Vec<i64> = (0..120).map(|_| rng.gen_range(1..4096)).collect();
        let want: Vec<i64> = (0..ins.len()).map(|t| if t < depth { 0 } else { ins[t - depth] & ((1 << kept) - 1) }).collect();
        let name = format!("ram-delay-{depth}-{kept}");
        let mut line = RamDelay::<12>::new(depth).keeping(kept);
        let rtl = emit(&mut line);
        let rows: Vec<Vec<i64>> = ins.iter().map(|&x| vec![x]).collect();
        let (input, output) = ([("data_in".to_string(), 12)], [("data_out".to_string(), 12)]);
        let plain = icarus_vectors(&scratch(&name), &rtl, true, &input, &output, &rows).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = scratch(&format!("{name}-ice40"));
        let netlist = ice40_netlist(&dir, &rtl).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(netlist.matches("SB_RAM40_4K #(").count(), 1, "{name}: not one block RAM in\n{netlist}");
        let ice40 = icarus_vectors(&dir, &netlist, true, &input, &output, &rows).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut model = RamDelay::<12>::new(depth).keeping(kept);
        model.connect_all();
        let mut modelled = vec![];
        for &x in &ins {
            model.data_in.next = (x as u64).into();
            assert!(settle(&mut model));
            modelled.push(model.data_out.val().index() as i64);
            clock_cycle(&mut model, |m| &mut m.clock);
        }
        for t in 0..ins.len() {
            // Icarus reads the 12-bit port as signed.
            let (p, i) = (plain[t][0].map(|v| v & 0xfff), ice40[t][0].map(|v| v & 0xfff));
            assert_eq!((p, i, modelled[t]), (Some(want[t]), Some(want[t]), want[t]), "{name}, cycle {t}: chain, iCE40, model");
        }
    }
}
