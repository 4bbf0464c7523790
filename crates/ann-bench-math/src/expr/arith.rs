//! Exact arithmetic the expression parser applies: decimals, powers, roots, factorials, binomials.

use num_bigint::BigInt;
use num_traits::{One, ToPrimitive, Zero};

use crate::limits::{spend, words};
use crate::value::{Q, Val};

/// Largest `n` of `n!` (5000! has 16,326 digits) and of `\binom{n}{k}`; each is also charged to the
/// work budget, so that many of them in one answer are refused.
const MAX_FACTORIAL: u32 = 5000;
const MAX_BINOMIAL: u64 = 10_000;

/// `"12.5"` -> 25/2 exactly.
pub(super) fn decimal(s: &str) -> Option<Q> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = format!("{int}{frac}");
    let num: BigInt = digits.parse().ok()?;
    let den = BigInt::from(10u32).pow(u32::try_from(frac.len()).ok()?);
    Some(Q::new(num, den))
}

/// `base ^ exponent`: integer exponents exactly, `q^{1/n}` when the root is known, else an opaque atom.
pub(super) fn power(base: &Val, exponent: &Val) -> Option<Val> {
    if let Some(e) = exponent.as_rational() {
        if e.is_integer() {
            return base.pow(e.to_integer().to_i64()?);
        }
        if let Some(b) = base.as_rational() {
            // q^{a/n} = (q^a)^{1/n}
            let n = e.denom().to_u32()?;
            let a = e.numer().to_i64()?;
            let qa = Val::rational(b).pow(a)?.as_rational()?;
            return root(&Val::rational(qa), n);
        }
    }
    let marker = if base.is_constant() && exponent.is_constant() { "#" } else { "" };
    Some(Val::atom(&format!("{marker}pow({base},{exponent})")))
}

/// The `n`-th root: exact when rational or a square root of a rational, else an opaque atom.
pub(super) fn root(x: &Val, n: u32) -> Option<Val> {
    if n == 0 {
        return None;
    }
    if let Some(q) = x.as_rational() {
        if let Some(r) = Val::exact_root(&q, n) {
            return Some(Val::rational(r));
        }
        if n == 2
            && let Some(v) = Val::sqrt_rational(&q)
        {
            return Some(v);
        }
        // ∛16 = 2∛2: pull perfect powers out of an integer radicand (p/q is rewritten as p·qⁿ⁻¹ / q).
        if let Some((outside, inside)) = Val::split_root(&q, n) {
            if inside.is_one() {
                return Some(Val::rational(outside));
            }
            let atom = Val::atom(&format!("#root{n}({inside})"));
            return Val::rational(outside).mul(&atom);
        }
    }
    let marker = if x.is_constant() { "#" } else { "" };
    Some(Val::atom(&format!("{marker}root{n}({x})")))
}

pub(super) fn factorial(v: &Val) -> Option<Val> {
    let n = v.as_integer()?.to_u32().filter(|n| *n <= MAX_FACTORIAL)?;
    // n multiplications of a number of at most log2(n!) <= n·log2(n) bits: charge half of n times that.
    let bits = u64::from(n) * u64::from(32 - n.leading_zeros());
    spend(u64::from(n) * words(bits) / 2)?;
    let mut acc = BigInt::one();
    for k in 2..=n {
        acc *= k;
    }
    Some(Val::rational(Q::from_integer(acc)))
}

pub(super) fn binomial(n: u64, k: u64) -> Option<Val> {
    if n > MAX_BINOMIAL {
        return None;
    }
    if k > n {
        return Some(Val::rational(Q::zero()));
    }
    // C(n, k) = C(n, n - k): k steps on a number of at most n bits.
    let k = k.min(n - k);
    spend(k.max(1) * words(n))?;
    let mut acc = BigInt::one();
    for j in 0..k {
        acc = acc * (n - j) / (j + 1);
    }
    Some(Val::rational(Q::from_integer(acc)))
}
