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

use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

pub type Q = BigRational;

/// Largest exponent applied to a sum, and largest radicand factored (beyond it roots stay opaque).
const MAX_POLY_POWER: i64 = 64;
const MAX_RATIONAL_POWER: u64 = 1 << 16;
const MAX_RADICAND: u64 = 1 << 40;
/// Largest root index evaluated (`\sqrt[64]{x}`); beyond it roots stay opaque.
const MAX_ROOT: u32 = 64;
/// Largest number of terms in a product of sums, and of bits in a power of a rational: model output
/// such as `(x+y+z+1)^{64} + 1` or `(3^{4096})^{4096}` is refused rather than computed.
const MAX_TERMS: usize = 2_000;
const MAX_BITS: u64 = 1 << 18;

/// One product `√rad · iᵏ · Π atomᵉ` (without its coefficient).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono {
    rad: u64,
    imag: bool,
    atoms: BTreeMap<String, i64>,
}

impl Mono {
    fn one() -> Self {
        Self { rad: 1, imag: false, atoms: BTreeMap::new() }
    }

    fn has_var(&self) -> bool {
        self.atoms.keys().any(|a| is_variable_atom(a))
    }

    /// The product of two monomials and the rational factor it throws off (√2·√2 = 2, i·i = -1).
    fn mul(&self, other: &Mono) -> Option<(Mono, Q)> {
        let g = self.rad.gcd(&other.rad);
        let rad = (self.rad / g).checked_mul(other.rad / g)?;
        let mut factor = Q::from_integer(BigInt::from(g));
        let imag = self.imag ^ other.imag;
        if self.imag && other.imag {
            factor = -factor;
        }
        let mut atoms = self.atoms.clone();
        for (name, e) in &other.atoms {
            let slot = atoms.entry(name.clone()).or_insert(0);
            *slot = slot.checked_add(*e)?;
            if *slot == 0 {
                atoms.remove(name);
            }
        }
        Some((Mono { rad, imag, atoms }, factor))
    }
}

/// Atoms whose names start with `#` are constants (`#pi`, `#inf`, roots of numbers); others vary.
pub fn is_variable_atom(name: &str) -> bool {
    !name.starts_with('#')
}

/// A sum of terms with exact rational coefficients; no zero coefficient is stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Poly(BTreeMap<Mono, Q>);

impl Poly {
    pub fn rational(q: Q) -> Self {
        let mut p = Poly::default();
        p.add_term(Mono::one(), q);
        p
    }

    pub fn atom(name: &str) -> Self {
        let mut mono = Mono::one();
        mono.atoms.insert(name.to_string(), 1);
        let mut p = Poly::default();
        p.add_term(mono, Q::one());
        p
    }

    fn imaginary_unit() -> Self {
        let mut p = Poly::default();
        p.add_term(Mono { rad: 1, imag: true, atoms: BTreeMap::new() }, Q::one());
        p
    }

    fn add_term(&mut self, mono: Mono, q: Q) {
        if q.is_zero() {
            return;
        }
        let slot = self.0.entry(mono.clone()).or_insert_with(Q::zero);
        *slot += q;
        if slot.is_zero() {
            self.0.remove(&mono);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn has_var(&self) -> bool {
        self.0.keys().any(Mono::has_var)
    }

    /// The value as a rational, when it is one.
    pub fn as_rational(&self) -> Option<Q> {
        match self.0.len() {
            0 => Some(Q::zero()),
            1 => {
                let (mono, q) = self.0.iter().next()?;
                (*mono == Mono::one()).then(|| q.clone())
            }
            _ => None,
        }
    }

    fn add(&self, other: &Poly) -> Poly {
        let mut out = self.clone();
        for (m, q) in &other.0 {
            out.add_term(m.clone(), q.clone());
        }
        out
    }

    fn scale(&self, q: &Q) -> Poly {
        let mut out = Poly::default();
        for (m, c) in &self.0 {
            out.add_term(m.clone(), c * q);
        }
        out
    }

    fn mul(&self, other: &Poly) -> Option<Poly> {
        if self.0.len() * other.0.len() > MAX_TERMS {
            return None;
        }
        let mut out = Poly::default();
        for (m1, q1) in &self.0 {
            for (m2, q2) in &other.0 {
                let (m, f) = m1.mul(m2)?;
                out.add_term(m, q1 * q2 * f);
            }
        }
        Some(out)
    }

    fn pow(&self, n: i64) -> Option<Poly> {
        if let Some(q) = self.as_rational() {
            let bits = q.numer().bits().max(q.denom().bits());
            if n.unsigned_abs() > MAX_RATIONAL_POWER || (q.is_zero() && n < 0) || bits * n.unsigned_abs() > MAX_BITS {
                return None;
            }
            return Some(Poly::rational(q.pow(i32::try_from(n).ok()?)));
        }
        if n < 0 {
            return self.inverse()?.pow(n.checked_neg()?);
        }
        if let [(mono, q)] = self.0.iter().collect::<Vec<_>>().as_slice() {
            return Self::term_power(mono, q, n);
        }
        if n > MAX_POLY_POWER {
            return None;
        }
        let mut out = Poly::rational(Q::one());
        for _ in 0..n {
            out = out.mul(self)?;
        }
        Some(out)
    }

    /// `(q √r iᵏ Π aᵉ)ⁿ` for `n ≥ 0`, without repeated multiplication (`x^{100}` is cheap).
    fn term_power(mono: &Mono, q: &Q, n: i64) -> Option<Poly> {
        let n32 = u32::try_from(n).ok()?;
        let bits = q.numer().bits().max(q.denom().bits()) + 64 - mono.rad.leading_zeros() as u64;
        if bits.saturating_mul(n.unsigned_abs()) > MAX_BITS {
            return None;
        }
        // √rⁿ = r^(n div 2) · √r^(n mod 2); iⁿ cycles with period 4.
        let mut coef = q.pow(i32::try_from(n).ok()?) * Q::from_integer(BigInt::from(mono.rad).pow(n32 / 2));
        let imag = mono.imag && n % 2 == 1;
        if mono.imag && n % 4 >= 2 {
            coef = -coef;
        }
        let atoms = mono.atoms.iter().map(|(a, e)| Some((a.clone(), e.checked_mul(n)?))).collect::<Option<_>>()?;
        let rad = if n % 2 == 1 { mono.rad } else { 1 };
        let mut p = Poly::default();
        p.add_term(Mono { rad, imag, atoms }, coef);
        Some(p)
    }

    /// `1 / self` for a single term, or for `a + b·m` with `m²` rational (conjugate: `1/(1+√2) = √2 - 1`).
    fn inverse(&self) -> Option<Poly> {
        let terms: Vec<(&Mono, &Q)> = self.0.iter().collect();
        match terms.as_slice() {
            [(mono, q)] => {
                // 1/(q √r iᵏ Π aᵉ) = (1/(q r)) √r (-i)ᵏ Π a⁻ᵉ
                let mut coef = Q::one() / (*q).clone() / Q::from_integer(BigInt::from(mono.rad));
                if mono.imag {
                    coef = -coef;
                }
                let atoms = mono.atoms.iter().map(|(a, e)| (a.clone(), -e)).collect();
                let mut p = Poly::default();
                p.add_term(Mono { rad: mono.rad, imag: mono.imag, atoms }, coef);
                Some(p)
            }
            [(m0, a), (m1, b)] if **m0 == Mono::one() && m1.atoms.is_empty() => {
                // m1² = ±rad
                let square = Q::from_integer(BigInt::from(m1.rad)) * if m1.imag { -Q::one() } else { Q::one() };
                let denom = (*a).clone() * (*a).clone() - (*b).clone() * (*b).clone() * square;
                if denom.is_zero() {
                    return None;
                }
                let mut p = Poly::default();
                p.add_term(Mono::one(), (*a).clone() / denom.clone());
                p.add_term((*m1).clone(), -(*b).clone() / denom);
                Some(p)
            }
            _ => None,
        }
    }

    /// `(content, primitive)` with `self = content · primitive`, the primitive's integer coefficients
    /// coprime and its greatest term positive.
    fn primitive(&self) -> (Q, Poly) {
        let mut num_gcd = BigInt::zero();
        let mut den_lcm = BigInt::one();
        for q in self.0.values() {
            num_gcd = num_gcd.gcd(q.numer());
            den_lcm = den_lcm.lcm(q.denom());
        }
        let mut content = Q::new(num_gcd, den_lcm);
        if self.0.values().next_back().is_some_and(Signed::is_negative) {
            content = -content;
        }
        let inv = Q::one() / content.clone();
        (content, self.scale(&inv))
    }
}

impl fmt::Display for Poly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "0");
        }
        for (i, (m, q)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "+")?;
            }
            write!(f, "{q}")?;
            if m.rad != 1 {
                write!(f, "*sqrt({})", m.rad)?;
            }
            if m.imag {
                write!(f, "*i")?;
            }
            for (a, e) in &m.atoms {
                let a = a.strip_prefix('#').unwrap_or(a);
                if *e == 1 { write!(f, "*{a}")? } else { write!(f, "*{a}^{e}")? }
            }
        }
        Ok(())
    }
}

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
        Some(Val { coeff: n1.add(&n2), factors: d1 }.normalized())
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
        let radicand = q.numer().abs() * q.denom().pow(n - 1);
        let (outside, inside) = split_power(radicand.to_u64()?, n)?;
        let sign = if q.is_negative() { -Q::one() } else { Q::one() };
        Some((sign * Q::new(BigInt::from(outside), q.denom().clone()), inside))
    }

    /// The exact `n`-th root of a non-negative rational when it is rational.
    pub fn exact_root(q: &Q, n: u32) -> Option<Q> {
        if (q.is_negative() && n.is_multiple_of(2)) || n == 0 || n > MAX_ROOT {
            return None;
        }
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
