//! A deterministic offline provider: no network, same request → same response.
//!
//! - Last message from the user and tools offered: each line `call <tool> <json object>`
//!   naming an offered tool becomes a tool call (`call_1`, `call_2`, …), text empty,
//!   stop reason `tool_use`.
//! - Last message a tool result: `[builtin] tool results: <name>: <content>; …` over the
//!   trailing run of tool results.
//! - Otherwise: `[builtin] <last user text>`.
//!
//! Text always starts with `[builtin] ` so outputs say where they came from, except in
//! `json_mode`, where the text must parse as JSON: there it is an object whose `provider`
//! field is `"builtin"` (`{"provider":"builtin","echo":…}`, or `…,"tool_results":[…]}`).
//! Usage counts whitespace-separated words in and out.

use serde_json::{Value, json};

use super::{ChatRequest, ChatResponse, Message, OnText, ProviderConfig, ToolCall, Usage};

const PREFIX: &str = "[builtin] ";

pub(super) fn chat(cfg: &ProviderConfig, req: &ChatRequest, on_text: OnText<'_>) -> ChatResponse {
    let model = req
        .model
        .as_deref()
        .or(cfg.default_model.as_deref())
        .filter(|m| !m.is_empty())
        .unwrap_or("builtin")
        .to_string();

    let tool_calls = match req.messages.last() {
        Some(Message::User { text }) if !req.tools.is_empty() => parse_calls(text, req),
        _ => Vec::new(),
    };
    let (text, stop_reason) = if !tool_calls.is_empty() {
        (String::new(), "tool_use")
    } else if matches!(req.messages.last(), Some(Message::ToolResult { .. })) {
        (tool_results_text(req), "end_turn")
    } else {
        (echo_text(req), "end_turn")
    };

    if let Some(cb) = on_text {
        for piece in pieces(&text) {
            cb(piece);
        }
    }

    let output_words = words(&text)
        + tool_calls
            .iter()
            .map(|c| words(&c.name) + words(&c.arguments.to_string()))
            .sum::<u64>();
    ChatResponse {
        provider: "builtin".into(),
        model,
        text,
        tool_calls,
        stop_reason: stop_reason.into(),
        usage: Usage {
            input_tokens: input_words(req),
            output_tokens: output_words,
        },
    }
}

fn parse_calls(text: &str, req: &ChatRequest) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("call ") else {
            continue;
        };
        let Some((name, args)) = rest.trim_start().split_once(char::is_whitespace) else {
            continue;
        };
        if !req.tools.iter().any(|t| t.name == name) {
            continue;
        }
        let Ok(arguments @ Value::Object(_)) = serde_json::from_str::<Value>(args.trim()) else {
            continue;
        };
        calls.push(ToolCall {
            id: format!("call_{}", calls.len() + 1),
            name: name.to_string(),
            arguments,
        });
    }
    calls
}

/// The tool results after the last non-tool-result message, in order.
fn trailing_results(req: &ChatRequest) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = req
        .messages
        .iter()
        .rev()
        .map_while(|m| match m {
            Message::ToolResult { name, content, .. } => Some((name.as_str(), content.as_str())),
            _ => None,
        })
        .collect();
    out.reverse();
    out
}

fn tool_results_text(req: &ChatRequest) -> String {
    let results = trailing_results(req);
    if req.json_mode {
        let list: Vec<Value> = results
            .iter()
            .map(|(n, c)| json!({"name": n, "content": c}))
            .collect();
        return json!({"provider": "builtin", "tool_results": list}).to_string();
    }
    let joined: Vec<String> = results.iter().map(|(n, c)| format!("{n}: {c}")).collect();
    format!("{PREFIX}tool results: {}", joined.join("; "))
}

fn echo_text(req: &ChatRequest) -> String {
    let last_user = req
        .messages
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::User { text } => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or_default();
    if req.json_mode {
        json!({"provider": "builtin", "echo": last_user}).to_string()
    } else {
        format!("{PREFIX}{last_user}")
    }
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn input_words(req: &ChatRequest) -> u64 {
    let mut n = req.system.as_deref().map(words).unwrap_or(0);
    for m in &req.messages {
        n += match m {
            Message::User { text } => words(text),
            Message::Assistant { text, tool_calls } => {
                words(text)
                    + tool_calls
                        .iter()
                        .map(|c| words(&c.name) + words(&c.arguments.to_string()))
                        .sum::<u64>()
            }
            Message::ToolResult { content, .. } => words(content),
        };
    }
    n
}

/// Splits text into at most three pieces at char boundaries, so streaming is exercised.
fn pieces(text: &str) -> Vec<&str> {
    let chars = text.chars().count();
    if chars == 0 {
        return Vec::new();
    }
    let step = chars.div_ceil(3).max(1);
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .step_by(step)
        .chain(std::iter::once(text.len()))
        .collect();
    bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_exactly() {
        for s in ["", "a", "ab", "[builtin] héllo wörld ✓", "0123456789"] {
            let p = pieces(s);
            assert_eq!(p.concat(), s);
            assert!(p.len() <= 3);
        }
        assert_eq!(pieces("abcdef").len(), 3);
    }
}
