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
/// `name` (an identifier), so that the design can sit beside other modules. Only module
/// names are renamed, where the syntax has one: after `module`, after `endmodule //`, and
/// as the first word of an instantiation (`top$ctl ctl(`); a signal or constant that
/// happens to be called `top` (or a sub-block's stub `top$d`) keeps its name.
pub fn rename_top(verilog: &str, name: &str) -> String {
    let renamed = |word: &str| match word.strip_prefix("top") {
        Some(rest) if rest.is_empty() || rest.starts_with('$') => Some(format!("{name}{rest}")),
        _ => None,
    };
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(verilog.len() + 1024);
    for line in verilog.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (prefix, rest) = if let Some(rest) = body.strip_prefix("module ") {
            ("module ", rest)
        } else if let Some(rest) = body.strip_prefix("endmodule // ") {
            ("endmodule // ", rest)
        } else {
            ("", body)
        };
        let word_end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_end);
        let is_instance = || {
            let inst = tail.strip_prefix(' ').unwrap_or("");
            let inst_end = inst.find(|c: char| !ident(c)).unwrap_or(inst.len());
            inst_end > 0 && inst[inst_end..].trim_start().starts_with('(')
        };
        match renamed(word) {
            Some(new) if !prefix.is_empty() || is_instance() => {
                out.push_str(indent);
                out.push_str(prefix);
                out.push_str(&new);
                out.push_str(tail);
            }
            _ => out.push_str(line),
        }
    }
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

/// `expr / k` and `expr % k` for the low `bits` bits of `expr`, each `bits` wide: bit
/// slices when `k` is a power of two, else calls of the lookup functions
/// [`div_rem_functions`] declares (a ROM of `2^bits` entries is a few LUT levels, where a
/// divider is a chain of `bits` subtractions).
pub fn div_rem(expr: &str, bits: usize, k: usize) -> (String, String) {
    let t = bits - 1;
    match k.trailing_zeros() as usize {
        0 if k == 1 => (format!("{expr}[{t}:0]"), format!("{bits}'d0")),
        s if k.is_power_of_two() && s <= t => (format!("{expr}[{t}:{s}]"), format!("{{{}'d0, {expr}[{}:0]}}", bits - s, s - 1)),
        _ if bits > MAX_TABLE_BITS => (format!("{{{expr}[{t}:0] / {bits}'d{k}}}"), format!("{{{expr}[{t}:0] % {bits}'d{k}}}")),
        _ => (format!("div{k}_{bits}({expr}[{t}:0])"), format!("rem{k}_{bits}({expr}[{t}:0])")),
    }
}

/// Widest operand [`div_rem`] divides through a lookup table; wider ones get a divider.
pub const MAX_TABLE_BITS: usize = 12;

/// The module-level declarations [`div_rem`]`(_, bits, k)` needs: none when `k` is a power
/// of two, else the quotient and remainder lookup functions.
pub fn div_rem_functions(bits: usize, k: usize) -> String {
    if (k.is_power_of_two() && (k.trailing_zeros() as usize) < bits) || bits > MAX_TABLE_BITS {
        return String::new();
    }
    let t = bits - 1;
    let mut v = String::new();
    for (name, f) in [("div", (|x: usize, k: usize| x / k) as fn(usize, usize) -> usize), ("rem", |x, k| x % k)] {
        v += &format!("function [{t}:0] {name}{k}_{bits};\n    input [{t}:0] x;\n    case (x)\n");
        for x in 0..1usize << bits {
            v += &format!("        {bits}'d{x}: {name}{k}_{bits} = {bits}'d{};\n", f(x, k));
        }
        v += &format!("        default: {name}{k}_{bits} = {bits}'d0;\n    endcase\nendfunction\n");
    }
    v
}

/// `(1 << bits) - 1`, `N` bits wide: a constant that sizes a register or counter of a
/// fixed-width `hdl_gen` kernel to `bits` (synthesis removes the bits it clears).
pub fn low_mask<const N: usize>(bits: usize) -> Bits<N> {
    (0..bits.min(N)).fold(Bits::<N>::default(), |m, k| m.replace_bit(k, true))
}

/// `x / k` and `x % k` of the low `bits` bits of `x`, combinational: a leaf whose Verilog is
/// [`div_rem`] (bit slices, or lookup functions up to [`MAX_TABLE_BITS`] bits).
#[derive(LogicBlock)]
pub struct ConstDivider {
    /// The dividend (its low `bits` bits).
    pub x: Signal<In, Bits<24>>,
    /// The quotient.
    pub q: Signal<Out, Bits<24>>,
    /// The remainder.
    pub r: Signal<Out, Bits<8>>,
    _bits: usize,
    _k: usize,
}

impl ConstDivider {
    /// A divider by `k` (1 to 255) of `bits`-bit numbers (1 to 24).
    pub fn new(bits: usize, k: usize) -> Self {
        assert!((1..=24).contains(&bits) && (1..256).contains(&k), "{bits}-bit division by {k}");
        Self { x: Default::default(), q: Default::default(), r: Default::default(), _bits: bits, _k: k }
    }
}

impl Logic for ConstDivider {
    fn update(&mut self) {
        let x = self.x.val().index() as u64 & ((1 << self._bits) - 1);
        self.q.next = (x / self._k as u64).into();
        self.r.next = (x % self._k as u64).into();
    }

    fn connect(&mut self) {
        self.q.connect();
        self.r.connect();
    }

    fn hdl(&self) -> Verilog {
        let (q, r) = div_rem("x", self._bits, self._k);
        Verilog::Custom(format!("{}always @(*) begin\n    q = {q};\n    r = {r};\nend\n", div_rem_functions(self._bits, self._k)))
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
    fn a_signal_called_top_keeps_its_name() {
        let v = "module top$csc(clock);\n    localparam  top = 16'h8;\n    reg  [7:0] top$d;\n    wire  top$q;\n    \
                 top$csc$top top(\n        .d(top$d)\n    );\n    always @(*) begin\n        top$d = x << top;\n    end\n\
                 endmodule // top$csc\n";
        let r = rename_top(v, "core");
        assert_eq!(
            r,
            "module core$csc(clock);\n    localparam  top = 16'h8;\n    reg  [7:0] top$d;\n    wire  top$q;\n    \
             core$csc$top top(\n        .d(top$d)\n    );\n    always @(*) begin\n        top$d = x << top;\n    end\n\
             endmodule // core$csc\n"
        );
    }

    #[test]
    fn an_emitted_design_differs_only_in_its_module_names() {
        let v = emit(&mut crate::csc::CscColumn::new(12));
        assert!(v.contains("localparam  top = 16'h8;"), "the column's constant `top` is gone");
        let r = rename_top(&v, "renamed_core");
        assert!(r.contains("module renamed_core(") && r.contains("localparam  top = 16'h8;"), "{r}");
        assert_eq!(r.replace("renamed_core", "top"), v);
    }

    #[test]
    fn constant_products_are_shifts_and_sums() {
        assert_eq!(times("beat", 0, 32), "32'd0");
        assert_eq!(times("beat", 1, 32), "(32'd0 + ((beat) << 0))");
        assert_eq!(times("n", 5, 16), "(16'd0 + ((n) << 0) + ((n) << 2))");
    }

    #[test]
    fn divisions_by_powers_of_two_are_slices() {
        assert_eq!(div_rem("e", 8, 4), ("e[7:2]".to_string(), "{6'd0, e[1:0]}".to_string()));
        assert_eq!(div_rem("e", 8, 1), ("e[7:0]".to_string(), "8'd0".to_string()));
        assert_eq!(div_rem("e", 8, 6), ("div6_8(e[7:0])".to_string(), "rem6_8(e[7:0])".to_string()));
        assert!(div_rem_functions(8, 4).is_empty());
        let f = div_rem_functions(3, 3);
        assert!(f.contains("function [2:0] div3_3;") && f.contains("3'd7: div3_3 = 3'd2;") && f.contains("3'd7: rem3_3 = 3'd1;"), "{f}");
    }
}
