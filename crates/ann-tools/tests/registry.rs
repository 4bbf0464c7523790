//! The registry with a tool a user registers from Rust, the calculator, and every way a call can go
//! wrong: each is an error result the model reads, none a panic.

use std::sync::Arc;

use ann_llm::{Role, ToolCall, ToolDefinition};
use ann_tools::{Calculator, RegistryError, Tool, ToolContext, ToolError, ToolRegistry, builtin_registry};
use async_trait::async_trait;
use serde_json::{Map, Value, json};

/// A user's tool: counts the words of a text, or the lines of the example's files.
struct WordCount;

#[async_trait]
impl Tool for WordCount {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition::new(
            "word_count",
            "Counts the words of a text.",
            json!({"type": "object", "properties": {"text": {"type": "string"}, "upper": {"type": "boolean"}},
                   "required": ["text"]}),
        )
    }

    async fn call(&self, arguments: &Map<String, Value>, context: &ToolContext) -> Result<String, ToolError> {
        let text = arguments["text"].as_str().unwrap_or_default();
        if text == "boom" {
            panic!("the user's tool broke");
        }
        if text.is_empty() {
            return Err(ToolError::BadArguments("the text is empty".into()));
        }
        Ok(format!("{} words, {} files", text.split_whitespace().count(), context.files.len()))
    }
}

fn call(name: &str, arguments: &str) -> ToolCall {
    ToolCall::new("call_1", name, arguments)
}

#[tokio::test]
async fn a_user_registers_a_tool_and_the_model_calls_it() {
    let mut registry = builtin_registry(None);
    registry.register(Arc::new(WordCount)).unwrap();
    assert_eq!(registry.names(), ["calculator", "word_count"]);
    let offered = registry.definitions(Some(&["word_count".to_string()])).unwrap();
    assert_eq!(offered[0].name, "word_count");
    assert_eq!(registry.definitions(Some(&["shell".to_string()])).unwrap_err(), "shell");
    let context = ToolContext::with_files(["a.csv".into(), "b.csv".into()]);
    let outcome = registry.call(&call("word_count", r#"{"text": "one two three"}"#), &context).await;
    assert_eq!((outcome.content.as_str(), outcome.is_error), ("3 words, 2 files", false));
    let message = outcome.message();
    assert_eq!((message.role, message.tool_call_id.as_deref()), (Role::Tool, Some("call_1")));
    // Registering twice, or under a name OpenAI would refuse, is an error for the developer.
    assert_eq!(registry.register(Arc::new(WordCount)), Err(RegistryError::Duplicate("word_count".into())));
}

#[tokio::test]
async fn every_failure_is_an_error_result_the_model_reads() {
    let mut registry = ToolRegistry::new().with_max_result_chars(200);
    registry.register(Arc::new(WordCount)).unwrap();
    registry.register(Arc::new(Calculator)).unwrap();
    let context = ToolContext::default();
    let cases = [
        (call("shell", "{}"), "there is no tool named \"shell\"; the tools are: calculator, word_count"),
        (call("word_count", r#"{"text": "#), "are not valid JSON"),
        (call("word_count", "[1, 2]"), "are not a JSON object"),
        (call("word_count", "{}"), "missing the required argument \"text\""),
        (call("word_count", r#"{"text": 7}"#), "argument \"text\" must be of type string, got 7"),
        (call("word_count", r#"{"text": "x", "upper": "yes"}"#), "must be of type boolean"),
        (call("word_count", r#"{"text": ""}"#), "bad arguments: the text is empty"),
        (call("word_count", r#"{"text": "boom"}"#), "the tool crashed: the user's tool broke"),
        (call("calculator", r#"{"expression": "1/(3-3)"}"#), "error from tool calculator: division by zero"),
    ];
    for (call, expected) in cases {
        let outcome = registry.call(&call, &context).await;
        assert!(outcome.is_error, "{call:?}: {outcome:?}");
        assert!(outcome.content.contains(expected), "{call:?}: {}", outcome.content);
    }
    let exact = registry.call(&call("calculator", r#"{"expression": "1/3 + 1/6 + 2^-2"}"#), &context).await;
    assert_eq!((exact.content.as_str(), exact.is_error), ("3/4 (≈ 0.75)", false));
    let long = registry.call(&call("calculator", &json!({"expression": "7^500"}).to_string()), &context).await;
    assert!(long.content.ends_with("more characters cut]") && long.content.len() < 260, "{}", long.content);
}

#[test]
fn bad_names_are_refused() {
    struct Named(&'static str);
    #[async_trait]
    impl Tool for Named {
        fn definition(&self) -> ToolDefinition {
            ToolDefinition::new(self.0, "", json!({}))
        }
        async fn call(&self, _: &Map<String, Value>, _: &ToolContext) -> Result<String, ToolError> {
            Ok(String::new())
        }
    }
    let mut registry = ToolRegistry::new();
    for name in ["", "has space", "dots.no", &"x".repeat(65)] {
        assert_eq!(
            registry.register(Arc::new(Named(Box::leak(name.to_string().into_boxed_str())))),
            Err(RegistryError::BadName(name.into()))
        );
    }
}
