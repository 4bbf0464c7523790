//! The tokens of a LaTeX expression, and the names of the functions and Greek letters it knows.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(String),
    Letter(char),
    Cmd(String),
    Open(char),
    Close(char),
    Op(char),
}

pub(super) const FUNCTIONS: [&str; 22] = [
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

pub(super) const GREEK: [&str; 22] = [
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

pub(super) fn tokenize(s: &str) -> Option<Vec<Tok>> {
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
