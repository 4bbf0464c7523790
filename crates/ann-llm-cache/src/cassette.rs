//! JSONL cassettes: one cache entry per line, sorted by key, for committing small recordings as fixtures.
//!
//! A line is `{"key":…,"backend":…,"request":{…},"response":{…}}`: the fields in that order, the
//! request in its canonical form (the one the key hashes), the response as recorded (never marked as
//! a cache hit). Writing the same entries always gives the same bytes.

use ann_llm::{ChatRequest, ChatResponse};
use serde::{Deserialize, Serialize};

/// One cache entry as a cassette line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassetteEntry {
    /// `request.fingerprint(&backend)`.
    pub key: String,
    /// The identity of the backend that answered (`ChatModel::identity`).
    pub backend: String,
    /// The whole request (tags are never part of it).
    pub request: ChatRequest,
    /// The answer as the backend gave it.
    pub response: ChatResponse,
}

impl CassetteEntry {
    /// An entry for `request` answered by `backend`; the key is computed.
    pub fn new(backend: &str, request: &ChatRequest, response: &ChatResponse) -> Self {
        Self {
            key: request.fingerprint(backend),
            backend: backend.to_owned(),
            request: request.clone(),
            response: ChatResponse { cache_hit: false, ..response.clone() },
        }
    }

    /// The line (without its newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a cassette entry always serializes")
    }

    /// Parse one line and check that its key is the fingerprint of its request and backend.
    /// The error is a message meant to follow `file:line: `.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let mut entry: CassetteEntry = serde_json::from_str(line).map_err(|e| format!("malformed entry: {e}"))?;
        let expected = entry.request.fingerprint(&entry.backend);
        if entry.key != expected {
            return Err(format!(
                "key {} does not match its request and backend (they hash to {expected}); \
                 was the request edited by hand?",
                entry.key
            ));
        }
        entry.response.cache_hit = false;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use ann_llm::Message;

    use super::*;

    fn check(line: &str, expect_ok: bool) {
        let parsed = CassetteEntry::parse_line(line);
        assert_eq!(parsed.is_ok(), expect_ok, "{line}: {parsed:?}");
        if let Ok(entry) = parsed {
            assert_eq!(entry.to_line(), line, "a valid line re-serializes to itself");
        }
    }

    #[test]
    fn lines_round_trip_and_keys_are_checked() {
        let req = ChatRequest::new("m", vec![Message::user("hi")]).with_temperature(0.7);
        let entry = CassetteEntry::new("b", &req, &ChatResponse::text("m", "hello"));
        let line = entry.to_line();
        check(&line, true);
        check(&line.replace("\"hi\"", "\"ho\""), false);
        check(&line.replace("0.7", "0.8"), false);
        check(&line.replace("\"backend\":\"b\"", "\"backend\":\"c\""), false);
        check(&line.replace("\"key\"", "\"kee\""), false);
        check(&line[..line.len() - 1], false);
        check("", false);
    }
}
