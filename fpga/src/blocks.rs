//! Where the logic goes: the synthesized netlist's cells counted per block of the design
//! hierarchy.
//!
//! Yosys flattens the design but keeps a `$scopeinfo` cell per instance, with the module's
//! source range. A cell belongs to the deepest instance whose source range holds its `src`
//! line; ABC's LUTs carry no `src`, and belong to the deepest instance that prefixes their
//! name (Yosys names them after the net they drive, which carries the instance path).

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// The cells of one block, counted with everything below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockCells {
    /// The instance path, `core.acc.st.rq$0`; the empty path is the whole design.
    pub path: String,
    /// Look-up tables (`SB_LUT4`, `LUT4`).
    pub luts: u32,
    /// Carry cells (`SB_CARRY`, `CCU2C`, which holds two LUTs on ECP5).
    pub carries: u32,
    /// Flip-flops.
    pub ffs: u32,
    /// Block and single-port RAMs.
    pub rams: u32,
    /// Multipliers (`SB_MAC16`, `MULT18X18D`).
    pub dsps: u32,
}

impl BlockCells {
    fn add(&mut self, kind: &str) {
        match kind {
            "SB_LUT4" | "LUT4" => self.luts += 1,
            "SB_CARRY" | "CCU2C" => self.carries += 1,
            "SB_RAM40_4K" | "SB_SPRAM256KA" | "DP16KD" => self.rams += 1,
            "SB_MAC16" | "MULT18X18D" => self.dsps += 1,
            k if k.contains("DFF") || k == "TRELLIS_FF" => self.ffs += 1,
            _ => {}
        }
    }

    fn merge(&mut self, o: &Self) {
        self.luts += o.luts;
        self.carries += o.carries;
        self.ffs += o.ffs;
        self.rams += o.rams;
        self.dsps += o.dsps;
    }
}

/// Why a netlist could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetlistError {
    /// Not JSON.
    #[error("the netlist is not Yosys JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No module holds `$scopeinfo` cells: synthesized without `flatten`'s scope records.
    #[error("the netlist has no flattened top module with scope records ($scopeinfo cells)")]
    NoScopes,
}

/// The first line in `file` of a Yosys `src` attribute, `design.v:120.5-121.8|...`; the
/// attribute may also, or only, name Yosys's own techmap files.
fn src_line(src: &str, file: &str) -> Option<u32> {
    let (_, at) = src.split('|').find_map(|s| s.rsplit_once(':').filter(|(f, _)| *f == file))?;
    at.split('.').next()?.parse().ok()
}

/// The deepest instance in `scopes` whose path prefixes the cell or net name `name`.
fn scope_of<'a>(scopes: &HashSet<&str>, name: &'a str) -> Option<&'a str> {
    let mut end = name.len();
    loop {
        let prefix = &name[..end];
        if scopes.contains(prefix) {
            return Some(prefix);
        }
        end = prefix.rfind(['.', '$'])?;
    }
}

/// Every block of the flattened netlist `json` (Yosys `write_json`) with its cells,
/// counted with its sub-blocks, in path order; the first entry (path `""`) is the whole
/// design.
pub fn cells_by_block(json: &str) -> Result<Vec<BlockCells>, NetlistError> {
    let netlist: serde_json::Value = serde_json::from_str(json)?;
    let cells = netlist["modules"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|m| m["cells"].as_object())
        .find(|cells| cells.values().any(|c| c["type"] == "$scopeinfo"))
        .ok_or(NetlistError::NoScopes)?;
    // (first line, last line, path) of each instance's module; instances of one module
    // share a range, so the line only decides when it is unique.
    let mut ranges: Vec<(u32, u32, &str)> = vec![];
    let mut scopes = HashSet::new();
    let scope_src = |c: &serde_json::Value| c["attributes"]["module_src"].as_str().unwrap_or_default().to_string();
    let design_file = cells.values().find(|c| c["type"] == "$scopeinfo").map(scope_src).unwrap_or_default();
    let design_file = design_file.rsplit_once(':').map_or("", |(f, _)| f).to_string();
    for (name, cell) in cells.iter().filter(|(_, c)| c["type"] == "$scopeinfo") {
        scopes.insert(name.as_str());
        let src = scope_src(cell);
        let last = src.rsplit_once('-').and_then(|(_, e)| e.split('.').next()?.parse().ok());
        if let (Some(first), Some(last)) = (src_line(&src, &design_file), last) {
            ranges.push((first, last, name));
        }
    }
    let mut shared = HashSet::new();
    ranges.sort();
    for w in ranges.windows(2) {
        if (w[0].0, w[0].1) == (w[1].0, w[1].1) {
            shared.insert((w[0].0, w[0].1));
        }
    }
    let by_line = |line: u32| {
        // The innermost range holding the line: modules do not nest in the file, so at
        // most one does.
        let i = ranges.partition_point(|r| r.0 <= line).checked_sub(1)?;
        let (first, last, path) = ranges[i];
        (line <= last && !shared.contains(&(first, last))).then_some(path)
    };
    let mut own: BTreeMap<&str, BlockCells> = BTreeMap::new();
    for (name, cell) in cells {
        let kind = cell["type"].as_str().unwrap_or_default();
        if kind == "$scopeinfo" {
            continue;
        }
        let src = cell["attributes"]["src"].as_str().and_then(|s| src_line(s, &design_file));
        let path = src.and_then(by_line).or_else(|| scope_of(&scopes, name)).unwrap_or("");
        own.entry(path).or_default().add(kind);
    }
    let mut total: BTreeMap<String, BlockCells> = BTreeMap::new();
    total.insert(String::new(), BlockCells::default());
    for scope in &scopes {
        total.entry(scope.to_string()).or_default();
    }
    for (path, cells) in &own {
        let mut p = *path;
        loop {
            total.entry(p.to_string()).or_default().merge(cells);
            if p.is_empty() {
                break;
            }
            p = p.rsplit_once('.').map_or("", |(parent, _)| parent);
        }
    }
    Ok(total.into_iter().map(|(path, c)| BlockCells { path, ..c }).collect())
}

/// The blocks of `blocks` (from [`cells_by_block`]) that hold at least `min_share` of the
/// design's LUTs, as an indented table: each block under its parent, largest first.
pub fn table(blocks: &[BlockCells], min_share: f64) -> String {
    let Some(all) = blocks.iter().find(|b| b.path.is_empty()) else { return String::new() };
    let min = (f64::from(all.luts) * min_share).ceil().max(1.0) as u32;
    let mut t = format!("{:<44} {:>6} {:>6} {:>6} {:>5} {:>5}\n", "block", "LUT", "carry", "FF", "RAM", "DSP");
    fn rows(blocks: &[BlockCells], parent: &str, depth: usize, min: u32, t: &mut String) {
        let mut children: Vec<&BlockCells> = blocks
            .iter()
            .filter(|b| !b.path.is_empty() && b.path.rsplit_once('.').map_or("", |(p, _)| p) == parent && b.luts >= min)
            .collect();
        children.sort_by(|a, b| b.luts.cmp(&a.luts).then(a.path.cmp(&b.path)));
        for b in children {
            let name = format!("{}{}", "  ".repeat(depth), b.path.rsplit('.').next().unwrap_or_default());
            let _ = writeln!(t, "{name:<44} {:>6} {:>6} {:>6} {:>5} {:>5}", b.luts, b.carries, b.ffs, b.rams, b.dsps);
            rows(blocks, &b.path, depth + 1, min, t);
        }
    }
    let _ = writeln!(t, "{:<44} {:>6} {:>6} {:>6} {:>5} {:>5}", "(all)", all.luts, all.carries, all.ffs, all.rams, all.dsps);
    rows(blocks, "", 1, min, &mut t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made netlist: `top` holds instance `a` (module lines 10-20) with `a.b`
    /// (lines 30-40) below it; ABC LUTs without `src` are placed by name.
    const NETLIST: &str = r#"{"modules": {"top": {"cells": {
        "a": {"type": "$scopeinfo", "attributes": {"module_src": "design.v:10.1-20.10"}},
        "a.b": {"type": "$scopeinfo", "attributes": {"module_src": "design.v:30.1-40.10"}},
        "a$q_SB_DFF_Q": {"type": "SB_DFF", "attributes": {"src": "design.v:35.5-35.9|/share/ice40/ff_map.v:2.1"}},
        "a.b$x_SB_LUT4_O": {"type": "SB_LUT4", "attributes": {"src": "/share/ice40/cells_map.v:17.34-18.52"}},
        "a$y_SB_LUT4_O": {"type": "SB_LUT4", "attributes": {}},
        "a.b.deep$z_SB_CARRY_CO": {"type": "SB_CARRY", "attributes": {"src": "design.v:12.1-12.2"}},
        "$abc$1$lut": {"type": "SB_LUT4", "attributes": {}},
        "m": {"type": "SB_MAC16", "attributes": {"src": "design.v:31.1-31.2"}}
    }}}}"#;

    #[test]
    fn cells_go_to_the_block_of_their_source_line_or_name() {
        let blocks = cells_by_block(NETLIST).unwrap();
        let get = |p: &str| blocks.iter().find(|b| b.path == p).unwrap().clone();
        // The flip-flop is named after a's net but its source is b's module; the carry the
        // other way round.
        assert_eq!(get("a.b"), BlockCells { path: "a.b".into(), luts: 1, ffs: 1, dsps: 1, ..Default::default() });
        assert_eq!(get("a"), BlockCells { path: "a".into(), luts: 2, carries: 1, ffs: 1, dsps: 1, ..Default::default() });
        assert_eq!(get(""), BlockCells { luts: 3, carries: 1, ffs: 1, dsps: 1, ..Default::default() });
        let t = table(&blocks, 0.3);
        assert!(t.contains("(all)") && t.lines().any(|l| l.starts_with("  a ")) && t.lines().any(|l| l.starts_with("    b ")), "{t}");
        // b holds one LUT of three.
        assert!(!table(&blocks, 0.34).contains("    b "));
    }

    #[test]
    fn a_netlist_without_scopes_is_refused() {
        assert!(matches!(cells_by_block(r#"{"modules": {"top": {"cells": {}}}}"#), Err(NetlistError::NoScopes)));
        assert!(matches!(cells_by_block("not json"), Err(NetlistError::Json(_))));
    }
}
