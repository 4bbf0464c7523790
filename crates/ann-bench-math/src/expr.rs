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

mod arith;
mod token;

use num_traits::ToPrimitive;

use crate::limits;
use crate::value::Val;
use arith::{binomial, decimal, factorial, power, root};
use token::{FUNCTIONS, GREEK, Tok, tokenize};
/// Longest expression evaluated; longer ones are compared as strings.
const MAX_EXPRESSION_CHARS: usize = 2000;

/// Evaluate a cleaned LaTeX expression exactly; `None` when it is not an expression this parser
/// knows, or when it nests deeper than [`crate::limits::MAX_DEPTH`] or needs more work than the
/// budget of [`crate::limits`] (shared with the answer being parsed, if any).
pub fn parse_expr(s: &str) -> Option<Val> {
    if s.len() > MAX_EXPRESSION_CHARS {
        return None;
    }
    let (v, within) = limits::metered(|| {
        limits::spend(s.len() as u64)?;
        let toks = tokenize(s)?;
        if toks.is_empty() {
            return None;
        }
        let mut p = Parser { toks, pos: 0, depth: 0 };
        let v = p.sum()?;
        (p.pos == p.toks.len()).then_some(v)
    });
    v.filter(|_| within)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Nesting of [`Parser::primary`], which every recursive path goes through.
    depth: usize,
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
        let mut negative = false;
        while let Some(Tok::Op(c @ ('+' | '-'))) = self.peek() {
            negative ^= *c == '-';
            self.pos += 1;
        }
        let f = self.factor()?;
        Some(if negative { f.neg() } else { f })
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

    /// A number, a letter, a bracketed group or a command, at most [`limits::MAX_DEPTH`] deep.
    fn primary(&mut self) -> Option<Val> {
        self.depth += 1;
        limits::within_depth(self.depth)?;
        let v = self.primary_at_depth();
        self.depth -= 1;
        v
    }

    fn primary_at_depth(&mut self) -> Option<Val> {
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
