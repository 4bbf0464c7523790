//! Exact symbolic values: polynomials with rational coefficients over square roots, `i`, `π` and
//! variables, kept as a coefficient times a multiset of factors so that a factored answer is not
//! confused with its expansion.
//!
//! A [`Val`] is `coeff · Π factorᵉ` where
//! - `coeff` is a [`Poly`]: a sum of terms `q · √r · iᵏ · Π atomᵉ` with `q` an exact rational
//!   (`num-rational`, never a float), `r` a square-free integer, `k ∈ {0, 1}`, atoms named variables,
//!   `π`, `∞` or opaque function values such as `cot(x)`;
//! - a factor is a primitive sum of two or more terms that holds a variable (`x + 1`), with a
//!   non-zero integer exponent.
//!
//! Sums of numbers are always expanded (so `2(3 + √2)` = `6 + 2√2`), sums with variables are kept as
//! factors (so `(a+5)(b+2)` ≠ `ab + 2a + 5b + 10`, while `2x + 2` = `2(x + 1)`).

mod poly;

use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use poly::{MAX_BITS, MAX_RATIONAL_POWER, charge_power, q_bits};
pub use poly::{Mono, Poly, is_variable_atom};

use crate::limits::spend;

pub type Q = BigRational;

/// Largest radicand factored (beyond it roots stay opaque): trial division up to its square root,
/// 2^20 steps at most, each charged to the work budget.
const MAX_RADICAND: u64 = 1 << 40;
/// Largest root index evaluated (`\sqrt[64]{x}`); beyond it roots stay opaque.
const MAX_ROOT: u32 = 64;

/// `coeff · Π factorᵉ`, see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Val {
    coeff: Poly,
    factors: BTreeMap<Poly, i64>,
}

impl Val {
    pub fn from_poly(coeff: Poly) -> Self {
        Self { coeff, factors: BTreeMap::new() }.normalized()
    }

    pub fn rational(q: Q) -> Self {
        Self::from_poly(Poly::rational(q))
    }

    pub fn integer(n: i64) -> Self {
        Self::rational(Q::from_integer(BigInt::from(n)))
    }

    pub fn atom(name: &str) -> Self {
        Self::from_poly(Poly::atom(name))
    }

    pub fn imaginary_unit() -> Self {
        Self::from_poly(Poly::imaginary_unit())
    }

    /// The value as a rational number, when it is one.
    pub fn as_rational(&self) -> Option<Q> {
        if self.factors.is_empty() { self.coeff.as_rational() } else { None }
    }

    /// The value as an integer, when it is one.
    pub fn as_integer(&self) -> Option<BigInt> {
        self.as_rational().filter(|q| q.is_integer()).map(|q| q.to_integer())
    }

    /// Whether the value is one variable alone (`x`, `y_1`), as on the left of `x = 3`.
    pub fn is_single_variable(&self) -> bool {
        self.factors.is_empty()
            && self.coeff.0.len() == 1
            && self.coeff.0.iter().next().is_some_and(|(m, q)| {
                q.is_one()
                    && m.rad == 1
                    && !m.imag
                    && m.atoms.len() == 1
                    && m.atoms.iter().all(|(a, e)| *e == 1 && is_variable_atom(a))
            })
    }

    /// Whether the value involves no variable (only numbers, roots, `i`, `π`).
    pub fn is_constant(&self) -> bool {
        self.factors.is_empty() && !self.coeff.has_var()
    }

    fn normalized(mut self) -> Self {
        if self.coeff.is_zero() {
            self.factors.clear();
            return self;
        }
        if self.coeff.0.len() >= 2 && self.coeff.has_var() {
            let (content, primitive) = self.coeff.primitive();
            *self.factors.entry(primitive).or_insert(0) += 1;
            self.coeff = Poly::rational(content);
        }
        self.factors.retain(|_, e| *e != 0);
        self
    }

    /// `(numerator, denominator factors)`: the factors with positive exponents expanded into one
    /// polynomial, and those with negative exponents.
    fn split(&self) -> Option<(Poly, BTreeMap<Poly, i64>)> {
        let mut num = self.coeff.clone();
        let mut den = BTreeMap::new();
        for (p, e) in &self.factors {
            if *e > 0 {
                num = num.mul(&p.pow(*e)?)?;
            } else {
                den.insert(p.clone(), *e);
            }
        }
        Some((num, den))
    }

    pub fn add(&self, other: &Val) -> Option<Val> {
        let (n1, d1) = self.split()?;
        let (n2, d2) = other.split()?;
        if d1 != d2 {
            return None;
        }
        Some(Val { coeff: n1.add(&n2)?, factors: d1 }.normalized())
    }

    pub fn neg(&self) -> Val {
        Val { coeff: self.coeff.scale(&-Q::one()), factors: self.factors.clone() }
    }

    pub fn sub(&self, other: &Val) -> Option<Val> {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Val) -> Option<Val> {
        let mut factors = self.factors.clone();
        for (p, e) in &other.factors {
            let slot = factors.entry(p.clone()).or_insert(0);
            *slot = slot.checked_add(*e)?;
        }
        Some(Val { coeff: self.coeff.mul(&other.coeff)?, factors }.normalized())
    }

    pub fn inverse(&self) -> Option<Val> {
        let factors = self.factors.iter().map(|(p, e)| (p.clone(), -e)).collect();
        Some(Val { coeff: self.coeff.inverse()?, factors }.normalized())
    }

    pub fn div(&self, other: &Val) -> Option<Val> {
        self.mul(&other.inverse()?)
    }

    pub fn pow(&self, n: i64) -> Option<Val> {
        if n.unsigned_abs() > MAX_RATIONAL_POWER {
            return None;
        }
        let coeff = self.coeff.pow(n)?;
        let factors = self.factors.iter().map(|(p, e)| Some((p.clone(), e.checked_mul(n)?))).collect::<Option<_>>()?;
        Some(Val { coeff, factors }.normalized())
    }

    /// `√q` for a rational `q` (negative gives `i`); `None` when the radicand is too large to factor.
    pub fn sqrt_rational(q: &Q) -> Option<Val> {
        if q.is_zero() {
            return Some(Val::rational(Q::zero()));
        }
        // √(a/b) = √(a·b) / b
        let prod = (q.numer() * q.denom()).abs();
        let (outside, inside) = split_square(prod.to_u64()?)?;
        let mut mono = Mono::one();
        mono.rad = inside;
        mono.imag = q.is_negative();
        let mut p = Poly::default();
        p.add_term(mono, Q::new(BigInt::from(outside), q.denom().clone()));
        Some(Val::from_poly(p))
    }

    /// `ⁿ√q = outside · ⁿ√inside` with `inside` a positive integer free of `n`-th powers (odd `n`
    /// keeps the sign outside); `None` for an even root of a negative number or a radicand too large.
    pub fn split_root(q: &Q, n: u32) -> Option<(Q, u64)> {
        if (q.is_negative() && n.is_multiple_of(2)) || q.is_zero() || n > MAX_ROOT {
            return None;
        }
        // ⁿ√(a/b) = ⁿ√(a·bⁿ⁻¹) / b
        // Only a radicand that fits in 64 bits is factored: check before computing `bⁿ⁻¹`.
        if q.numer().bits() + q.denom().bits() * u64::from(n - 1) > 64 {
            return None;
        }
        let radicand = q.numer().abs() * q.denom().pow(n - 1);
        let (outside, inside) = split_power(radicand.to_u64()?, n)?;
        let sign = if q.is_negative() { -Q::one() } else { Q::one() };
        Some((sign * Q::new(BigInt::from(outside), q.denom().clone()), inside))
    }

    /// The exact `n`-th root of a non-negative rational when it is rational.
    pub fn exact_root(q: &Q, n: u32) -> Option<Q> {
        if (q.is_negative() && n.is_multiple_of(2)) || n == 0 || n > MAX_ROOT || q_bits(q) > MAX_BITS {
            return None;
        }
        // Newton's iteration on each part, then the check by a power.
        charge_power(q_bits(q))?;
        let sign = if q.is_negative() { -BigInt::one() } else { BigInt::one() };
        let num = q.numer().abs().nth_root(n);
        let den = q.denom().nth_root(n);
        (Q::new(num.clone(), den.clone()).pow(n as i32) == q.abs()).then(|| Q::new(sign * num, den))
    }
}

/// `n = outsideᵏ · inside` with `inside` free of `k`-th powers.
fn split_power(n: u64, k: u32) -> Option<(u64, u64)> {
    if n > MAX_RADICAND || k == 0 {
        return None;
    }
    let (mut outside, mut inside, mut rest) = (1u64, 1u64, n);
    let mut p = 2u64;
    while p * p <= rest {
        if p.is_multiple_of(1024) {
            spend(1024)?;
        }
        let mut count = 0;
        while rest % p == 0 {
            rest /= p;
            count += 1;
        }
        outside *= p.pow(count / k);
        inside *= p.pow(count % k);
        p += 1;
    }
    Some((outside, inside * rest))
}

fn split_square(n: u64) -> Option<(u64, u64)> {
    split_power(n, 2)
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.coeff)?;
        for (p, e) in &self.factors {
            write!(f, "*({p})^{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Val {
        Val::rational(Q::new(BigInt::from(n), BigInt::from(d)))
    }

    fn sqrt(n: i64) -> Val {
        Val::sqrt_rational(&Q::from_integer(BigInt::from(n))).unwrap()
    }

    #[test]
    fn radicals_and_conjugates() {
        assert_eq!(sqrt(12), Val::integer(2).mul(&sqrt(3)).unwrap());
        assert_eq!(sqrt(2).mul(&sqrt(2)).unwrap(), Val::integer(2));
        assert_eq!(sqrt(-4), Val::integer(2).mul(&Val::imaginary_unit()).unwrap());
        let one_plus_root2 = Val::integer(1).add(&sqrt(2)).unwrap();
        assert_eq!(one_plus_root2.inverse().unwrap(), sqrt(2).sub(&Val::integer(1)).unwrap());
        assert_eq!(q(1, 2).mul(&sqrt(3)).unwrap(), sqrt(3).div(&Val::integer(2)).unwrap());
        assert_eq!(Val::exact_root(&Q::from_integer(BigInt::from(27)), 3), Some(Q::from_integer(BigInt::from(3))));
        assert_eq!(Val::exact_root(&Q::from_integer(BigInt::from(26)), 3), None);
    }

    #[test]
    fn factored_is_not_expanded() {
        let x = Val::atom("x");
        let x1 = x.add(&Val::integer(1)).unwrap();
        let two_x_plus_2 = Val::integer(2).mul(&x).unwrap().add(&Val::integer(2)).unwrap();
        assert_eq!(Val::integer(2).mul(&x1).unwrap(), two_x_plus_2);
        let x_times_x1 = x.mul(&x1).unwrap();
        let x2_plus_x = x.pow(2).unwrap().add(&x).unwrap();
        assert_ne!(x_times_x1, x2_plus_x);
        assert_eq!(x1.div(&x1).unwrap(), Val::integer(1));
    }
}
