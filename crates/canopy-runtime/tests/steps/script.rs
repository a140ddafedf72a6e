use canopy_runtime::script::{ScriptLimits, ScriptStep};
use serde_json::json;

use crate::common::{call, run};

#[tokio::test]
async fn returns_computed_json() {
    let s = ScriptStep::default();
    let src = r#"
        let total = 0;
        for x in input.items { total += x; }
        #{ total: total, run: context.input.run, prev: context.steps.prev.output.id, names: input.names.map(|n| n.to_upper()) }
    "#;
    let out = run(
        &s,
        call(
            "script",
            json!({"source": src}),
            json!({"items": [1, 2, 3], "names": ["a", "b"]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        json!({"total": 6, "run": 1, "prev": 42, "names": ["A", "B"]})
    );
}

#[tokio::test]
async fn infinite_loop_hits_a_limit() {
    let s = ScriptStep::default();
    // By operations (the default million).
    let e = run(
        &s,
        call("script", json!({"source": "loop {}"}), json!(null)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "script_limit", "{e:?}");
    assert!(!e.retryable);
    // By time: operations raised to the hard maximum, time cut to 200 ms.
    let config = json!({
        "source": "let x = 0; loop { x += 1; }",
        "limits": {"max_operations": 1_000_000_000u64, "max_ms": 200}
    });
    let e = run(&s, call("script", config, json!(null)))
        .await
        .unwrap_err();
    assert_eq!(e.code, "script_limit", "{e:?}");
}

#[tokio::test]
async fn huge_string_stops() {
    let s = ScriptStep::new(ScriptLimits::default());
    let src = r#"let s = "x"; loop { s += s; }"#;
    let e = run(&s, call("script", json!({"source": src}), json!(null)))
        .await
        .unwrap_err();
    assert_eq!(e.code, "script_limit", "{e:?}");
    assert!(e.message.contains("too large"), "{e:?}");
    // Strings spread over an array count together.
    let src = r#"let a = []; let s = "x"; while s.len() < 1000 { s += s; } loop { a.push(s); }"#;
    let e = run(&s, call("script", json!({"source": src}), json!(null)))
        .await
        .unwrap_err();
    assert_eq!(e.code, "script_limit", "{e:?}");
}

#[tokio::test]
async fn syntax_and_runtime_errors_name_the_position() {
    let s = ScriptStep::default();
    let e = run(
        &s,
        call(
            "script",
            json!({"source": "let x = 1;\nlet y = ;"}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "script_error", "{e:?}");
    assert!(e.message.contains("line 2"), "{e:?}");
    let e = run(
        &s,
        call(
            "script",
            json!({"source": "let x = 1;\nx + undefined_var"}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "script_error", "{e:?}");
    assert!(e.message.contains("line 2"), "{e:?}");
    let e = run(&s, call("script", json!({}), json!(null)))
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_config");
    assert!(canopy_runtime::script::check("let = 3").is_err());
}
