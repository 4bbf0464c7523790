//! Structural equivalence of two parsed answers, and the canonical key of one, both bounded in
//! depth (and, inside a metered comparison, in work).

use super::Answer;
use crate::limits::{self, MAX_DEPTH};

/// Work units charged per pair of answers compared (a value comparison is a few dozen word
/// operations): a comparison of two lists of thousands of items runs out of budget.
const COMPARISON_COST: u64 = 10;

impl Answer {
    /// A canonical string: equal keys mean equivalent answers (the converse holds for most answers),
    /// except [`Answer::Unparsable`], whose key is `<unparsable>` and which is equivalent to nothing.
    pub fn key(&self) -> String {
        self.key_at(0)
    }

    fn key_at(&self, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "<too deep>".to_string();
        }
        let key = |a: &Answer| a.key_at(depth + 1);
        match self {
            Answer::Unparsable => "<unparsable>".to_string(),
            Answer::Value(v) => v.to_string(),
            Answer::Text(t) => t.clone(),
            Answer::Based { digits, base } => format!("{digits}_{base}"),
            Answer::List(items) => {
                let mut keys: Vec<String> = items.iter().map(key).collect();
                keys.sort();
                if keys.len() == 1 { keys.remove(0) } else { format!("{{{}}}", keys.join(";")) }
            }
            Answer::Tuple { open, close, items } => {
                format!("{open}{}{close}", items.iter().map(key).collect::<Vec<_>>().join(";"))
            }
            Answer::Union(items) => {
                let mut keys: Vec<String> = items.iter().map(key).collect();
                keys.sort();
                keys.join(" U ")
            }
            Answer::Matrix(rows) => {
                let rows: Vec<String> = rows.iter().map(|r| r.iter().map(key).collect::<Vec<_>>().join(";")).collect();
                format!("matrix[{}]", rows.join(" | "))
            }
            Answer::Equation(l, r) => match l.as_ref() {
                Answer::Value(v) if v.is_single_variable() => key(r),
                _ => format!("{}={}", key(l), key(r)),
            },
        }
    }
}

/// Structural equivalence (see the module documentation); an [`Answer::Unparsable`] is equivalent
/// to nothing, and structures compared deeper than [`MAX_DEPTH`] are not equivalent.
pub fn equivalent(a: &Answer, b: &Answer) -> bool {
    equivalent_at(a, b, 0)
}

fn equivalent_at(a: &Answer, b: &Answer, depth: usize) -> bool {
    use Answer::*;
    if limits::within_depth(depth).and_then(|()| limits::spend(COMPARISON_COST)).is_none() {
        return false;
    }
    let equivalent = |x: &Answer, y: &Answer| equivalent_at(x, y, depth + 1);
    match (a, b) {
        (Unparsable, _) | (_, Unparsable) => false,
        (Value(x), Value(y)) => x == y,
        (Text(x), Text(y)) => x == y,
        (Based { digits: d1, base: b1 }, Based { digits: d2, base: b2 }) => d1.eq_ignore_ascii_case(d2) && b1 == b2,
        (Based { digits, .. }, Value(v)) | (Value(v), Based { digits, .. }) => {
            v.as_integer().is_some_and(|n| n.to_string() == *digits)
        }
        (List(xs), List(ys)) | (Union(xs), Union(ys)) => same_multiset(xs, ys, depth),
        (List(xs), y) | (y, List(xs)) if xs.len() == 1 => equivalent(&xs[0], y),
        (Tuple { open: o1, close: c1, items: i1 }, Tuple { open: o2, close: c2, items: i2 }) => {
            o1 == o2 && c1 == c2 && same_sequence(i1, i2, depth)
        }
        (Matrix(m1), Matrix(m2)) => {
            m1.len() == m2.len() && m1.iter().zip(m2).all(|(r1, r2)| same_sequence(r1, r2, depth))
        }
        (Matrix(m), Tuple { open: '(', close: ')', items }) | (Tuple { open: '(', close: ')', items }, Matrix(m)) => {
            m.iter().all(|row| row.len() == 1)
                && m.len() == items.len()
                && m.iter().zip(items).all(|(row, item)| equivalent(&row[0], item))
        }
        (Equation(l1, r1), Equation(l2, r2)) => {
            (equivalent(l1, l2) && equivalent(r1, r2))
                || (equivalent(l1, r2) && equivalent(r1, l2))
                || match (l1.as_ref(), r1.as_ref(), l2.as_ref(), r2.as_ref()) {
                    (Value(a), Value(b), Value(c), Value(d)) => {
                        matches!((a.sub(b), c.sub(d)), (Some(x), Some(y)) if x == y)
                    }
                    _ => false,
                }
        }
        (Equation(l, r), y) | (y, Equation(l, r)) => {
            matches!(l.as_ref(), Value(v) if v.is_single_variable()) && equivalent(r, y)
        }
        _ => false,
    }
}

fn same_sequence(xs: &[Answer], ys: &[Answer], depth: usize) -> bool {
    xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| equivalent_at(x, y, depth + 1))
}

fn same_multiset(xs: &[Answer], ys: &[Answer], depth: usize) -> bool {
    if xs.len() != ys.len() {
        return false;
    }
    let mut used = vec![false; ys.len()];
    xs.iter().all(|x| {
        let found = ys.iter().enumerate().find(|(j, y)| !used[*j] && equivalent_at(x, y, depth + 1)).map(|(j, _)| j);
        found.map(|j| used[j] = true).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple_nest(depth: usize) -> Answer {
        let mut a = Answer::Text("x".into());
        for _ in 0..depth {
            a = Answer::Tuple { open: '(', close: ')', items: vec![Answer::Text("1".into()), a] };
        }
        a
    }

    #[test]
    fn comparison_and_key_are_depth_bounded() {
        let shallow = tuple_nest(MAX_DEPTH - 1);
        assert!(equivalent(&shallow, &shallow.clone()));
        let deep = tuple_nest(MAX_DEPTH + 1);
        assert!(!equivalent(&deep, &deep.clone()), "past the bound: not equivalent");
        assert!(deep.key().contains("<too deep>"));
        assert!(!equivalent(&Answer::Unparsable, &Answer::Unparsable));
    }
}
