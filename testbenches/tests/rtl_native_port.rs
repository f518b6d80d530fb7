//! The bridge from the core's one-cycle byte ports to a LiteDRAM native port
//! (`hdl::native_port`): against a native port answering after random delays, a core that
//! advances only when the bridge lets its clock tick sees, in every one of its cycles, the
//! bytes a one-cycle memory would give (a byte array updated by the core's own writes, a
//! read seeing it as before its cycle's write), and every cycle its clock is held while a
//! program runs is counted as a stall. Between programs the posted write reaches memory
//! unasked, and a program that starts sees memory changed behind the bridge. Its Verilog
//! lints.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_hdl::native_port::NativePortBridge;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::native_port_model::NativePortModel;
use systole_testbenches::tools::{scratch, verilator_lint};

/// One core cycle's request: the read beat's address, and the write beat's address and
/// lane bytes (`None` for a lane not written); whether a program runs, and whether one
/// starts.
struct Request {
    rd: u64,
    wr: u64,
    bytes: Vec<Option<u8>>,
    running: bool,
    starts: bool,
}

fn run(lanes: usize, port_bytes: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let size = 256usize;
    let init: Vec<u8> = (0..size + 64).map(|_| rng.gen()).collect();
    let mut reference = init.clone();
    let mut port = NativePortModel::new(init, port_bytes, seed + 1);
    // A program: runs of sequential beats (as a DMA walks) mixed with jumps, some cycles
    // writing.
    let mut requests = vec![];
    let (mut rd, mut wr) = (0u64, 128u64);
    for _ in 0..600 {
        if rng.gen_bool(0.1) {
            rd = rng.gen_range(0..size as u64);
        }
        if rng.gen_bool(0.1) {
            wr = rng.gen_range(0..size as u64);
        }
        let writing = rng.gen_bool(0.3);
        let bytes = (0..lanes).map(|_| (writing && rng.gen_bool(0.8)).then(|| rng.gen())).collect();
        requests.push(Request { rd, wr, bytes, running: true, starts: false });
        rd = (rd + lanes as u64) % size as u64;
        wr = (wr + lanes as u64) % size as u64;
    }
    // Then no program runs, and the core neither reads new words nor writes: the posted
    // write reaches memory all the same.
    for _ in 0..40 {
        requests.push(Request { rd: 0, wr: 0, bytes: vec![None; lanes], running: false, starts: false });
    }
    // Memory changes behind the bridge (a back door), and the next program reads it all.
    let second = requests.len();
    for (i, a) in (0..size as u64).step_by(lanes).enumerate() {
        requests.push(Request { rd: a, wr: 0, bytes: vec![None; lanes], running: true, starts: i == 0 });
    }

    let mut bridge = NativePortBridge::new(lanes, port_bytes);
    bridge.connect_all();
    let (mut k, mut held, mut expected): (usize, u64, Option<Vec<u8>>) = (0, 0, None);
    let mut now = 0u64;
    let mut changed = false;
    while k < requests.len() {
        let req = &requests[k];
        if k == second && !changed {
            assert_eq!(port.mem[..size + 64], reference[..], "{lanes} lanes, {port_bytes}-byte words: memory after the first program");
            for (m, r) in port.mem[..size].iter_mut().zip(&mut reference[..size]) {
                *m ^= 0x5a;
                *r ^= 0x5a;
            }
            changed = true;
        }
        bridge.rd_addr.next = req.rd.into();
        bridge.wr_addr.next = req.wr.into();
        for (i, b) in req.bytes.iter().enumerate() {
            bridge.wr_en[i].next = b.is_some();
            bridge.wr_data[i].next = (b.unwrap_or(0) as i8 as i64).into();
        }
        bridge.count.next = req.running;
        bridge.clear.next = req.starts;
        let offer = port.offer();
        bridge.cmd_ready.next = offer.cmd_ready;
        bridge.wdata_ready.next = offer.wdata_ready;
        bridge.rdata_valid.next = offer.rdata.is_some();
        bridge.rdata_data.next = offer.rdata.unwrap_or_default();
        assert!(settle(&mut bridge));
        if let Some(want) = &expected {
            let got: Vec<u8> = bridge.rd_data.iter().map(|d| d.val().bigint().to_string().parse::<i64>().unwrap() as u8).collect();
            assert_eq!(&got, want, "{lanes} lanes, {port_bytes}-byte words: core cycle {k} (free cycle {now})");
        }
        let cmd = bridge.cmd_valid.val().then(|| (bridge.cmd_we.val(), bridge.cmd_addr.val().to_u64()));
        let wdata = bridge.wdata_valid.val().then(|| (bridge.wdata_data.val(), bridge.wdata_we.val().to_u64()));
        port.take(&offer, cmd, wdata, bridge.rdata_ready.val());
        if req.starts {
            held = 0;
        } else if req.running && !bridge.advance.val() {
            held += 1;
        }
        if bridge.advance.val() {
            // The cache empties as the starting cycle ends: the reads after it see the
            // changed memory.
            expected = (!req.starts).then(|| (0..lanes).map(|i| reference[req.rd as usize + i]).collect());
            for (i, b) in req.bytes.iter().enumerate() {
                if let Some(b) = b {
                    reference[req.wr as usize + i] = *b;
                }
            }
            k += 1;
        }
        clock_cycle(&mut bridge, |b| &mut b.clock);
        now += 1;
        assert!(now < 100 * requests.len() as u64, "the bridge stopped advancing at core cycle {k}");
    }
    assert!(settle(&mut bridge));
    assert_eq!(bridge.stalls.val().to_u64(), held, "stalls: every held cycle of the second program");
    assert!(held > 0, "no cycle was held");
}

#[test]
fn the_core_sees_one_cycle_memory_through_a_native_port() {
    for (lanes, port_bytes) in [(1, 4), (2, 4), (1, 16), (2, 16), (4, 16)] {
        for seed in 1..=4 {
            run(lanes, port_bytes, seed);
        }
    }
}

#[test]
fn the_native_port_bridge_lints() {
    let dir = scratch("native-port-lint");
    let rtl = emit(&mut NativePortBridge::new(2, 4));
    let waivers = [
        ("DECLFILENAME", "rust-hdl names the top module `top`"),
        ("WIDTH", "rust-hdl writes integer literals as 32-bit constants"),
        ("UNUSEDSIGNAL", "each read lane takes the low byte of its shifted word"),
        ("UNUSEDPARAM", "rust-hdl declares the state constants in the state register's module too"),
    ];
    verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{e}"));
}
