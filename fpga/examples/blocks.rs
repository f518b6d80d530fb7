//! Prints where a synthesized netlist's logic goes, per block: `cargo run -p systole-fpga
//! --example blocks -- build/icebreaker/design.json [min share]`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: blocks <design.json> [min share, default 0.01]");
        std::process::exit(2);
    };
    let share = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.01);
    let json = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let blocks = systole_fpga::blocks::cells_by_block(&json).unwrap_or_else(|e| panic!("{path}: {e}"));
    print!("{}", systole_fpga::blocks::table(&blocks, share));
}
