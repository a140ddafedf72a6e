//! Per-model token prices and the cost of one call.
//!
//! No prices are built in: they change too often to hard-code, so configuration sets them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok_usd: f64,
    pub output_per_mtok_usd: f64,
}

/// Prices keyed by model name, or by `provider/model` when two providers share a name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(HashMap<String, Price>);

impl Prices {
    pub fn set(&mut self, model: &str, p: Price) {
        self.0.insert(model.to_string(), p);
    }

    /// Cost in USD; the builtin provider is free, a model without a price gives `None`.
    ///
    /// Providers answer with dated model names (`gpt-4o-2024-08-06`,
    /// `claude-3-5-haiku-20241022`), so a price set for the undated name applies to them.
    pub fn cost_usd(&self, provider: &str, model: &str, u: Usage) -> Option<f64> {
        if provider == "builtin" {
            return Some(0.0);
        }
        let undated = strip_date(model);
        let p = [model, undated].iter().find_map(|m| {
            self.0
                .get(&format!("{provider}/{m}"))
                .or_else(|| self.0.get(*m))
        })?;
        Some(
            u.input_tokens as f64 * p.input_per_mtok_usd / 1e6
                + u.output_tokens as f64 * p.output_per_mtok_usd / 1e6,
        )
    }
}

/// Removes a trailing `-YYYY-MM-DD` or `-YYYYMMDD`.
fn strip_date(model: &str) -> &str {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let b = model.as_bytes();
    if b.len() > 11 && b[b.len() - 11] == b'-' {
        let tail = &model[model.len() - 10..];
        let parts: Vec<&str> = tail.split('-').collect();
        if let [y, m, d] = parts.as_slice()
            && y.len() == 4
            && m.len() == 2
            && d.len() == 2
            && digits(y)
            && digits(m)
            && digits(d)
        {
            return &model[..model.len() - 11];
        }
    }
    if b.len() > 9 && b[b.len() - 9] == b'-' && digits(&model[model.len() - 8..]) {
        return &model[..model.len() - 9];
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_dates_only() {
        assert_eq!(strip_date("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(strip_date("claude-3-5-haiku-20241022"), "claude-3-5-haiku");
        assert_eq!(strip_date("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(strip_date("llama3"), "llama3");
        assert_eq!(strip_date("model-12345678x"), "model-12345678x");
    }
}
