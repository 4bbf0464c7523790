//! Reading a model's answer: tagged sections (`<critique>...</critique>`) and JSON values embedded
//! in prose or code fences. Every crate that parses model text uses these, so that "the first JSON
//! object of a reply" means one thing everywhere.

use serde_json::{Map, Value};

/// The trimmed content of the first `<name>...</name>` element; an unclosed element runs to the
/// end of the text. `None` when the opening tag is absent.
///
/// ```
/// use ann_llm::answer::extract_tag;
/// assert_eq!(extract_tag("<gradient> be brief </gradient>", "gradient"), Some("be brief"));
/// ```
pub fn extract_tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let rest = &text[start..];
    let end = rest.find(&close).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// Replies longer than this are searched for JSON in their first `MAX_SCAN_BYTES` only (a value
/// that starts or ends past it is not found), so a runaway reply costs bounded time.
pub const MAX_SCAN_BYTES: usize = 1 << 20;

/// Every JSON value that starts at one of `openers` (`[`, `{`) in `text` and parses, in order of
/// their first character (nested values are found too, after the value that holds them).
///
/// Linear in the text: one structural pass matches each opener with its closer (strings and
/// escapes respected, each opener's span computed once and reused by the values around it), and
/// only balanced spans are handed to the JSON parser, which stops at the first error. Trying a
/// full parse at every opener instead costs quadratic time on a reply of nested brackets.
pub fn json_values<'a>(text: &'a str, openers: &'a [char]) -> impl Iterator<Item = Value> + 'a {
    let mut cut = text.len().min(MAX_SCAN_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = &text[..cut];
    let mut spans = Spans::new(text.as_bytes());
    text.char_indices().filter(|(_, c)| openers.contains(c)).filter_map(move |(i, _)| {
        let end = spans.end_of(i)?;
        serde_json::from_str::<Value>(&text[i..end]).ok()
    })
}

/// The matching closer of every opener reached so far: `Some(end)` (exclusive) for a balanced span,
/// `None` for an opener whose brackets do not balance (a string that never ends, a wrong closer).
struct Spans<'a> {
    bytes: &'a [u8],
    /// Per byte: [`UNKNOWN`], [`UNBALANCED`] or the end of the span opened there (the text is at
    /// most [`MAX_SCAN_BYTES`] long, so a `u32` holds every end).
    ends: Vec<u32>,
}

const UNKNOWN: u32 = u32::MAX;
const UNBALANCED: u32 = u32::MAX - 1;

impl<'a> Spans<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, ends: Vec::new() }
    }

    fn get(&self, at: usize) -> Option<Option<usize>> {
        match self.ends.get(at).copied().unwrap_or(UNKNOWN) {
            UNKNOWN => None,
            UNBALANCED => Some(None),
            end => Some(Some(end as usize)),
        }
    }

    fn set(&mut self, at: usize, end: Option<usize>) {
        if self.ends.is_empty() {
            self.ends = vec![UNKNOWN; self.bytes.len()];
        }
        self.ends[at] = end.map_or(UNBALANCED, |e| e as u32);
    }

    /// The end of the balanced span opened at `start` (which holds `[` or `{`).
    fn end_of(&mut self, start: usize) -> Option<usize> {
        if let Some(known) = self.get(start) {
            return known;
        }
        let closer = |b: u8| if b == b'[' { b']' } else { b'}' };
        // Open spans, innermost last: (where it opened, the closer it needs).
        let mut open: Vec<(usize, u8)> = vec![(start, closer(self.bytes[start]))];
        let mut i = start + 1;
        while let Some(&(_, want)) = open.last() {
            let Some(&b) = self.bytes.get(i) else { break };
            match b {
                b'"' => match self.string_end(i) {
                    Some(after) => i = after,
                    None => break,
                },
                b'[' | b'{' => match self.get(i) {
                    Some(Some(end)) => i = end,
                    Some(None) => break,
                    None => {
                        open.push((i, closer(b)));
                        i += 1;
                    }
                },
                b']' | b'}' if b == want => {
                    let (opened, _) = open.pop().expect("a span is open");
                    i += 1;
                    self.set(opened, Some(i));
                }
                b']' | b'}' => break,
                _ => i += 1,
            }
        }
        // Whatever is still open cannot balance: an inner failure fails every span around it.
        for (opened, _) in open {
            self.set(opened, None);
        }
        self.get(start).flatten()
    }

    /// The position after the string that opens at `quote`, or `None` when it never closes.
    fn string_end(&self, quote: usize) -> Option<usize> {
        let mut i = quote + 1;
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    }
}

/// The first JSON value in `text` that starts at one of `openers` and parses.
///
/// ```
/// use ann_llm::answer::first_json_value;
/// let v = first_json_value("say {bad} then [1, 2]", &['{', '[']);
/// assert_eq!(v, Some(serde_json::json!([1, 2])));
/// ```
pub fn first_json_value(text: &str, openers: &[char]) -> Option<Value> {
    json_values(text, openers).next()
}

/// The first JSON object in `text` (model replies often wrap JSON in prose or code fences).
pub fn first_json_object(text: &str) -> Option<Map<String, Value>> {
    json_values(text, &['{']).find_map(|value| match value {
        Value::Object(map) => Some(map),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_json() {
        let text = "<critique> wrong sign </critique>\n<requirement>a boxed number";
        assert_eq!(extract_tag(text, "critique"), Some("wrong sign"));
        assert_eq!(extract_tag(text, "requirement"), Some("a boxed number"));
        assert_eq!(extract_tag(text, "gradient"), None);
        assert_eq!(first_json_value("say {bad} then {\"a\": 1}", &['{']), Some(serde_json::json!({"a": 1})));
        assert_eq!(first_json_value("nothing", &['{', '[']), None);
    }

    /// The definition the linear scanner must agree with: a full parse tried at every opener.
    fn naive(text: &str, openers: &[char]) -> Vec<Value> {
        text.char_indices()
            .filter(|(_, c)| openers.contains(c))
            .filter_map(|(i, _)| serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>().next()?.ok())
            .collect()
    }

    #[test]
    fn the_linear_scanner_agrees_with_a_parse_at_every_opener() {
        // Seeded xorshift over an alphabet rich in structure, strings and escapes.
        let alphabet: Vec<char> = "[]{}\"\\:, 1ax".chars().collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            for openers in [&['{'][..], &['['][..], &['[', '{'][..]] {
                assert_eq!(json_values(&text, openers).collect::<Vec<_>>(), naive(&text, openers), "text: {text:?}");
            }
        }
        for text in ["{\"a\": \"}\"} {\"b\": 2}", "[\"\\\"]\", 1]", "x\" {\"a\":1}", "[[1], [2]]", "{\"é\": [\"ü{\"]}"]
        {
            assert_eq!(json_values(text, &['[', '{']).collect::<Vec<_>>(), naive(text, &['[', '{']), "text: {text:?}");
        }
    }

    #[test]
    fn hostile_replies_are_scanned_in_linear_time() {
        // Each of these took seconds to minutes with a parse at every opener at 5 MB; here the
        // structural pass visits every byte a bounded number of times. Checked by result only.
        for hostile in ["[".repeat(200_000), "[1,".repeat(100_000), "{\"a\":".repeat(50_000), "[\"".repeat(100_000)] {
            assert_eq!(first_json_value(&hostile, &['[', '{']), None);
        }
        let deep_then_value = format!("{}{}", "[".repeat(100_000), "{\"ok\": true}");
        assert_eq!(first_json_object(&deep_then_value).map(|m| m.len()), Some(1));
        let past_the_cap = format!("{} {{\"late\": 1}}", "x".repeat(MAX_SCAN_BYTES));
        assert_eq!(first_json_object(&past_the_cap), None, "only the first MAX_SCAN_BYTES are searched");
    }

    #[test]
    fn first_object_skips_arrays_and_prose() {
        let text = "```json\n[1] {not json} {\"choice\": 2}\n```";
        assert_eq!(first_json_object(text).and_then(|m| m.get("choice").cloned()), Some(serde_json::json!(2)));
        assert_eq!(first_json_object("[{\"a\": 1}]").map(|m| m.len()), Some(1));
        assert!(first_json_object("no json").is_none());
    }
}
