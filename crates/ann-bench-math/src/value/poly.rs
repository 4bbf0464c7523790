//! Polynomials with exact rational coefficients over square roots, `i` and atoms: the coefficient
//! part of a [`super::Val`], with the caps that keep model output from being expanded without end.

use std::collections::BTreeMap;
use std::fmt;

use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

use super::Q;
use crate::limits::{spend, words};

/// Largest exponent applied to a sum, and to a rational.
const MAX_POLY_POWER: i64 = 64;
pub(super) const MAX_RATIONAL_POWER: u64 = 1 << 16;
/// Largest number of terms in a product of sums, and of bits (numerator and denominator) of any
/// number a product, a sum or a power makes (2^18 bits: about 79,000 decimal digits): model output
/// such as `(x+y+z+1)^{64} + 1`, `(3^{4096})^{4096}` or `3^{160000} \cdot 3^{160000}` is refused
/// rather than computed.
const MAX_TERMS: usize = 2_000;
pub(super) const MAX_BITS: u64 = 1 << 18;

/// Bits of a rational: numerator and denominator.
pub(super) fn q_bits(q: &Q) -> u64 {
    q.numer().bits() + q.denom().bits()
}

/// Charge the cost of combining the coefficients of `a` and `b` pairwise (a product, or a sum whose
/// equal terms add); `None` when the numbers made could pass [`MAX_BITS`] or the work budget is
/// spent. Each result is reduced by a binary gcd (bits times words: `3^{60000} · 3^{60000}` takes a
/// third of a second), hence 64 units per pair of words.
fn charge_pair(a: &Poly, b: &Poly) -> Option<()> {
    let (wa, ba) = a.size();
    let (wb, bb) = b.size();
    if ba + bb > MAX_BITS {
        return None;
    }
    spend(wa.saturating_mul(wb).saturating_mul(64))
}

/// Charge a power whose result has `bits` bits (repeated squaring, then a reduction).
pub(super) fn charge_power(bits: u64) -> Option<()> {
    if bits > MAX_BITS {
        return None;
    }
    let w = words(bits);
    spend(w * w + w)
}

/// One product `√rad · iᵏ · Π atomᵉ` (without its coefficient).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono {
    pub(super) rad: u64,
    pub(super) imag: bool,
    pub(super) atoms: BTreeMap<String, i64>,
}

impl Mono {
    pub(super) fn one() -> Self {
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
pub struct Poly(pub(super) BTreeMap<Mono, Q>);

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

    pub(super) fn imaginary_unit() -> Self {
        let mut p = Poly::default();
        p.add_term(Mono { rad: 1, imag: true, atoms: BTreeMap::new() }, Q::one());
        p
    }

    pub(super) fn add_term(&mut self, mono: Mono, q: Q) {
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

    pub(super) fn has_var(&self) -> bool {
        self.0.keys().any(Mono::has_var)
    }

    /// Machine words of all coefficients, and the bits of the largest one.
    fn size(&self) -> (u64, u64) {
        self.0.values().fold((0, 0), |(w, b), q| {
            let bits = q_bits(q);
            (w + words(bits), b.max(bits))
        })
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

    pub(super) fn add(&self, other: &Poly) -> Option<Poly> {
        charge_pair(self, other)?;
        let mut out = self.clone();
        for (m, q) in &other.0 {
            out.add_term(m.clone(), q.clone());
        }
        Some(out)
    }

    pub(super) fn scale(&self, q: &Q) -> Poly {
        let mut out = Poly::default();
        for (m, c) in &self.0 {
            out.add_term(m.clone(), c * q);
        }
        out
    }

    pub(super) fn mul(&self, other: &Poly) -> Option<Poly> {
        if self.0.len() * other.0.len() > MAX_TERMS {
            return None;
        }
        charge_pair(self, other)?;
        let mut out = Poly::default();
        for (m1, q1) in &self.0 {
            for (m2, q2) in &other.0 {
                let (m, f) = m1.mul(m2)?;
                out.add_term(m, q1 * q2 * f);
            }
        }
        Some(out)
    }

    pub(super) fn pow(&self, n: i64) -> Option<Poly> {
        if let Some(q) = self.as_rational() {
            let bits = q.numer().bits().max(q.denom().bits());
            if n.unsigned_abs() > MAX_RATIONAL_POWER || (q.is_zero() && n < 0) || bits * n.unsigned_abs() > MAX_BITS {
                return None;
            }
            charge_power(bits * n.unsigned_abs())?;
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
        charge_power(bits * n.unsigned_abs())?;
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
    pub(super) fn inverse(&self) -> Option<Poly> {
        let (w, _) = self.size();
        spend(w * w)?;
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
    pub(super) fn primitive(&self) -> (Q, Poly) {
        // Charged, not refused: the caller cannot fail, and a spent budget makes the answer unparsable.
        let (w, b) = self.size();
        let _ = spend(w * words(b));
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
