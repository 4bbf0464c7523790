//! The tokenizer and the structured-output token trie, both built from the GGUF file's metadata.

use std::collections::BTreeSet;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::LocalError;

/// The model's tokenizer with the ids that end a turn.
#[derive(Clone)]
pub struct GgufTokenizer {
    pub(crate) inner: Tokenizer,
    /// Tokens that end generation (`<|im_end|>`, the eos token, `<|endoftext|>`).
    pub(crate) stop_ids: BTreeSet<u32>,
    pub(crate) bos_id: Option<u32>,
    pub(crate) add_bos: bool,
    /// GGUF token types (1 normal, 3 control, ...), indexed by id.
    token_types: Vec<u32>,
}

fn meta_u32(ct: &Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok().or_else(|| v.to_i32().ok().map(|x| x as u32)))
}

fn meta_str<'a>(ct: &'a Content, key: &str) -> Option<&'a str> {
    ct.metadata.get(key).and_then(|v| v.to_string().ok()).map(String::as_str)
}

impl GgufTokenizer {
    /// Build the tokenizer from `tokenizer.ggml.*` metadata (byte-level BPE, as GPT-2, SmolLM, Llama 3, Qwen 2).
    pub fn from_gguf(ct: &Content) -> Result<Self, LocalError> {
        let mut inner = Tokenizer::from_gguf(ct).map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        // candle maps unknown pre-tokenizer names to GPT-2's (which adds a prefix space); SmolLM's
        // `tokenizer.json` splits digits one by one and adds no prefix space.
        if meta_str(ct, "tokenizer.ggml.pre") == Some("smollm") {
            let pre = Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
            ]);
            inner.with_pre_tokenizer(Some(pre));
        }
        let token_types: Vec<u32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(types)) => {
                types.iter().map(|v| v.to_i32().map(|x| x as u32).or_else(|_| v.to_u32()).unwrap_or(1)).collect()
            }
            _ => Vec::new(),
        };
        let mut stop_ids = BTreeSet::new();
        if let Some(eos) = meta_u32(ct, "tokenizer.ggml.eos_token_id") {
            stop_ids.insert(eos);
        }
        for name in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"] {
            if let Some(id) = inner.token_to_id(name) {
                stop_ids.insert(id);
            }
        }
        let add_bos = ct.metadata.get("tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false);
        Ok(Self { inner, stop_ids, bos_id: meta_u32(ct, "tokenizer.ggml.bos_token_id"), add_bos, token_types })
    }

    /// Token ids of `text`, special tokens such as `<|im_start|>` recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let enc = self.inner.encode(text, false).map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.inner.decode(ids, true).map_err(|e| LocalError::Tokenizer(e.to_string()))
    }

    /// Text of `ids`, special tokens written out.
    pub fn decode_special(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.inner.decode(ids, false).map_err(|e| LocalError::Tokenizer(e.to_string()))
    }

    /// The vocabulary size (including added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn is_special(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
            || Some(id) == self.bos_id
            || self.token_types.get(id as usize).is_some_and(|t| matches!(t, 2..=5))
    }

    /// The token environment llguidance constrains decoding over (`n_vocab` = the model's logits width).
    pub fn tok_env(&self, n_vocab: usize) -> Result<TokEnv, LocalError> {
        let chars = byte_level_chars();
        let mut words = Vec::with_capacity(n_vocab);
        for id in 0..n_vocab as u32 {
            let bytes = match self.inner.id_to_token(id) {
                Some(name) if self.is_special(id) => special(&name),
                Some(name) => {
                    let bytes: Option<Vec<u8>> = name.chars().map(|c| chars.get(&c).copied()).collect();
                    // A token that is not byte-level text is kept out of reach of the grammar.
                    bytes.unwrap_or_else(|| special(&format!("<[{id}]>")))
                }
                None => special(&format!("<[{id}]>")),
            };
            words.push(bytes);
        }
        let eos = self.stop_ids.iter().copied().collect::<Vec<_>>();
        let first_eos =
            *eos.first().ok_or_else(|| LocalError::Tokenizer("the model has no end-of-turn token".into()))?;
        let mut info = TokRxInfo::new(n_vocab as u32, first_eos);
        info.tok_bos = self.bos_id;
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eos);
        Ok(Arc::new(TrieEnv { trie, tokenizer: self.inner.clone() }))
    }
}

/// A special token as the trie spells it: a marker byte, then its name.
fn special(name: &str) -> Vec<u8> {
    let mut b = vec![TokTrie::SPECIAL_TOKEN_MARKER];
    b.extend_from_slice(name.as_bytes());
    b
}

/// GPT-2's byte-level alphabet: the printable character standing for each byte, inverted.
fn byte_level_chars() -> std::collections::HashMap<char, u8> {
    let mut map = std::collections::HashMap::new();
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let c = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("valid char")
        };
        map.insert(c, b);
    }
    map
}

struct TrieEnv {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for TrieEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |s| {
            self.tokenizer.encode(s, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
        })
    }
}
