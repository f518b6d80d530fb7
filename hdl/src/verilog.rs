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

#[cfg(test)]
mod tests {
    use super::rename_top;

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
}
