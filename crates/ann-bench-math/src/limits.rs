//! Bounds on one answer's size, nesting and work, so that hostile or degenerate model output is
//! "unparsable" or "not equivalent" instead of a stack overflow, an hour of arithmetic or gigabytes.
//!
//! - [`MAX_ANSWER_BYTES`]: a longer raw answer is not cleaned nor parsed at all;
//! - [`MAX_DEPTH`]: every recursive step (LaTeX clean-up, answer structure, expression parsing,
//!   comparison, keys) counts its nesting and gives up past this depth, far below what a 2 MiB
//!   thread stack holds;
//! - a work budget ([`WORK_BUDGET`] units, a unit being roughly one machine-word operation) shared
//!   by everything done for one parse, or one comparison: big-number arithmetic, factorials,
//!   binomials, root extraction (trial division), polynomial products and the string scans of the
//!   answer parser charge it, and once it is spent the whole answer is unparsable (or the
//!   comparison "not equivalent"). It bounds total work where per-operation caps cannot: 250 copies
//!   of `5000!` are each allowed, together they are not.
//!
//! The budget lives in a thread-local meter that `metered` opens around a parse or a comparison;
//! outside one (a [`crate::value::Val`] used directly) nothing is charged and only the
//! per-operation caps of `value` apply. Giving up is deterministic: the same answer always fails
//! at the same point.

use std::cell::Cell;

/// Longest raw answer (bytes) cleaned and parsed; MATH answers are under 200 bytes.
pub const MAX_ANSWER_BYTES: usize = 4_000;
/// Deepest nesting of brackets, commands and structures followed by any recursive step; MATH
/// answers nest fewer than 10 levels.
pub const MAX_DEPTH: usize = 64;
/// Work units allowed for one parse or one comparison: a few hundredths of a second of arithmetic
/// in an optimised build, more than ten times what the costliest of the 12,998 MATH answers (train,
/// test and MATH-500) needs (about 440,000 units: a large factorial).
pub const WORK_BUDGET: u64 = 5_000_000;

thread_local! {
    /// Units left in the open meter; `None` outside any meter.
    static LEFT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Whether the open meter ran out (or a bound was hit) since it was opened.
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

/// Charge `units` of work: `None` once the open meter's budget is spent (and from then on).
pub(crate) fn spend(units: u64) -> Option<()> {
    LEFT.with(|left| match left.get() {
        None => Some(()),
        Some(n) if n >= units && !EXCEEDED.with(Cell::get) => {
            left.set(Some(n - units));
            Some(())
        }
        Some(_) => {
            give_up();
            None
        }
    })
}

/// Record that a bound was hit (depth, size): the open meter's answer is unparsable.
pub(crate) fn give_up() {
    if LEFT.with(Cell::get).is_some() {
        EXCEEDED.with(|e| e.set(true));
    }
}

/// `Some(())` while `depth` is within [`MAX_DEPTH`]; past it, gives up and returns `None`.
pub(crate) fn within_depth(depth: usize) -> Option<()> {
    if depth <= MAX_DEPTH {
        Some(())
    } else {
        give_up();
        None
    }
}

/// Whether the open meter has given up.
pub(crate) fn exceeded() -> bool {
    EXCEEDED.with(Cell::get)
}

/// Run `f` under a meter of [`WORK_BUDGET`] units and say whether it stayed within every bound.
/// Inside an open meter, `f` shares it (its work counts against the outer budget).
pub(crate) fn metered<T>(f: impl FnOnce() -> T) -> (T, bool) {
    if LEFT.with(Cell::get).is_some() {
        let out = f();
        return (out, !exceeded());
    }
    /// Closes the meter even if `f` panics.
    struct Close;
    impl Drop for Close {
        fn drop(&mut self) {
            LEFT.with(|l| l.set(None));
            EXCEEDED.with(|e| e.set(false));
        }
    }
    LEFT.with(|l| l.set(Some(WORK_BUDGET)));
    EXCEEDED.with(|e| e.set(false));
    let close = Close;
    let out = f();
    let ok = !exceeded();
    drop(close);
    (out, ok)
}

/// Machine words of a number of `bits` bits (at least one).
pub(crate) fn words(bits: u64) -> u64 {
    bits / 64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_runs_out_and_closes() {
        let ((), ok) = metered(|| {
            assert!(spend(WORK_BUDGET).is_some());
            assert!(spend(1).is_none());
            assert!(spend(0).is_none(), "a spent meter stays spent");
        });
        assert!(!ok);
        // Closed: nothing is charged outside a meter, and a new meter starts full.
        assert!(spend(u64::MAX).is_some());
        assert!(metered(|| spend(WORK_BUDGET)).1);
        assert!(!metered(|| within_depth(MAX_DEPTH + 1)).1);
        assert!(metered(|| within_depth(MAX_DEPTH)).1);
    }
}
