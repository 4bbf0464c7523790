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

/// Every JSON value that starts at one of `openers` (`[`, `{`) in `text` and parses, in order of
/// their first character (nested values are found too, after the value that holds them).
pub fn json_values<'a>(text: &'a str, openers: &'a [char]) -> impl Iterator<Item = Value> + 'a {
    text.char_indices().filter(|(_, c)| openers.contains(c)).filter_map(|(i, _)| {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        stream.next().and_then(Result::ok)
    })
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

    #[test]
    fn first_object_skips_arrays_and_prose() {
        let text = "```json\n[1] {not json} {\"choice\": 2}\n```";
        assert_eq!(first_json_object(text).and_then(|m| m.get("choice").cloned()), Some(serde_json::json!(2)));
        assert_eq!(first_json_object("[{\"a\": 1}]").map(|m| m.len()), Some(1));
        assert!(first_json_object("no json").is_none());
    }
}
