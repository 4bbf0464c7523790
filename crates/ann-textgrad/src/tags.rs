//! Reading tagged sections (`<critique>...</critique>`) and JSON values out of model text.

use serde_json::Value;

/// The trimmed content of the first `<name>...</name>` element; an unclosed element runs to the
/// end of the text. `None` when the opening tag is absent.
pub fn extract_tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let rest = &text[start..];
    let end = rest.find(&close).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// The first JSON value in `text` that starts at one of `openers` (`[`, `{`) and parses.
pub fn first_json_value(text: &str, openers: &[char]) -> Option<Value> {
    text.char_indices().filter(|(_, c)| openers.contains(c)).find_map(|(i, _)| {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        stream.next().and_then(Result::ok)
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
}
