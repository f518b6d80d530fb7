//! Verilog emission and cycle stepping of rust-hdl blocks.

use rust_hdl::prelude::*;

/// The Verilog of `block` and its sub-blocks, top module named `top`.
pub fn emit<B: Block>(block: &mut B) -> String {
    block.connect_all();
    generate_verilog(block)
}

/// Settles combinational logic after inputs change; false if it does not converge.
pub fn settle<B: Block>(block: &mut B) -> bool {
    simulate(block, 1000)
}

/// One clock cycle: a rising edge (registers take their inputs), then the falling edge.
pub fn clock_cycle<B: Block>(block: &mut B, clock: impl Fn(&mut B) -> &mut Signal<In, Clock>) {
    clock(block).next = Clock { clk: true };
    assert!(settle(block), "logic does not settle after the rising edge");
    clock(block).next = Clock { clk: false };
    assert!(settle(block), "logic does not settle after the falling edge");
}

/// Renames the top module `top` of emitted Verilog, and its sub-modules `top$...`, to
/// `name` (an identifier), so that the design can sit beside other modules.
pub fn rename_top(verilog: &str, name: &str) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(verilog.len());
    let mut rest = verilog;
    let mut prev: Option<char> = None;
    while let Some(i) = rest.find("top") {
        let before = rest[..i].chars().next_back().or(prev);
        let after = rest[i + 3..].chars().next();
        out.push_str(&rest[..i]);
        if !before.is_some_and(ident) && matches!(after, Some('$') | Some('(') | Some(' ')) {
            out.push_str(name);
        } else {
            out.push_str("top");
        }
        prev = Some('p');
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// `expr * k` as shifts and additions, in a `bits`-wide expression (an `expr` as wide
/// gives a lint-clean one): synthesis maps a multiplication by a constant that is not a
/// power of two to a DSP block, which the array's PEs need.
pub fn times(expr: &str, k: usize, bits: usize) -> String {
    let terms: Vec<String> = (0..usize::BITS).filter(|b| k >> b & 1 == 1).map(|b| format!(" + (({expr}) << {b})")).collect();
    if terms.is_empty() {
        format!("{bits}'d0")
    } else {
        format!("({bits}'d0{})", terms.concat())
    }
}

/// `expr / k` and `expr % k` for an `expr` of `bits` bits: bit slices when `k` is a power
/// of two, else a `bits`-wide division by a sized constant (an unsized one would make it
/// a 32-bit divider).
pub fn div_rem(expr: &str, bits: usize, k: usize) -> (String, String) {
    let t = bits - 1;
    match k.trailing_zeros() as usize {
        0 if k == 1 => (format!("{expr}[{t}:0]"), format!("{bits}'d0")),
        s if k.is_power_of_two() && s <= t => (format!("{expr}[{t}:{s}]"), format!("{expr}[{}:0]", s - 1)),
        _ => (format!("{expr}[{t}:0] / {bits}'d{k}"), format!("{expr}[{t}:0] % {bits}'d{k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_only_module_names() {
        let v =
            "module top(clock, stop);\n  top$ctl ctl(.clock(clock));\nendmodule\nmodule top$ctl(clock);\n  reg top_x, laptop;\nendmodule\n";
        let r = rename_top(v, "systole_top");
        assert_eq!(
            r,
            "module systole_top(clock, stop);\n  systole_top$ctl ctl(.clock(clock));\nendmodule\nmodule systole_top$ctl(clock);\n  reg top_x, laptop;\nendmodule\n"
        );
    }

    #[test]
    fn constant_products_are_shifts_and_sums() {
        assert_eq!(times("beat", 0, 32), "32'd0");
        assert_eq!(times("beat", 1, 32), "(32'd0 + ((beat) << 0))");
        assert_eq!(times("n", 5, 16), "(16'd0 + ((n) << 0) + ((n) << 2))");
    }

    #[test]
    fn divisions_by_powers_of_two_are_slices() {
        assert_eq!(div_rem("e", 8, 4), ("e[7:2]".to_string(), "e[1:0]".to_string()));
        assert_eq!(div_rem("e", 8, 1), ("e[7:0]".to_string(), "8'd0".to_string()));
        assert_eq!(div_rem("e", 8, 6), ("e[7:0] / 8'd6".to_string(), "e[7:0] % 8'd6".to_string()));
    }
}
