//! Exact arithmetic over rationals: a small expression language (`+ - * / ^`, parentheses,
//! integers and decimals) evaluated with arbitrary-precision fractions, bounded in input length,
//! nesting and result size, so a hostile expression costs bounded time.

use num_bigint::BigInt;
use num_integer::Integer as _;
use num_rational::BigRational;
use num_traits::{One as _, Signed as _, ToPrimitive as _, Zero as _};

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 2000;
/// Deepest nesting of parentheses and unary signs.
pub const MAX_DEPTH: usize = 64;
/// Most bits of a numerator or denominator an operation may produce.
pub const MAX_BITS: u64 = 100_000;

/// An exact value with its two renderings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exact(pub BigRational);

impl std::fmt::Display for Exact {
    /// An integer as itself; a fraction as `p/q` followed by a 12-digit decimal approximation.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.0;
        if v.is_integer() {
            return write!(f, "{}", v.numer());
        }
        write!(f, "{}/{} (≈ {})", v.numer(), v.denom(), decimal(v, 12))
    }
}

/// `v` rounded toward zero to `digits` decimal places, trailing zeros removed.
fn decimal(v: &BigRational, digits: u32) -> String {
    let scale = BigInt::from(10u32).pow(digits);
    let scaled = (v.numer().abs() * &scale) / v.denom();
    let (int, frac) = scaled.div_rem(&scale);
    let frac = format!("{:0>width$}", frac.to_string(), width = digits as usize);
    let frac = frac.trim_end_matches('0');
    let sign = if v.is_negative() { "-" } else { "" };
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// Evaluate `expression`, or say (with the position) what is wrong with it.
pub fn evaluate(expression: &str) -> Result<Exact, String> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return Err(format!("the expression is longer than {MAX_EXPRESSION_BYTES} bytes"));
    }
    let mut parser = Parser { text: expression.as_bytes(), pos: 0, depth: 0 };
    let value = parser.sum()?;
    parser.skip_spaces();
    if parser.pos < parser.text.len() {
        return Err(parser.error("unexpected character"));
    }
    Ok(Exact(value))
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        match self.text.get(self.pos) {
            Some(&c) => format!("{what} {:?} at position {}", c as char, self.pos + 1),
            None => format!("{what}: the expression ends too early"),
        }
    }

    fn skip_spaces(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.text.get(self.pos).copied()
    }

    fn sum(&mut self) -> Result<BigRational, String> {
        let mut value = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.product()?;
            value = if op == b'+' { value + rhs } else { value - rhs };
            bounded(&value)?;
        }
        Ok(value)
    }

    fn product(&mut self) -> Result<BigRational, String> {
        let mut value = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(b'*') if self.text.get(self.pos + 1) != Some(&b'*') => b'*',
                Some(b'/') => b'/',
                _ => return Ok(value),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            value = if op == b'*' {
                value * rhs
            } else if rhs.is_zero() {
                return Err("division by zero".into());
            } else {
                value / rhs
            };
            bounded(&value)?;
        }
    }

    fn unary(&mut self) -> Result<BigRational, String> {
        match self.peek() {
            Some(sign @ (b'-' | b'+')) => {
                self.pos += 1;
                self.nested(|p| p.unary()).map(|v| if sign == b'-' { -v } else { v })
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<BigRational, String> {
        let base = self.atom()?;
        let caret = match self.peek() {
            Some(b'^') => 1,
            Some(b'*') if self.text.get(self.pos + 1) == Some(&b'*') => 2,
            _ => return Ok(base),
        };
        self.pos += caret;
        let exponent = self.nested(|p| p.unary())?;
        if !exponent.is_integer() {
            return Err(format!("the exponent {exponent} is not an integer (results stay exact)"));
        }
        let Some(e) = exponent.to_integer().to_i64().filter(|e| e.unsigned_abs() <= MAX_BITS) else {
            return Err(format!("the exponent {exponent} is too large"));
        };
        let bits = base.numer().bits().max(base.denom().bits()).max(1);
        if bits.saturating_mul(e.unsigned_abs()) > MAX_BITS {
            return Err(format!("the result would have more than {MAX_BITS} bits"));
        }
        if e < 0 && base.is_zero() {
            return Err("division by zero (0 to a negative power)".into());
        }
        let magnitude = num_traits::pow(base.clone(), e.unsigned_abs() as usize);
        Ok(if e < 0 { BigRational::one() / magnitude } else { magnitude })
    }

    fn atom(&mut self) -> Result<BigRational, String> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let value = self.nested(|p| p.sum())?;
                if self.peek() != Some(b')') {
                    return Err(self.error("expected ')' instead of"));
                }
                self.pos += 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            _ => Err(self.error("expected a number or '(' instead of")),
        }
    }

    fn number(&mut self) -> Result<BigRational, String> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.text.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            std::str::from_utf8(&p.text[from..p.pos]).unwrap_or("").to_string()
        };
        let whole = digits(self);
        let fraction = if self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            digits(self)
        } else {
            String::new()
        };
        if whole.is_empty() && fraction.is_empty() {
            self.pos = start;
            return Err(self.error("expected a number instead of"));
        }
        let numer: BigInt = format!("{whole}{fraction}").parse().map_err(|_| self.error("bad number"))?;
        let denom = BigInt::from(10u32).pow(fraction.len() as u32);
        let value = BigRational::new(numer, denom);
        bounded(&value)?;
        Ok(value)
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("the expression nests deeper than {MAX_DEPTH}"));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }
}

fn bounded(v: &BigRational) -> Result<(), String> {
    if v.numer().bits() > MAX_BITS || v.denom().bits() > MAX_BITS {
        return Err(format!("a value has more than {MAX_BITS} bits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(e: &str) -> String {
        match evaluate(e) {
            Ok(v) => v.to_string(),
            Err(why) => format!("error: {why}"),
        }
    }

    #[test]
    fn exact_results() {
        assert_eq!(show("1/3 + 1/6"), "1/2 (≈ 0.5)");
        assert_eq!(show("17 * 23"), "391");
        assert_eq!(show("2^10 - 24"), "1000");
        assert_eq!(show("2**-2"), "1/4 (≈ 0.25)");
        assert_eq!(show("-(3 - 5) * 0.5"), "1");
        assert_eq!(show("0.1 + 0.2"), "3/10 (≈ 0.3)");
        assert_eq!(show("-2^2"), "-4");
        assert_eq!(show("2^3^2"), "512");
        assert_eq!(show("1/7"), "1/7 (≈ 0.142857142857)");
        assert_eq!(show("-1/7"), "-1/7 (≈ -0.142857142857)");
        assert_eq!(show("12345678901234567890 * 98765432109876543210"), "1219326311370217952237463801111263526900");
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(show("1/0"), "error: division by zero");
        assert_eq!(show("1 + * 2"), "error: expected a number or '(' instead of '*' at position 5");
        assert_eq!(show("(1 + 2"), "error: expected ')' instead of: the expression ends too early");
        assert_eq!(show("2 ^ 0.5"), "error: the exponent 1/2 is not an integer (results stay exact)");
        assert_eq!(show("3 x"), "error: unexpected character 'x' at position 3");
        assert_eq!(show("0^-1"), "error: division by zero (0 to a negative power)");
        assert!(show("10^100000").contains("bits"));
        assert!(show("2^2^2^2^2^2").contains("bits") || show("2^2^2^2^2^2").contains("too large"));
        assert!(show(&"(".repeat(100)).contains("nests deeper"));
        assert!(show(&"1+".repeat(1500)).contains("longer than"));
    }
}
