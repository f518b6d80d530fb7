//! Processing elements: signed int8 x int8 products accumulated in int32.
//!
//! Weight-stationary PE `(k, j)` (docs/ARCHITECTURE.md sections 3 and 9):
//!
//! ```text
//!              w_in/w_valid_in/w_row_in   p_in
//!                         |                |
//!   a_in, flip_in --> [ shadow | active ] -(+ a*w)-> a_out, flip_out (registered)
//!                         |                |
//!             w_out/... (registered)     p_out (registered)
//! ```
//!
//! - The weight used this cycle is `shadow` when `flip_in` is set (the first activation of
//!   a new tile) and `active` otherwise; `active` takes that value.
//! - The weight bus carries `(w, row)` down the column; the PE whose row index matches
//!   captures `w` into `shadow`. A `clear` on the bus (the start of a CSC preload) zeroes
//!   every `shadow` it passes, ahead of the tile's nonzeros. A capture in the same cycle as a flip is safe: the flip
//!   reads the old `shadow`.
//! - `p_out = p_in + a_in * w` (int32, computed in the bits a partial sum of its row can
//!   have: [`partial_sum_bits`]), `a_out = a_in`, both one cycle later;
//!   with a product register (`ArchConfig::pe_stages = 1`), `a_in * w` is registered and
//!   added to the `p_in` of the next cycle, so `p_out` is two cycles after `a_in`; with
//!   operand registers too (`pe_stages = 2`) the multiplier takes the previous cycle's
//!   `a` and weight from the PE's own `a` and `active` registers, three cycles in all.
//! - In an array that skips sparse weights, `a_in` is a group of four activations and the
//!   weight carries a 2-bit index: the PE multiplies `a_in[index]` (a dense tile's index is
//!   the row's position in its group of four, so it multiplies its own lane).

use crate::dsp::DspProduct;
use rust_hdl::prelude::*;

/// Sign-extends `x` to `M` bits. In an `hdl_gen` kernel it translates, like rust-hdl's own
/// `signed_cast`, to Verilog `$signed(x)`, which the context extends. It exists because
/// rust-hdl 0.46's `signed_bit_cast` recurses without end on the most negative value.
pub fn signed_cast_widen<const M: usize, const N: usize>(x: Signed<N>) -> Signed<M> {
    Signed::<M>::from(x.bigint())
}

/// Widest array side the row tags can address.
pub const MAX_SIDE: usize = 256;

/// One weight-stationary processing element with `lanes` activation lanes: 1 for a dense
/// array, [`crate::pe::GROUP_LANES`] for an array that skips N:4 sparse weights, where the
/// row's bus carries a group of four activations and the PE multiplies the one its weight's
/// index selects (docs/ARCHITECTURE.md sections 3 and 9).
#[derive(LogicBlock)]
pub struct WsPe {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Activations from the left, one per lane.
    pub a_in: Vec<Signal<In, Signed<8>>>,
    /// First activation of a new tile: switch to the shadow weight.
    pub flip_in: Signal<In, Bit>,
    /// The packing of the tile the activation comes with. Bit 0: packed int4 weights, the
    /// weight byte is two int4 weights for lanes `index` and `index + 1`. Bit 1: int4 x
    /// int4, the 16-bit weight is four int4 weights for lanes 0..4, each activation taken
    /// as its low nibble.
    pub packed_in: Signal<In, Bits<2>>,
    /// Partial sum from above.
    pub p_in: Signal<In, Signed<32>>,
    /// Weight bus from above: value.
    pub w_in: Signal<In, Signed<8>>,
    /// Weight bus from above: the lane of the group the value multiplies.
    pub w_index_in: Signal<In, Bits<2>>,
    /// Weight bus from above: the value is valid.
    pub w_valid_in: Signal<In, Bit>,
    /// Weight bus from above: the row it is destined for.
    pub w_row_in: Signal<In, Bits<8>>,
    /// Weight bus from above: zero the shadow weight (the start of a CSC preload).
    pub w_clear_in: Signal<In, Bit>,
    /// Activations to the right.
    pub a_out: Vec<Signal<Out, Signed<8>>>,
    /// Flip to the right.
    pub flip_out: Signal<Out, Bit>,
    /// Packing to the right.
    pub packed_out: Signal<Out, Bits<2>>,
    /// Partial sum downwards.
    pub p_out: Signal<Out, Signed<32>>,
    /// Weight bus downwards: value.
    pub w_out: Signal<Out, Signed<8>>,
    /// Weight bus downwards: lane index.
    pub w_index_out: Signal<Out, Bits<2>>,
    /// Weight bus downwards: valid.
    pub w_valid_out: Signal<Out, Bit>,
    /// Weight bus downwards: row.
    pub w_row_out: Signal<Out, Bits<8>>,
    /// Weight bus downwards: clear.
    pub w_clear_out: Signal<Out, Bit>,
    /// The multiplier's left operand this cycle (the activation of lane 0), for a
    /// multiplier outside the PE ([`WsPe::use_external_multiplier`]).
    pub mul_a: Signal<Out, Bits<8>>,
    /// The multiplier's right operand this cycle (the weight).
    pub mul_b: Signal<Out, Bits<8>>,
    /// `mul_b` of the previous cycle, as the PE's own `active` register holds it: an
    /// outside multiplier with operand registers may take this instead of registering
    /// `mul_b` itself (so that the weight choice feeds only `active`).
    pub mul_b_q: Signal<Out, Bits<8>>,
    /// The weight the PE takes at its next flip (its `shadow`), and `mul_load`, the flip
    /// itself: an outside multiplier with operand registers may hold the weight in its own
    /// register, loaded with `mul_b_new` when `mul_load` is set, instead of taking
    /// `mul_b_q` ([`crate::dsp::DspPair::with_held_weights`]).
    pub mul_b_new: Signal<Out, Bits<8>>,
    /// The PE flips to `mul_b_new` in this cycle (see [`WsPe::mul_b_new`]).
    pub mul_load: Signal<Out, Bit>,
    /// The outside multiplier's product of `mul_a` and `mul_b`, after the PE's stages.
    pub mul_p: Signal<In, Bits<32>>,
    row: Constant<Bits<8>>,
    zero: Constant<Signed<8>>,
    // Lane `b + 1`'s index, for the lanes after the first.
    lane_ids: Vec<Constant<Bits<2>>>,
    active: DFF<Signed<8>>,
    shadow: DFF<Signed<8>>,
    // The high bytes of 16-bit int4 x int4 weights: a capture shifts `shadow` into
    // `shadow_hi`, so a row's two words arrive high byte first.
    active_hi: DFF<Signed<8>>,
    shadow_hi: DFF<Signed<8>>,
    active_index: DFF<Bits<2>>,
    shadow_index: DFF<Bits<2>>,
    a: Vec<DFF<Signed<8>>>,
    flip: DFF<Bit>,
    pack: DFF<Bits<2>>,
    p: DFF<Signed<32>>,
    // The product register (with `_staged`).
    prod: DFF<Signed<16>>,
    // The 1-lane PE's multiplier, a DSP block holding its pipeline registers: one, or
    // none in a PE with lanes.
    mul: Vec<DspProduct<8, 8, 32>>,
    w: DFF<Signed<8>>,
    w_index: DFF<Bits<2>>,
    w_valid: DFF<Bit>,
    w_row: DFF<Bits<8>>,
    w_clear: DFF<Bit>,
    weight: Signal<Local, Signed<8>>,
    // The weight chosen this cycle (before the operand registers).
    w_now: Signal<Local, Signed<8>>,
    // The 1-lane PE's product, sign-extended from the multiplier's 16 bits (so that only
    // those leave the DSP block).
    product: Signal<Local, Signed<32>>,
    weight_hi: Signal<Local, Signed<8>>,
    index: Signal<Local, Bits<2>>,
    x: Signal<Local, Signed<8>>,
    x_hi: Signal<Local, Signed<8>>,
    // This cycle's product (the sum of the partial products in the int4 modes).
    term: Signal<Local, Signed<32>>,
    // The multiplier's activations and packing.
    op_a: Vec<Signal<Local, Signed<8>>>,
    op_pack: Signal<Local, Bits<2>>,
    // 1 when the product comes from `mul_p` (a multiplier the array holds), else 0.
    _external: usize,
    // 1 for a PE with lanes, whose multiplier also works as two 8x4 ones (the 1-lane PE's
    // is `mul`).
    _fused: usize,
    // 1 when the PE also works as four 4x4 multipliers (int4 x int4), else 0.
    _quad: usize,
    // Loop counts choosing the adder's input: the product (`_direct`) or the product
    // register (`_staged`).
    _direct: usize,
    _staged: usize,
    // 1 when the operands come from the PE's registers (two pipeline stages).
    _reg_ops: usize,
    // The partial sums' significant bits (see [`WsPe::new`]): for the sum from above and
    // for this PE's sum, the sign bit, the significant bits and the bits above them.
    in_sign: Constant<Bits<32>>,
    in_low: Constant<Bits<32>>,
    in_high: Constant<Bits<32>>,
    out_sign: Constant<Bits<32>>,
    out_low: Constant<Bits<32>>,
    out_high: Constant<Bits<32>>,
    // The sum from above, sign-extended from its significant bits; this PE's sum, and the
    // same sign-extended from its significant bits.
    p_in_bits: Signal<Local, Bits<32>>,
    p_above: Signal<Local, Signed<32>>,
    sum: Signal<Local, Signed<32>>,
    sum_bits: Signal<Local, Bits<32>>,
    p_bits: Signal<Local, Bits<32>>,
}

/// Bits of the two's complement partial sum of `terms` products of int8 x int8, each at
/// most `2^14` in magnitude (`-128 * -128`; the int4 modes' sums of products are smaller):
/// a sign bit above the bits of `terms * 2^14`.
pub fn partial_sum_bits(terms: usize) -> usize {
    let most = (terms.max(1) as u64) << 14;
    (65 - most.leading_zeros() as usize).min(32)
}

/// The constants that sign-extend a 32-bit word from its low `bits` bits: the sign bit, the
/// low `bits` bits (the sign bit included) and the bits above them.
fn sign_extension(bits: usize) -> [Constant<Bits<32>>; 3] {
    let sign = 1u64 << (bits - 1);
    let below = (sign << 1) - 1;
    [Constant::new(sign.into()), Constant::new(below.into()), Constant::new((!below & 0xffff_ffff).into())]
}

/// Activation lanes per PE row in an array that skips sparse weights: one group of N:4.
pub const GROUP_LANES: usize = 4;

impl WsPe {
    /// A PE in array row `row` with `lanes` activation lanes (1 or [`GROUP_LANES`]), with
    /// the 16-bit weights and four 4x4 products of int4 x int4 when `int4x4` (which needs
    /// four lanes).
    ///
    /// The partial sum leaving row `row` adds `row + 1` products, so it has at most
    /// [`partial_sum_bits`]`(row + 1)` significant bits, whatever the data (the top row's
    /// `p_in` is 0): the PE computes and registers those and sign-extends them to the
    /// int32 `p_out`, and takes only the significant bits of its `p_in`, so synthesis keeps
    /// an adder and a register as wide as the row needs (18 bits in row 3, 19 in row 11)
    /// and every sum stays the exact int32 one.
    pub fn new(row: usize, lanes: usize, int4x4: bool) -> Self {
        assert!(row < MAX_SIDE, "row {row} beyond {MAX_SIDE}");
        let [in_sign, in_low, in_high] = sign_extension(partial_sum_bits(row));
        let [out_sign, out_low, out_high] = sign_extension(partial_sum_bits(row + 1));
        assert!(lanes == 1 || lanes == GROUP_LANES, "{lanes} lanes");
        assert!(!int4x4 || lanes == GROUP_LANES, "int4 x int4 needs {GROUP_LANES} lanes");
        Self {
            clock: Default::default(),
            a_in: (0..lanes).map(|_| Default::default()).collect(),
            flip_in: Default::default(),
            packed_in: Default::default(),
            p_in: Default::default(),
            w_in: Default::default(),
            w_index_in: Default::default(),
            w_valid_in: Default::default(),
            w_row_in: Default::default(),
            w_clear_in: Default::default(),
            a_out: (0..lanes).map(|_| Default::default()).collect(),
            flip_out: Default::default(),
            packed_out: Default::default(),
            p_out: Default::default(),
            w_out: Default::default(),
            w_index_out: Default::default(),
            w_valid_out: Default::default(),
            w_row_out: Default::default(),
            w_clear_out: Default::default(),
            mul_a: Default::default(),
            mul_b: Default::default(),
            mul_b_q: Default::default(),
            mul_b_new: Default::default(),
            mul_load: Default::default(),
            mul_p: Default::default(),
            row: Constant::new((row as u64).into()),
            zero: Constant::new(0i64.into()),
            lane_ids: crate::wiring::constants(1..lanes as u64),
            active: Default::default(),
            shadow: Default::default(),
            active_hi: Default::default(),
            shadow_hi: Default::default(),
            active_index: Default::default(),
            shadow_index: Default::default(),
            a: (0..lanes).map(|_| Default::default()).collect(),
            flip: Default::default(),
            pack: Default::default(),
            p: Default::default(),
            prod: Default::default(),
            mul: (0..usize::from(lanes == 1)).map(|_| DspProduct::new(true, false, false).in_pe()).collect(),
            w: Default::default(),
            w_index: Default::default(),
            w_valid: Default::default(),
            w_row: Default::default(),
            w_clear: Default::default(),
            weight: Default::default(),
            w_now: Default::default(),
            product: Default::default(),
            weight_hi: Default::default(),
            index: Default::default(),
            x: Default::default(),
            x_hi: Default::default(),
            term: Default::default(),
            op_a: (0..lanes).map(|_| Default::default()).collect(),
            op_pack: Default::default(),
            _external: 0,
            _fused: usize::from(lanes > 1),
            _quad: usize::from(int4x4),
            _direct: usize::from(lanes > 1),
            _staged: 0,
            _reg_ops: 0,
            in_sign,
            in_low,
            in_high,
            out_sign,
            out_low,
            out_high,
            p_in_bits: Default::default(),
            p_above: Default::default(),
            sum: Default::default(),
            sum_bits: Default::default(),
            p_bits: Default::default(),
        }
    }

    /// The PE with `stages` pipeline stages (`ArchConfig::pe_stages`), each delaying
    /// `p_out` by one more cycle: 1 registers the product before the adder, 2 also takes
    /// the multiplier's operands from the PE's registers (the previous cycle's).
    ///
    /// The 1-lane PE's registers are its multiplier's (a DSP block's input and output
    /// registers, [`DspProduct`]); a PE with lanes registers its operands and product in
    /// logic around the lane selection.
    pub fn set_pe_stages(&mut self, stages: usize) {
        assert!(stages <= systole_core::arch::MAX_PE_STAGES, "{stages} PE stages");
        self._direct = self._fused * usize::from(stages == 0);
        self._staged = self._fused * usize::from(stages >= 1);
        self._reg_ops = self._fused * usize::from(stages >= 2);
        for m in &mut self.mul {
            *m = DspProduct::new(true, stages >= 2, stages >= 1).in_pe();
        }
    }

    /// The 1-lane PE with its multiplier outside it: it puts its operands on `mul_a` and
    /// `mul_b` and takes their product from `mul_p`, which the multiplier must deliver
    /// after the PE's stages (its operand and product registers), as its own would. The
    /// array gives two PEs one DSP block this way ([`crate::dsp::DspPair`]).
    pub fn use_external_multiplier(&mut self) {
        assert!(self.mul.len() == 1, "only a 1-lane PE has a multiplier to move out");
        self.mul.clear();
        self._external = 1;
    }
}

impl Logic for WsPe {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            active,
            shadow,
            active_hi,
            shadow_hi,
            active_index,
            shadow_index,
            flip,
            pack,
            p,
            prod,
            w,
            w_index,
            w_valid,
            w_row,
            w_clear
        );
        if self.flip_in.val() {
            self.active.d.next = self.shadow.q.val();
            self.active_hi.d.next = self.shadow_hi.q.val();
            self.active_index.d.next = self.shadow_index.q.val();
            self.weight.next = self.shadow.q.val();
            self.weight_hi.next = self.shadow_hi.q.val();
            self.index.next = self.shadow_index.q.val();
        } else {
            self.weight.next = self.active.q.val();
            self.weight_hi.next = self.active_hi.q.val();
            self.index.next = self.active_index.q.val();
        }
        self.w_now.next = self.weight.val();
        // The multiplier's operands: this cycle's, or (with operand registers) the previous
        // cycle's from the PE's own registers, `active` holding the weight it then chose.
        for b in 0..self.a_in.len() {
            self.op_a[b].next = self.a_in[b].val();
        }
        self.op_pack.next = self.packed_in.val();
        for _u in 0..self._reg_ops {
            self.weight.next = self.active.q.val();
            self.weight_hi.next = self.active_hi.q.val();
            self.index.next = self.active_index.q.val();
            self.op_pack.next = self.pack.q.val();
            for b in 0..self.a.len() {
                self.op_a[b].next = self.a[b].q.val();
            }
        }
        self.x.next = self.op_a[0].val();
        for b in 1..self.a_in.len() {
            if self.index.val() == self.lane_ids[b - 1].val() {
                self.x.next = self.op_a[b].val();
            }
        }
        // The 1-lane PE has no second operand (every signal needs a driver).
        self.x_hi.next = self.x.val();
        // The 1-lane PE: this cycle's operands into the multiplier, whose registers make
        // the PE's stages; the product joins the partial sum as it comes out.
        // (Every local needs a driver: the defaults of the locals a PE of the other kind
        // does not use, in their own widths.)
        // The sum from above, from its significant bits.
        self.p_in_bits.next = unsigned_cast(self.p_in.val());
        if (self.p_in_bits.val() & self.in_sign.val()) != 0 {
            self.p_above.next = signed_cast(self.p_in_bits.val() | self.in_high.val());
        } else {
            self.p_above.next = signed_cast(self.p_in_bits.val() & self.in_low.val());
        }
        self.product.next = self.p_above.val();
        self.term.next = self.p_above.val();
        self.sum.next = self.p_above.val();
        self.mul_a.next = unsigned_cast(self.a_in[0].val());
        self.mul_b.next = unsigned_cast(self.w_now.val());
        self.mul_b_q.next = unsigned_cast(self.active.q.val());
        self.mul_b_new.next = unsigned_cast(self.shadow.q.val());
        self.mul_load.next = self.flip_in.val();
        for _u in 0..self._external {
            self.product.next = signed_cast(self.mul_p.val());
            self.sum.next = self.p_above.val() + self.product.val();
        }
        for m in 0..self.mul.len() {
            self.mul[m].clock.next = self.clock.val();
            self.mul[m].a.next = unsigned_cast(self.a_in[0].val());
            self.mul[m].b.next = unsigned_cast(self.w_now.val());
            self.product.next = signed_cast(self.mul[m].p.val());
            self.sum.next = self.p_above.val() + self.product.val();
        }
        // Packed, the weight byte is two int4 weights for two activations: two 8x4
        // products (in silicon the halves of the 8x8 multiplier, bit fusion).
        for _u in 0..self._fused {
            if self.op_pack.val().get_bit(0) {
                if self.index.val().get_bit(1) {
                    self.x_hi.next = self.op_a[3].val();
                } else {
                    self.x_hi.next = self.op_a[1].val();
                }
                self.term.next = signed_cast_widen::<16, 8>(self.x.val()) * signed_cast_widen::<16, 4>(self.weight.val().get_bits::<4>(0))
                    + signed_cast_widen::<16, 8>(self.x_hi.val()) * signed_cast_widen::<16, 4>(self.weight.val().get_bits::<4>(4));
            } else {
                self.term.next = signed_cast_widen::<16, 8>(self.x.val()) * signed_cast_widen::<16, 8>(self.weight.val());
            }
        }
        // int4 x int4: the 16-bit weight is four int4 weights for the four lanes, each
        // taken as its low nibble: four 4x4 products (the 8x8 multiplier's quarters).
        for _u in 0..self._quad {
            if self.op_pack.val().get_bit(1) {
                self.term.next = signed_cast_widen::<16, 4>(self.op_a[0].val().get_bits::<4>(0))
                    * signed_cast_widen::<16, 4>(self.weight.val().get_bits::<4>(0))
                    + signed_cast_widen::<16, 4>(self.op_a[1].val().get_bits::<4>(0))
                        * signed_cast_widen::<16, 4>(self.weight.val().get_bits::<4>(4))
                    + signed_cast_widen::<16, 4>(self.op_a[2].val().get_bits::<4>(0))
                        * signed_cast_widen::<16, 4>(self.weight_hi.val().get_bits::<4>(0))
                    + signed_cast_widen::<16, 4>(self.op_a[3].val().get_bits::<4>(0))
                        * signed_cast_widen::<16, 4>(self.weight_hi.val().get_bits::<4>(4));
            }
        }
        // The product joins the partial sum now, or (with the product register) in the
        // next cycle, the partial sum from above being one cycle later too.
        for _u in 0..self._direct {
            self.sum.next = self.p_above.val() + self.term.val();
        }
        for _u in 0..self._staged {
            // Every product fits 16 bits: |a * w| <= 2^14.
            self.prod.d.next = signed_bit_cast::<16, 32>(self.term.val());
            self.sum.next = self.p_above.val() + signed_cast_widen::<32, 16>(self.prod.q.val());
        }
        // The sum, sign-extended from its significant bits (exact: it has no others).
        self.sum_bits.next = unsigned_cast(self.sum.val());
        if (self.sum_bits.val() & self.out_sign.val()) != 0 {
            self.p_bits.next = self.sum_bits.val() | self.out_high.val();
        } else {
            self.p_bits.next = self.sum_bits.val() & self.out_low.val();
        }
        self.p.d.next = signed_cast(self.p_bits.val());
        if self.w_clear_in.val() {
            self.shadow.d.next = self.zero.val();
        }
        if self.w_valid_in.val() & (self.w_row_in.val() == self.row.val()) {
            self.shadow.d.next = self.w_in.val();
            self.shadow_index.d.next = self.w_index_in.val();
            for _u in 0..self._quad {
                self.shadow_hi.d.next = self.shadow.q.val();
            }
        }
        for b in 0..self.a.len() {
            self.a[b].clock.next = self.clock.val();
            self.a[b].d.next = self.a_in[b].val();
            self.a_out[b].next = self.a[b].q.val();
        }
        self.flip.d.next = self.flip_in.val();
        self.pack.d.next = self.packed_in.val();
        self.packed_out.next = self.pack.q.val();
        self.w.d.next = self.w_in.val();
        self.w_index.d.next = self.w_index_in.val();
        self.w_valid.d.next = self.w_valid_in.val();
        self.w_row.d.next = self.w_row_in.val();
        self.w_clear.d.next = self.w_clear_in.val();
        self.w_clear_out.next = self.w_clear.q.val();
        self.flip_out.next = self.flip.q.val();
        self.p_out.next = self.p.q.val();
        self.w_out.next = self.w.q.val();
        self.w_index_out.next = self.w_index.q.val();
        self.w_valid_out.next = self.w_valid.q.val();
        self.w_row_out.next = self.w_row.q.val();
    }
}

/// One output-stationary processing element (docs/ARCHITECTURE.md section 9).
///
/// - `acc` accumulates `a_in * b_in`; `first_in` (travelling with `a`) restarts it.
/// - With `last_in` the final sum goes to `drain`, and for the next cycle `sel` puts it
///   on the column's read-out chain: `c_out = sel ? drain : c_in` (combinational). The
///   tile's wavefront reaches the rows one cycle apart, so exactly one PE per column
///   drives the chain in any cycle.
#[derive(LogicBlock, Default)]
pub struct OsPe {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Activation from the left.
    pub a_in: Signal<In, Signed<8>>,
    /// First step of a tile.
    pub first_in: Signal<In, Bit>,
    /// Last step of a tile.
    pub last_in: Signal<In, Bit>,
    /// Weight from above.
    pub b_in: Signal<In, Signed<8>>,
    /// Read-out chain from above.
    pub c_in: Signal<In, Signed<32>>,
    /// Activation to the right.
    pub a_out: Signal<Out, Signed<8>>,
    /// First-step flag to the right.
    pub first_out: Signal<Out, Bit>,
    /// Last-step flag to the right.
    pub last_out: Signal<Out, Bit>,
    /// Weight downwards.
    pub b_out: Signal<Out, Signed<8>>,
    /// Read-out chain downwards.
    pub c_out: Signal<Out, Signed<32>>,
    acc: DFF<Signed<32>>,
    drain: DFF<Signed<32>>,
    sel: DFF<Bit>,
    a: DFF<Signed<8>>,
    first: DFF<Bit>,
    last: DFF<Bit>,
    b: DFF<Signed<8>>,
    product: Signal<Local, Signed<32>>,
    sum: Signal<Local, Signed<32>>,
}

impl Logic for OsPe {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, acc, drain, sel, a, first, last, b);
        self.product.next = signed_cast_widen::<16, 8>(self.a_in.val()) * signed_cast_widen::<16, 8>(self.b_in.val());
        if self.first_in.val() {
            self.sum.next = self.product.val();
        } else {
            self.sum.next = self.acc.q.val() + self.product.val();
        }
        self.acc.d.next = self.sum.val();
        if self.last_in.val() {
            self.drain.d.next = self.sum.val();
        }
        self.sel.d.next = self.last_in.val();
        if self.sel.q.val() {
            self.c_out.next = self.drain.q.val();
        } else {
            self.c_out.next = self.c_in.val();
        }
        self.a.d.next = self.a_in.val();
        self.first.d.next = self.first_in.val();
        self.last.d.next = self.last_in.val();
        self.b.d.next = self.b_in.val();
        self.a_out.next = self.a.q.val();
        self.first_out.next = self.first.q.val();
        self.last_out.next = self.last.q.val();
        self.b_out.next = self.b.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::partial_sum_bits;

    #[test]
    fn partial_sums_keep_the_bits_their_extremes_need() {
        // n * 2^14 (n products of -128 * -128) must fit below the sign bit; n * -16,256
        // (-128 * 127) then fits too.
        for (terms, bits) in [(1, 16), (2, 17), (3, 17), (4, 18), (5, 18), (12, 19), (16, 20), (17, 20), (256, 24)] {
            assert_eq!(partial_sum_bits(terms), bits, "{terms} products");
            let top = (1i64 << (bits - 1)) - 1;
            assert!(terms as i64 * 16384 <= top && terms as i64 * 16384 > top / 2, "{terms} products in {bits} bits");
        }
        assert_eq!(partial_sum_bits(1 << 20), 32, "no wider than the int32 sum");
    }
}
