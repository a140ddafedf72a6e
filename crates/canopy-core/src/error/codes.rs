//! The table of every public error code. Each row yields the snake_case code, the HTTP status
//! and a one-line description; the docs anchor is `/docs/errors#<code>`, and `docs/errors.md`
//! must have a `## <code>` heading for every row (a unit test checks it).

macro_rules! codes {
    ($($variant:ident => $code:literal, $status:literal, $about:literal;)*) => {
        /// A machine-readable error type.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            pub fn status(self) -> http::StatusCode {
                let n: u16 = match self { $(Code::$variant => $status,)* };
                http::StatusCode::from_u16(n).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
            }

            /// What the code means, for the served error documentation.
            pub const fn about(self) -> &'static str {
                match self { $(Code::$variant => $about,)* }
            }
        }
    };
}

codes! {
    InvalidJson => "invalid_json", 400, "The request body is not well-formed JSON.";
    InvalidCursor => "invalid_cursor", 400, "The pagination cursor could not be decoded; pass `next_cursor` back unchanged.";
    BadRequest => "bad_request", 400, "The request cannot be understood (bad header, query string or content type).";
    Unauthorized => "unauthorized", 401, "No credential was given, or it is malformed, unknown, revoked or expired.";
    SpendingCapExceeded => "spending_cap_exceeded", 402, "The write would take the month's usage past the spending cap.";
    Forbidden => "forbidden", 403, "The credential is valid but lacks the scope, or belongs to another org.";
    ImmutableEntry => "immutable_entry", 403, "The entry cannot be changed (context events are immutable).";
    QuotaExceeded => "quota_exceeded", 403, "A per-project quota is reached.";
    NotFound => "not_found", 404, "The resource or route does not exist for this caller. Resources of other orgs and projects answer this too.";
    BranchNotFound => "branch_not_found", 404, "The branch does not exist, belongs to another org, or is not assigned to this client.";
    BudNotFound => "bud_not_found", 404, "The bud does not exist, belongs to another org, or is not available to this client.";
    RunNotFound => "run_not_found", 404, "The run does not exist for this caller (another client's or org's runs answer this too).";
    MethodNotAllowed => "method_not_allowed", 405, "The route exists but not with this HTTP method.";
    Conflict => "conflict", 409, "The resource already exists, or the request conflicts with its current state.";
    GatePending => "gate_pending", 409, "The run's current step is a gate waiting for a decision: decide it (`POST …/gate`) instead of advancing.";
    PayloadTooLarge => "payload_too_large", 413, "The request body is larger than the server accepts.";
    UnsupportedMediaType => "unsupported_media_type", 415, "The request body has a content type the route does not accept.";
    ValidationError => "validation_error", 422, "The request is well-formed but a field is missing or invalid; `field` names it.";
    AgentHeaderRequired => "agent_header_required", 422, "The route acts for an agent: send `X-Minolith-Agent` (or `X-Canopy-Agent`) naming one.";
    UnknownAgent => "unknown_agent", 422, "The agent header names no agent definition of this project.";
    InvalidType => "invalid_type", 422, "An enum field has a value outside its accepted set; `suggestion` offers the closest one.";
    IdempotencyKeyReused => "idempotency_key_reused", 422, "An `Idempotency-Key` was reused within 24 hours with a different request body.";
    RateLimitExceeded => "rate_limit_exceeded", 429, "Too many requests in the current window; wait `retry_after` seconds.";
    Internal => "internal_error", 500, "Something unexpected broke on the server. It has been logged with the request id.";
    NotSupported => "not_supported", 501, "This Canopy deployment does not offer the feature.";
    Unavailable => "service_unavailable", 503, "The server is shutting down or a dependency is unavailable; retry later.";
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn every_code_is_documented_in_docs_errors_md() {
        let doc = include_str!("../../../../docs/errors.md");
        for code in Code::ALL {
            let heading = format!("\n## {}\n", code.as_str());
            assert!(
                doc.contains(&heading),
                "docs/errors.md lacks a heading for {}",
                code.as_str()
            );
        }
    }
}
