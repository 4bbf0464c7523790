//! The chat template: the Jinja template stored in the GGUF file (`tokenizer.chat_template`), else ChatML.

use ann_llm::{Message, Role};
use minijinja::{Environment, context};

use crate::LocalError;

/// ChatML, used when the file carries no template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

/// A rendered prompt and the byte offsets where each complete message ends (the places a shared
/// prefix can be cached).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedPrompt {
    pub text: String,
    pub message_ends: Vec<usize>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

impl ChatTemplate {
    /// Compile `source` (Jinja, as in Hugging Face `chat_template`).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, LocalError> {
        let mut env = Environment::new();
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| LocalError::Tokenizer(format!("chat template does not compile: {e}")))?;
        Ok(Self { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    fn render_raw(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, LocalError> {
        let messages: Vec<_> =
            messages.iter().map(|m| context! { role => role_name(m.role), content => m.content.as_str() }).collect();
        let tmpl = self.env.get_template("chat").map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })
        .map_err(|e| LocalError::Tokenizer(format!("rendering the chat template: {e}")))
    }

    /// Render `messages` followed by the assistant's generation prompt.
    pub fn render(&self, messages: &[Message]) -> Result<RenderedPrompt, LocalError> {
        let text = self.render_raw(messages, true)?;
        let mut message_ends = Vec::new();
        for k in 1..messages.len() {
            let prefix = self.render_raw(&messages[..k], false)?;
            // Only templates that render a conversation as a prefix of its continuation can share it.
            if !prefix.is_empty() && text.starts_with(&prefix) && message_ends.last().is_none_or(|&l| prefix.len() > l)
            {
                message_ends.push(prefix.len());
            }
        }
        Ok(RenderedPrompt { text, message_ends })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_renders_messages_and_boundaries() {
        let t = ChatTemplate::new(CHATML_TEMPLATE, "", "").unwrap();
        let r = t.render(&[Message::system("Be brief."), Message::user("Hi")]).unwrap();
        assert_eq!(
            r.text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(r.message_ends, vec!["<|im_start|>system\nBe brief.<|im_end|>\n".len()]);
    }
}
