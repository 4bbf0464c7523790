//! A small LaTeX expression parser that evaluates to an exact [`Val`].
//!
//! Understood: integers and decimals (exact: `0.333` is 333/1000, never 1/3), `+ - * /`, `\cdot`,
//! `\times`, `\div`, implicit products (`2x`, `3\sqrt{2}`, `2(x+1)`), powers `^2` `^{-1}` `^{1/2}`,
//! `\frac{a}{b}` and the short forms `\frac12` `\frac 59` `\frac9{19}`, mixed numbers (`1\frac{4}{5}`
//! is 9/5: an integer directly before a fraction of two integers), `\sqrt{x}`, `\sqrt2`, `\sqrt[3]{x}`,
//! `i`, `\pi`, `\infty`, `\binom{n}{k}`, `n!`, letters and Greek letters as variables (`x_1`
//! subscripted), and functions (`\sin`, `\log_2`, `\cot x`, `\sin^2 x`) as opaque atoms of their
//! argument. Anything else (relations, unknown commands, unbalanced brackets) is `None`, and the
//! caller falls back to comparing strings.

use num_bigint::BigInt;
use num_traits::{One, ToPrimitive, Zero};

use crate::value::{Q, Val};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Letter(char),
    Cmd(String),
    Open(char),
    Close(char),
    Op(char),
}

const FUNCTIONS: [&str; 22] = [
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "log",
    "ln",
    "exp",
    "lg",
    "det",
    "gcd",
    "lcm",
    "max",
    "min",
    "operatorname",
];

const GREEK: [&str; 22] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "varphi",
    "chi",
    "omega",
];

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            toks.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_ascii_alphabetic() {
            toks.push(Tok::Letter(c));
            i += 1;
        } else if c == '\\' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                // `\{`, `\|`, `\\`: a one-character command.
                i += 1;
            }
            let name: String = chars[start..i.min(chars.len())].iter().collect();
            toks.push(match name.as_str() {
                "cdot" | "times" | "ast" => Tok::Op('*'),
                "div" => Tok::Op('/'),
                _ => Tok::Cmd(name),
            });
        } else {
            toks.push(match c {
                '(' | '[' | '{' => Tok::Open(c),
                ')' | ']' | '}' => Tok::Close(c),
                '+' | '-' | '*' | '/' | '^' | '_' | '!' => Tok::Op(c),
                _ => return None,
            });
            i += 1;
        }
    }
    Some(toks)
}

/// Longest expression evaluated; longer ones are compared as strings.
const MAX_EXPRESSION_CHARS: usize = 2000;

/// Evaluate a cleaned LaTeX expression exactly; `None` when it is not an expression this parser knows.
pub fn parse_expr(s: &str) -> Option<Val> {
    if s.len() > MAX_EXPRESSION_CHARS {
        return None;
    }
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return None;
    }
    let mut p = Parser { toks, pos: 0 };
    let v = p.sum()?;
    (p.pos == p.toks.len()).then_some(v)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Option<Val> {
        let mut acc: Option<Val> = None;
        loop {
            let mut negative = false;
            while let Some(Tok::Op(c @ ('+' | '-'))) = self.peek() {
                negative ^= *c == '-';
                self.pos += 1;
            }
            let t = self.term()?;
            let t = if negative { t.neg() } else { t };
            acc = Some(match acc {
                None => t,
                Some(a) => a.add(&t)?,
            });
            if !matches!(self.peek(), Some(Tok::Op('+' | '-'))) {
                return acc;
            }
        }
    }

    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::Open('(' | '{')) => true,
            Some(Tok::Cmd(name)) => {
                matches!(name.as_str(), "frac" | "sqrt" | "pi" | "infty" | "binom" | "i")
                    || FUNCTIONS.contains(&name.as_str())
                    || GREEK.contains(&name.as_str())
            }
            _ => false,
        }
    }

    fn term(&mut self) -> Option<Val> {
        let first_is_integer = matches!(self.peek(), Some(Tok::Num(n)) if !n.contains('.'));
        let mut v = self.factor()?;
        let mut count = 1;
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    let f = self.signed_factor()?;
                    v = v.mul(&f)?;
                }
                Some(Tok::Op('/')) => {
                    self.pos += 1;
                    let f = self.signed_factor()?;
                    v = v.div(&f)?;
                }
                Some(Tok::Cmd(c))
                    if c == "frac" && count == 1 && first_is_integer && self.next_is_integer_fraction() =>
                {
                    // Mixed number: 1\frac{4}{5} = 1 + 4/5.
                    let f = self.factor()?;
                    v = v.add(&f)?;
                }
                // `10 000` or `1.5.3` is not a product.
                Some(Tok::Num(_)) if matches!(self.toks.get(self.pos - 1), Some(Tok::Num(_))) => return None,
                _ if self.starts_factor() => {
                    let f = self.factor()?;
                    v = v.mul(&f)?;
                }
                _ => return Some(v),
            }
            count += 1;
        }
    }

    /// Is the token stream at `\frac{int}{int}` (or `\frac12`)?
    fn next_is_integer_fraction(&self) -> bool {
        let rest = &self.toks[self.pos + 1..];
        let int = |t: &Tok| matches!(t, Tok::Num(n) if !n.contains('.'));
        match rest {
            [Tok::Open('{'), a, Tok::Close('}'), Tok::Open('{'), b, Tok::Close('}'), ..] => int(a) && int(b),
            [Tok::Num(n), ..] => n.len() == 2 && !n.contains('.'),
            _ => false,
        }
    }

    fn signed_factor(&mut self) -> Option<Val> {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Some(self.signed_factor()?.neg())
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.signed_factor()
            }
            _ => self.factor(),
        }
    }

    fn factor(&mut self) -> Option<Val> {
        let mut v = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Op('^')) => {
                    self.pos += 1;
                    let e = self.exponent()?;
                    v = power(&v, &e)?;
                }
                Some(Tok::Op('!')) => {
                    self.pos += 1;
                    v = factorial(&v)?;
                }
                _ => return Some(v),
            }
        }
    }

    fn exponent(&mut self) -> Option<Val> {
        if self.eat(&Tok::Op('-')) {
            return Some(self.argument()?.neg());
        }
        self.argument()
    }

    /// One argument of a command: a braced group, one digit of a number, a letter, or a command.
    fn argument(&mut self) -> Option<Val> {
        match self.peek()?.clone() {
            Tok::Open('{') => {
                self.pos += 1;
                let v = self.sum()?;
                self.eat(&Tok::Close('}')).then_some(v)
            }
            Tok::Num(n) => {
                let mut chars = n.chars();
                let first = chars.next()?;
                let rest: String = chars.collect();
                if first == '.' {
                    return None;
                }
                if rest.is_empty() {
                    self.pos += 1;
                } else {
                    self.toks[self.pos] = Tok::Num(rest);
                }
                Some(Val::integer(i64::from(first.to_digit(10)?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Option<Val> {
        match self.next()? {
            Tok::Num(n) => Some(Val::rational(decimal(&n)?)),
            // In MATH answers `i` is the imaginary unit.
            Tok::Letter('i') if !matches!(self.peek(), Some(Tok::Op('_'))) => Some(Val::imaginary_unit()),
            Tok::Letter(c) => {
                let name = self.subscripted(c.to_string())?;
                Some(Val::atom(&name))
            }
            Tok::Open(open) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let v = self.sum()?;
                self.eat(&Tok::Close(close)).then_some(v)
            }
            Tok::Cmd(name) => self.command(&name),
            Tok::Close(_) | Tok::Op(_) => None,
        }
    }

    fn subscripted(&mut self, base: String) -> Option<String> {
        if self.eat(&Tok::Op('_')) {
            let sub = self.argument()?;
            Some(format!("{base}_{sub}"))
        } else {
            Some(base)
        }
    }

    fn command(&mut self, name: &str) -> Option<Val> {
        match name {
            "frac" => {
                let a = self.argument()?;
                let b = self.argument()?;
                a.div(&b)
            }
            "sqrt" => {
                let index = if self.eat(&Tok::Open('[')) {
                    let n = self.sum()?;
                    if !self.eat(&Tok::Close(']')) {
                        return None;
                    }
                    Some(n.as_integer()?.to_u32()?)
                } else {
                    None
                };
                let x = self.argument()?;
                root(&x, index.unwrap_or(2))
            }
            "pi" => Some(Val::atom("#pi")),
            "infty" => Some(Val::atom("#inf")),
            "i" => Some(Val::imaginary_unit()),
            "binom" => {
                let n = self.argument()?.as_integer()?.to_u64()?;
                let k = self.argument()?.as_integer()?.to_u64()?;
                binomial(n, k)
            }
            "operatorname" => {
                // \operatorname{name} x
                if !self.eat(&Tok::Open('{')) {
                    return None;
                }
                let mut fname = String::new();
                while let Some(Tok::Letter(c)) = self.peek() {
                    fname.push(*c);
                    self.pos += 1;
                }
                if !self.eat(&Tok::Close('}')) {
                    return None;
                }
                self.function(&fname)
            }
            f if FUNCTIONS.contains(&f) => self.function(f),
            g if GREEK.contains(&g) => Some(Val::atom(&self.subscripted(format!("\\{g}"))?)),
            _ => None,
        }
    }

    /// `\sin^2 x`, `\log_2 8`, `\cot(x)`: an opaque atom named after the function and its argument.
    fn function(&mut self, fname: &str) -> Option<Val> {
        let mut fname = fname.to_string();
        let mut power_of = None;
        loop {
            if self.eat(&Tok::Op('^')) {
                power_of = Some(self.exponent()?);
            } else if self.eat(&Tok::Op('_')) {
                let base = self.argument()?;
                fname = format!("{fname}_{base}");
            } else {
                break;
            }
        }
        // The argument: a bracketed group, or a product of plain factors (`\sin 2x`).
        let arg = if matches!(self.peek(), Some(Tok::Open('('))) {
            self.factor()?
        } else {
            let mut arg = self.factor()?;
            while matches!(self.peek(), Some(Tok::Num(_) | Tok::Letter(_))) {
                arg = arg.mul(&self.factor()?)?;
            }
            arg
        };
        let marker = if arg.is_constant() { "#" } else { "" };
        let v = Val::atom(&format!("{marker}{fname}({arg})"));
        match power_of {
            Some(e) => power(&v, &e),
            None => Some(v),
        }
    }
}

/// `"12.5"` -> 25/2 exactly.
fn decimal(s: &str) -> Option<Q> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = format!("{int}{frac}");
    let num: BigInt = digits.parse().ok()?;
    let den = BigInt::from(10u32).pow(u32::try_from(frac.len()).ok()?);
    Some(Q::new(num, den))
}

/// `base ^ exponent`: integer exponents exactly, `q^{1/n}` when the root is known, else an opaque atom.
fn power(base: &Val, exponent: &Val) -> Option<Val> {
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
fn root(x: &Val, n: u32) -> Option<Val> {
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

fn factorial(v: &Val) -> Option<Val> {
    let n = v.as_integer()?.to_u32().filter(|n| *n <= 5000)?;
    let mut acc = BigInt::one();
    for k in 2..=n {
        acc *= k;
    }
    Some(Val::rational(Q::from_integer(acc)))
}

fn binomial(n: u64, k: u64) -> Option<Val> {
    if n > 10_000 {
        return None;
    }
    if k > n {
        return Some(Val::rational(Q::zero()));
    }
    let mut acc = BigInt::one();
    for j in 0..k {
        acc = acc * (n - j) / (j + 1);
    }
    Some(Val::rational(Q::from_integer(acc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, b: &str, equal: bool) {
        let va = parse_expr(a).unwrap_or_else(|| panic!("cannot parse {a:?}"));
        let vb = parse_expr(b).unwrap_or_else(|| panic!("cannot parse {b:?}"));
        assert_eq!(va == vb, equal, "{a:?} = {va}, {b:?} = {vb}");
    }

    #[test]
    fn expression_table() {
        let rows = [
            ("\\frac12", "0.5", true),
            ("\\frac{1}{2}", ".5", true),
            ("\\frac 59", "\\frac{5}{9}", true),
            ("\\frac9{19}", "9/19", true),
            ("1\\frac{4}{5}", "\\frac{9}{5}", true),
            ("-1\\frac{1}{2}", "-1.5", true),
            ("2\\frac{\\sqrt{3}}{2}", "\\sqrt{3}", true),
            ("\\sqrt2", "\\sqrt{2}", true),
            ("\\sqrt{8}", "2\\sqrt2", true),
            ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", true),
            ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", true),
            ("\\frac{1}{1+\\sqrt{2}}", "\\sqrt{2}-1", true),
            ("2 \\cdot 3^2", "18", true),
            ("3 \\times 10^5", "300000", true),
            ("x^5 - x^4 + x^3", "x^3 + x^5 - x^4", true),
            ("6 - 5i", "-5i + 6", true),
            ("(1+i)^2", "2i", true),
            ("\\sqrt{-9}", "3i", true),
            ("2^{10}", "1024", true),
            ("8^{1/3}", "2", true),
            ("\\sqrt[3]{27}", "3", true),
            ("5!", "120", true),
            ("\\binom{5}{2}", "10", true),
            ("\\pi r^2", "r^2\\pi", true),
            ("\\cot x", "\\cot(x)", true),
            ("\\sin^2 x", "(\\sin x)^2", true),
            ("0.333", "\\frac{1}{3}", false),
            ("(a+5)(b+2)", "ab+2a+5b+10", false),
            ("x^2", "x^3", false),
            ("\\sqrt{2}", "1.414", false),
        ];
        for (a, b, equal) in rows {
            check(a, b, equal);
        }
    }

    #[test]
    fn not_expressions() {
        for s in ["x < 3", "", "(1,2]", "\\foo", "a = b"] {
            assert!(parse_expr(s).is_none(), "{s:?}");
        }
    }
}
