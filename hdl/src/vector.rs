//! The vector unit (docs/ARCHITECTURE.md sections 4 and 5): `Vector` ops beside the array,
//! through `V` lanes that each hold a copy of the 512-entry table memory.
//!
//! A `Vector` op reads, for each output `o < count`, the words of its window shifted by
//! `o * stride`, each word for `P = vector_width / V` cycles (one pass per group of `V`
//! lanes), looks every byte up in table 0 (the window's first word) or table 1 (the
//! others) and reduces the values per column, by sum (wrapping) or maximum; the row is
//! written to accumulator row `acc + o`, columns from `vector_width` on zero.
//!
//! ```text
//!  cycle c     c+1                    c+2                         c+3
//!  act read -> V lanes of the pass -> table read -> reduction -> (last word) row issued
//!              (word register shifts   (each lane's    into the     to the accumulator,
//!               V lanes per pass)       copy)          rotating row  values a cycle later
//! ```
//!
//! The engine registers its start: the reads run from the cycle after the start for
//! `window.len() * count * P` cycles (one idle cycle for an op without words), and the op
//! completes `ArchConfig::vector_latency() - 1` cycles after the last, so its `done` is
//! the model's `start + busy + latency`; the last row's write, issued two cycles after the
//! last read, is in the accumulator (`acc_stages` later) by then. The engine is not
//! `ready` until its op completes: the exec op after a `Vector` starts at its `done`, as
//! the model has it (and the controller starts a `Vector` only when the array's ops have
//! completed).
//!
//! The row register rotates by `V` lanes per pass: the `V` lanes at its bottom are the
//! pass's columns, which the reduction takes and puts back at its top, so after the `P`
//! passes of a word the row is in column order again. Written once, as an `hdl_gen`
//! kernel that rust-hdl simulates and emits.

use crate::delay::Delay;
use crate::fields::MatmulFields;
use crate::sram::{SyncRam, ADDR_BITS};
use crate::wiring::{signals, Router};
use crate::wordseq::WordSeq;
use rust_hdl::prelude::*;
use systole_core::arch::VECTOR_TABLE_ENTRIES;

type Addr = Bits<ADDR_BITS>;

/// The vector unit for `rows x cols` PEs with `lanes` lanes.
#[derive(LogicBlock)]
pub struct VectorEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the `Vector` op on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// Its window (`a.*`) and first accumulator row (`acc`).
    pub fields: Signal<In, MatmulFields>,
    /// Its output count, stride and reduction (`max`, bit 0), as the controller decodes
    /// them (`controller::vector_field_index`).
    pub count: Signal<In, Bits<32>>,
    /// See `count`.
    pub stride_field: Signal<In, Bits<32>>,
    /// See `count`.
    pub max_field: Signal<In, Bits<32>>,
    /// The engine may start an op in this cycle.
    pub ready: Signal<Out, Bit>,
    /// An op completes: its rows are visible from the next cycle.
    pub complete: Signal<Out, Bit>,
    /// Table write (the load unit's `LoadTable`): entry `table_entry` of every lane's copy.
    pub table_we: Signal<In, Bit>,
    /// The entry.
    pub table_entry: Signal<In, Addr>,
    /// Its value.
    pub table_data: Signal<In, Bits<32>>,
    /// The engine reads the activation scratchpad in this cycle...
    pub act_on: Signal<Out, Bit>,
    /// ... at this word.
    pub act_raddr: Signal<Out, Addr>,
    /// The word read in the previous cycle (the first `vector_width` lanes are used).
    pub act_rdata: Vec<Signal<In, Signed<8>>>,
    /// An accumulator row is issued (overwritten).
    pub acc_issue: Signal<Out, Bit>,
    /// Its row.
    pub acc_addr: Signal<Out, Addr>,
    /// Its values, a cycle after the issue, one per column.
    pub acc_input: Vec<Signal<Out, Signed<32>>>,
    /// The window's words of the current output.
    seq: WordSeq,
    /// Start the window of the next output in this cycle.
    kick: DFF<Bit>,
    /// An op has started and not completed.
    engaged: DFF<Bit>,
    /// The started op has no word: its one busy cycle is this one.
    empty: DFF<Bit>,
    /// The op's fields, held.
    ic: DFF<Addr>,
    is: DFF<Addr>,
    oc: DFF<Addr>,
    os: DFF<Addr>,
    stride: DFF<Addr>,
    max: DFF<Bit>,
    /// Outputs after the current one.
    outputs_left: DFF<Bits<24>>,
    /// The current output's first window word and accumulator row.
    base: DFF<Addr>,
    row: DFF<Addr>,
    /// The pass of the word read in this cycle, `0..P`.
    pass: DFF<Bits<16>>,
    last_pass: Constant<Bits<16>>,
    /// The word read next is its window's first.
    first: DFF<Bit>,
    /// The window's last read (its last word's last pass) is in this cycle.
    window_end: Signal<Local, Bit>,
    /// Stage 1 (the read's data): valid, first word, first pass, last read, row.
    s1_valid: DFF<Bit>,
    s1_first: DFF<Bit>,
    s1_pass0: DFF<Bit>,
    s1_last: DFF<Bit>,
    s1_row: DFF<Addr>,
    /// Stage 2 (the tables' data).
    s2_valid: DFF<Bit>,
    s2_first: DFF<Bit>,
    s2_last: DFF<Bit>,
    s2_row: DFF<Addr>,
    /// The word's lanes for the passes after its first, shifted down `V` lanes per pass.
    word: Vec<DFF<Signed<8>>>,
    /// `lane l <- lane l + V` of the read word, and of the word register.
    read_shift: Router<Signed<8>>,
    word_shift: Router<Signed<8>>,
    /// The pass's `V` bytes.
    x: Vec<Signal<Local, Signed<8>>>,
    /// The pass's bytes as table entries.
    entry: Vec<TableEntry>,
    /// Each lane's copy of the tables.
    tables: Vec<SyncRam<Bits<32>>>,
    /// The row of the output being reduced, rotating `V` lanes per pass.
    reduced_row: Vec<DFF<Bits<32>>>,
    /// `lane l <- lane l + V` of the row, and the pass's `V` reduced values to its top
    /// `V` lanes (zero elsewhere).
    row_shift: Router<Bits<32>>,
    to_top: Router<Bits<32>>,
    /// The pass's reduced values.
    reduced: Vec<Signal<Local, Bits<32>>>,
    /// Bit 31: a signed comparison as an unsigned one of the values with it flipped.
    sign: Constant<Bits<32>>,
    /// The row's columns to the accumulator's (zero from `vector_width` on).
    to_cols: Router<Bits<32>>,
    /// The last read, `latency - 1` cycles later: the completion.
    closing: Delay<Bit>,
    ended: Signal<Local, Bit>,
}

impl VectorEngine {
    /// The vector unit of `lanes` lanes (a divisor of `min(rows, cols)`) beside `rows x
    /// cols` PEs, whose ops complete `latency` (at least 4 plus the accumulator's stages)
    /// cycles after their last busy cycle.
    pub fn new(rows: usize, cols: usize, lanes: usize, latency: usize) -> Self {
        let width = rows.min(cols);
        assert!(lanes > 0 && width.is_multiple_of(lanes), "{lanes} vector lanes for a width of {width}");
        assert!(latency >= 4, "a vector latency of {latency}");
        let passes = width / lanes;
        assert!(passes <= 1 << 16, "{passes} passes per word");
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            count: Default::default(),
            stride_field: Default::default(),
            max_field: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            table_we: Default::default(),
            table_entry: Default::default(),
            table_data: Default::default(),
            act_on: Default::default(),
            act_raddr: Default::default(),
            act_rdata: signals(rows),
            acc_issue: Default::default(),
            acc_addr: Default::default(),
            acc_input: signals(cols),
            seq: Default::default(),
            kick: Default::default(),
            engaged: Default::default(),
            empty: Default::default(),
            ic: Default::default(),
            is: Default::default(),
            oc: Default::default(),
            os: Default::default(),
            stride: Default::default(),
            max: Default::default(),
            outputs_left: Default::default(),
            base: Default::default(),
            row: Default::default(),
            pass: Default::default(),
            last_pass: Constant::new(((passes - 1) as u64).into()),
            first: Default::default(),
            window_end: Default::default(),
            s1_valid: Default::default(),
            s1_first: Default::default(),
            s1_pass0: Default::default(),
            s1_last: Default::default(),
            s1_row: Default::default(),
            s2_valid: Default::default(),
            s2_first: Default::default(),
            s2_last: Default::default(),
            s2_row: Default::default(),
            word: signals(width),
            read_shift: shift(width, lanes),
            word_shift: shift(width, lanes),
            x: signals(lanes),
            entry: signals(lanes),
            tables: (0..lanes).map(|_| SyncRam::new(VECTOR_TABLE_ENTRIES).without_collisions()).collect(),
            reduced_row: signals(width),
            row_shift: shift(width, lanes),
            to_top: Router::new(lanes, (0..width).map(|l| l.checked_sub(width - lanes)).collect()),
            reduced: signals(lanes),
            sign: Constant::new((1u64 << 31).into()),
            to_cols: Router::new(width, (0..cols).map(|j| (j < width).then_some(j)).collect()),
            closing: Delay::new(latency - 1),
            ended: Default::default(),
        }
    }
}

/// The table entry of a byte: `256 * second + x`, `x` the byte as unsigned.
#[derive(LogicBlock)]
pub struct TableEntry {
    /// The byte (not named `byte`, a SystemVerilog keyword).
    pub x: Signal<In, Signed<8>>,
    /// Table 1 (a window's later words) rather than table 0.
    pub second: Signal<In, Bit>,
    /// The entry.
    pub entry: Signal<Out, Addr>,
    table1: Constant<Addr>,
}

impl Default for TableEntry {
    fn default() -> Self {
        Self { x: Default::default(), second: Default::default(), entry: Default::default(), table1: Constant::new(256.into()) }
    }
}

impl Logic for TableEntry {
    #[hdl_gen]
    fn update(&mut self) {
        if self.second.val() {
            self.entry.next = bit_cast::<ADDR_BITS, 8>(unsigned_cast(self.x.val())) | self.table1.val();
        } else {
            self.entry.next = bit_cast::<ADDR_BITS, 8>(unsigned_cast(self.x.val()));
        }
    }
}

/// `width` lanes, lane `l` taking lane `l + lanes` of `width` inputs (zero beyond them).
fn shift<T: Synth>(width: usize, lanes: usize) -> Router<T> {
    Router::new(width, (0..width).map(|l| (l + lanes < width).then_some(l + lanes)).collect())
}

impl Logic for VectorEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            kick,
            engaged,
            empty,
            ic,
            is,
            oc,
            os,
            stride,
            max,
            outputs_left,
            base,
            row,
            pass,
            first,
            s1_valid,
            s1_first,
            s1_pass0,
            s1_last,
            s1_row,
            s2_valid,
            s2_first,
            s2_last,
            s2_row
        );
        // Stage 0: the window's words, each for `P` passes.
        self.seq.clock.next = self.clock.val();
        self.seq.start.next = self.kick.q.val();
        self.seq.first_addr.next = self.base.q.val();
        self.seq.inner_count.next = self.ic.q.val();
        self.seq.inner_stride.next = self.is.q.val();
        self.seq.outer_count.next = self.oc.q.val();
        self.seq.outer_stride.next = self.os.q.val();
        self.seq.enable.next = self.pass.q.val() == self.last_pass.val();
        self.act_on.next = self.seq.pending.val();
        self.act_raddr.next = self.seq.addr.val();
        self.window_end.next = self.seq.pending.val() & (self.pass.q.val() == self.last_pass.val()) & !self.seq.more.val();
        self.kick.d.next = false;
        self.s1_valid.d.next = self.seq.pending.val();
        self.s1_first.d.next = self.first.q.val();
        self.s1_pass0.d.next = self.pass.q.val() == 0;
        self.s1_last.d.next = self.window_end.val();
        self.s1_row.d.next = self.row.q.val();
        self.ended.next = self.empty.q.val();
        self.empty.d.next = false;
        if self.seq.pending.val() {
            if self.pass.q.val() == self.last_pass.val() {
                self.pass.d.next = 0.into();
                self.first.d.next = false;
            } else {
                self.pass.d.next = self.pass.q.val() + 1;
            }
        }
        if self.window_end.val() {
            self.first.d.next = true;
            if self.outputs_left.q.val() == 0 {
                self.ended.next = true;
            } else {
                self.kick.d.next = true;
                self.outputs_left.d.next = self.outputs_left.q.val() - 1;
                self.base.d.next = self.base.q.val() + self.stride.q.val();
                self.row.d.next = self.row.q.val() + 1;
            }
        }
        self.closing.clock.next = self.clock.val();
        self.closing.data_in.next = self.ended.val();
        self.complete.next = self.closing.data_out.val();
        self.ready.next = !self.engaged.q.val();
        if self.closing.data_out.val() {
            self.engaged.d.next = false;
        }
        if self.start.val() & !self.engaged.q.val() {
            self.engaged.d.next = true;
            self.ic.d.next = self.fields.val().a_inner_count;
            self.is.d.next = self.fields.val().a_inner_stride;
            self.oc.d.next = self.fields.val().a_outer_count;
            self.os.d.next = self.fields.val().a_outer_stride;
            self.base.d.next = self.fields.val().a_start;
            self.row.d.next = self.fields.val().acc;
            self.stride.d.next = bit_cast::<ADDR_BITS, 32>(self.stride_field.val());
            self.max.d.next = self.max_field.val().get_bit(0);
            self.outputs_left.d.next = bit_cast::<24, 32>(self.count.val()) - 1;
            self.pass.d.next = 0.into();
            self.first.d.next = true;
            if (self.count.val() == 0) | (self.fields.val().a_inner_count == 0) | (self.fields.val().a_outer_count == 0) {
                self.empty.d.next = true;
            } else {
                self.kick.d.next = true;
            }
        }

        // Stage 1: the pass's lanes of the word, looked up in each lane's tables.
        self.s2_valid.d.next = self.s1_valid.q.val();
        self.s2_first.d.next = self.s1_first.q.val();
        self.s2_last.d.next = self.s1_last.q.val();
        self.s2_row.d.next = self.s1_row.q.val();
        for l in 0..self.word.len() {
            self.word[l].clock.next = self.clock.val();
            self.read_shift.inputs[l].next = self.act_rdata[l].val();
            self.word_shift.inputs[l].next = self.word[l].q.val();
            if self.s1_pass0.q.val() {
                self.word[l].d.next = self.read_shift.outputs[l].val();
            } else {
                self.word[l].d.next = self.word_shift.outputs[l].val();
            }
        }
        for k in 0..self.x.len() {
            if self.s1_pass0.q.val() {
                self.x[k].next = self.act_rdata[k].val();
            } else {
                self.x[k].next = self.word[k].q.val();
            }
            self.tables[k].clock.next = self.clock.val();
            self.tables[k].write_enable.next = self.table_we.val();
            self.tables[k].write_address.next = self.table_entry.val();
            self.tables[k].write_data.next = self.table_data.val();
            self.entry[k].x.next = self.x[k].val();
            self.entry[k].second.next = !self.s1_first.q.val();
            self.tables[k].read_address.next = self.entry[k].entry.val();
        }

        // Stage 2: the reduction into the rotating row, and the row's issue after its
        // window's last read.
        for k in 0..self.reduced.len() {
            if self.s2_first.q.val() {
                self.reduced[k].next = self.tables[k].read_data.val();
            } else if self.max.q.val() {
                if (self.tables[k].read_data.val() ^ self.sign.val()) > (self.reduced_row[k].q.val() ^ self.sign.val()) {
                    self.reduced[k].next = self.tables[k].read_data.val();
                } else {
                    self.reduced[k].next = self.reduced_row[k].q.val();
                }
            } else {
                self.reduced[k].next = self.reduced_row[k].q.val() + self.tables[k].read_data.val();
            }
            self.to_top.inputs[k].next = self.reduced[k].val();
        }
        for l in 0..self.reduced_row.len() {
            self.reduced_row[l].clock.next = self.clock.val();
            self.reduced_row[l].d.next = self.reduced_row[l].q.val();
            self.row_shift.inputs[l].next = self.reduced_row[l].q.val();
            self.to_cols.inputs[l].next = self.reduced_row[l].q.val();
            if self.s2_valid.q.val() {
                self.reduced_row[l].d.next = self.row_shift.outputs[l].val() | self.to_top.outputs[l].val();
            }
        }
        self.acc_issue.next = self.s2_valid.q.val() & self.s2_last.q.val();
        self.acc_addr.next = self.s2_row.q.val();
        for j in 0..self.acc_input.len() {
            self.acc_input[j].next = signed_cast(self.to_cols.outputs[j].val());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::{clock_cycle, settle};

    /// A small deterministic generator (the cases need variety, not statistics).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// One `Vector` op: window `(start, inner_count, inner_stride, outer_count,
    /// outer_stride)`, `count`, `stride`, `acc`, `max`.
    #[derive(Clone, Copy, Debug)]
    struct Op {
        window: [u64; 5],
        count: u64,
        stride: u64,
        acc: u64,
        max: bool,
    }

    impl Op {
        fn words(&self) -> Vec<u64> {
            let [s, ic, is, oc, os] = self.window;
            (0..oc).flat_map(|o| (0..ic).map(move |i| s + o * os + i * is)).collect()
        }
    }

    /// The rows the ISA says `op` writes (docs/ARCHITECTURE.md section 4), by hand.
    fn expected(op: &Op, act: &[Vec<i8>], table: &[i32], width: usize, cols: usize) -> Vec<(u64, Vec<i32>)> {
        (0..op.count)
            .map(|o| {
                let mut row = vec![0i32; cols];
                for (w, word) in op.words().into_iter().enumerate() {
                    let word = &act[(word + o * op.stride) as usize];
                    for j in 0..width {
                        let v = table[if w == 0 { 0 } else { 256 } + word[j] as u8 as usize];
                        row[j] = match (w, op.max) {
                            (0, _) => v,
                            (_, true) => row[j].max(v),
                            (_, false) => row[j].wrapping_add(v),
                        };
                    }
                }
                (op.acc + o, row)
            })
            .collect()
    }

    /// Runs `op` on an engine of `rows x cols`, `lanes` lanes and `latency`, with `table`
    /// loaded and the activation words `act`: the rows written, in order, and the cycle of
    /// the completion (the op starts in cycle 0).
    fn run(dims: (usize, usize, usize, usize), op: &Op, act: &[Vec<i8>], table: &[i32]) -> (Vec<(u64, Vec<i32>)>, u64) {
        let (rows, cols, lanes, latency) = dims;
        let mut e = VectorEngine::new(rows, cols, lanes, latency);
        e.connect_all();
        settle(&mut e);
        for (i, &v) in table.iter().enumerate() {
            e.table_we.next = true;
            e.table_entry.next = (i as u64).into();
            e.table_data.next = (v as u32 as u64).into();
            settle(&mut e);
            clock_cycle(&mut e, |e| &mut e.clock);
        }
        e.table_we.next = false;
        let [s, ic, is, oc, os] = op.window;
        e.fields.next = MatmulFields {
            a_start: s.into(),
            a_inner_count: ic.into(),
            a_inner_stride: is.into(),
            a_outer_count: oc.into(),
            a_outer_stride: os.into(),
            acc: op.acc.into(),
            ..Default::default()
        };
        e.count.next = op.count.into();
        e.stride_field.next = op.stride.into();
        e.max_field.next = (op.max as u64).into();
        let (mut written, mut complete) = (vec![], None);
        let (mut word, mut issued): (Vec<i8>, Option<u64>) = (vec![0; rows], None);
        for cycle in 0..2000u64 {
            e.start.next = cycle == 0;
            for (k, &b) in word.iter().enumerate() {
                e.act_rdata[k].next = (b as i64).into();
            }
            settle(&mut e);
            assert_eq!(e.ready.val(), cycle == 0 || complete.is_some_and(|c| cycle > c), "ready in cycle {cycle}");
            if let Some(row) = issued.take() {
                let values = (0..cols).map(|j| e.acc_input[j].val().bigint().try_into().expect("an int32")).collect();
                written.push((row, values));
            }
            if e.acc_issue.val() {
                issued = Some(e.acc_addr.val().to_u64());
            }
            word = if e.act_on.val() { act[e.act_raddr.val().to_u64() as usize].clone() } else { vec![0; rows] };
            if e.complete.val() {
                assert!(complete.is_none(), "a second completion in cycle {cycle}");
                complete = Some(cycle);
            }
            clock_cycle(&mut e, |e| &mut e.clock);
            if complete.is_some_and(|c| cycle > c + 3) {
                break;
            }
        }
        (written, complete.expect("the op completes"))
    }

    #[test]
    fn vector_ops_write_the_rows_of_their_definition_and_complete_on_the_model_cycle() {
        let mut g = Lcg(7);
        for (case, &(rows, cols, lanes, latency)) in
            [(4, 4, 4, 4), (4, 4, 2, 4), (4, 4, 1, 5), (8, 4, 2, 4), (4, 8, 1, 7), (2, 2, 2, 4)].iter().enumerate()
        {
            for n in 0..6 {
                let width = rows.min(cols);
                let act: Vec<Vec<i8>> = (0..64).map(|_| (0..rows).map(|_| g.next(256) as u8 as i8).collect()).collect();
                // Small values make the sums' order visible; a few large ones their wrapping.
                let table: Vec<i32> =
                    (0..512).map(|_| if g.next(8) == 0 { (g.next(1 << 32) as u32) as i32 } else { g.next(200) as i32 - 100 }).collect();
                let op = Op {
                    window: [g.next(8), 1 + g.next(3), g.next(3), 1 + g.next(2), g.next(5)],
                    count: if n == 5 { 0 } else { 1 + g.next(4) },
                    stride: g.next(4),
                    acc: g.next(16),
                    max: n % 2 == 1,
                };
                let (written, complete) = run((rows, cols, lanes, latency), &op, &act, &table);
                assert_eq!(written, expected(&op, &act, &table, width, cols), "case {case}.{n}: {op:?}");
                let busy = (op.words().len() as u64 * op.count * (width / lanes) as u64).max(1);
                assert_eq!(complete + 1, busy + latency as u64, "case {case}.{n}: done = start + busy + latency");
            }
        }
    }
}
