//! The `loupe` binary: a real run writes the reference JSON schema; bad input exits 1 with one line.

use std::path::PathBuf;
use std::process::{Command, Output};

fn models() -> PathBuf {
    std::env::var_os("LOUPE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

fn smollm2() -> String {
    let p = models().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "run scripts/fetch-models.sh first");
    p.to_string_lossy().into_owned()
}

fn loupe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loupe")).args(args).output().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(name)
}

/// Exit status 1 and exactly one line on stderr that says what is wrong.
fn assert_one_line_error(out: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("loupe: error: "), "{stderr}");
    assert!(stderr.to_lowercase().contains(&mentions.to_lowercase()), "{stderr:?} should mention {mentions:?}");
}

#[test]
fn chat_run_writes_the_reference_schema() {
    let json = tmp("australia.json");
    let out = loupe(&[
        "--model",
        &smollm2(),
        "--chat",
        "What is the capital of Australia?",
        "--track",
        " Canberra",
        " Sydney",
        "--top-k",
        "7",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("<|im_start|>") && stdout.contains("timings:"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "model",
        "prompt",
        "text",
        "ids",
        "tokens",
        "n_rows",
        "entropy",
        "top_ids",
        "top_probs",
        "top_tokens",
        "timings",
    ] {
        assert!(!r[key].is_null(), "missing {key}");
    }
    assert_eq!(r["model"], "SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(r["prompt"]["chat"], "What is the capital of Australia?");
    assert_eq!(r["n_rows"], 31);
    let n = r["ids"].as_array().unwrap().len();
    assert_eq!(r["entropy"].as_array().unwrap().len(), 31);
    assert_eq!(r["entropy"][0].as_array().unwrap().len(), n);
    assert_eq!(r["top_ids"][30][n - 1].as_array().unwrap().len(), 7);
    assert_eq!(r["top_tokens"][30][n - 1][0], "The");
    assert_eq!(r["tracked"][0]["piece"], "ĠCanberra");
    for stage in ["load", "forward", "lens"] {
        assert!(r["timings"][stage].as_f64().unwrap() > 0.0);
    }
    // Same numbers as the PyTorch reference for this prompt.
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../lens/tests/fixtures/reference/smollm2-135m__capital-australia.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(r["ids"], reference["ids"]);
    assert_eq!(r["text"], reference["text"]);
    let (a, b) = (r["entropy"].as_array().unwrap(), reference["entropy"].as_array().unwrap());
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.as_array().unwrap().iter().zip(rb.as_array().unwrap()) {
            assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 0.01);
        }
    }
}

#[test]
fn bad_input_exits_with_one_clear_line() {
    let model = smollm2();
    assert_one_line_error(&loupe(&["--model", "/no/such/model.gguf", "--raw", "hi"]), "cannot read");

    let text_file = tmp("not-a-model.gguf");
    std::fs::write(&text_file, "this is a text file, not weights").unwrap();
    assert_one_line_error(&loupe(&["--model", text_file.to_str().unwrap(), "--raw", "hi"]), "not a GGUF file");

    let truncated = tmp("truncated.gguf");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert_one_line_error(&loupe(&["--model", truncated.to_str().unwrap(), "--raw", "hi"]), "truncated");

    assert_one_line_error(&loupe(&["--model", &model, "--raw", ""]), "empty");
    assert_one_line_error(&loupe(&["--model", &model, "--chat", "   "]), "empty");
    let long = "word ".repeat(9000);
    assert_one_line_error(&loupe(&["--model", &model, "--raw", &long]), "context");

    assert_one_line_error(&loupe(&["--model", &model]), "--chat");
    assert_one_line_error(&loupe(&["--model", &model, "--raw", "a", "--chat", "b"]), "not both");
    assert_one_line_error(&loupe(&["--model", &model, "--raw", "a", "--precision", "half"]), "fast or exact");
    assert_one_line_error(&loupe(&["--model", &model, "--raw", "a", "--top-k", "many"]), "number");
    assert_one_line_error(&loupe(&["--model", &model, "--chat", "a", "--template", "/no/such.jinja"]), "chatml");
    assert_one_line_error(&loupe(&["--frobnicate"]), "unknown argument");

    let bad_template = tmp("bad.jinja");
    std::fs::write(&bad_template, "{% for m in messages %}{{ m.content }").unwrap();
    assert_one_line_error(
        &loupe(&["--model", &model, "--chat", "a", "--template", bad_template.to_str().unwrap()]),
        "template",
    );
}

#[test]
fn help_and_raw_runs_work() {
    let out = loupe(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--precision"));
    let out = loupe(&[
        "--model",
        &smollm2(),
        "--raw",
        "The Eiffel Tower is in the city of",
        "--precision",
        "fast",
        "--generate",
        "3",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("answer: ") && stdout.contains("fast precision"), "{stdout}");
}

/// A template that doubles a string forty times asks for a terabyte. minijinja's fuel does not
/// see memory; the tool's budget stops it with one line, not the system's out-of-memory killer.
#[test]
fn a_template_that_takes_all_memory_stops_at_the_budget() {
    let model = smollm2();
    let bomb = tmp("memory-bomb.jinja");
    std::fs::write(
        &bomb,
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    )
    .unwrap();
    // The same budget holds an ordinary run of the model.
    let ordinary = loupe(&["--model", &model, "--chat", "What is the capital of Australia?", "--memory-limit", "1G"]);
    assert!(ordinary.status.success(), "{}", String::from_utf8_lossy(&ordinary.stderr));

    let out = loupe(&["--model", &model, "--chat", "a", "--template", bomb.to_str().unwrap(), "--memory-limit", "1G"]);
    assert_one_line_error(&out, "memory budget of 1024 MiB");
    assert_one_line_error(&loupe(&["--model", &model, "--raw", "a", "--memory-limit", "lots"]), "8G");
}

/// Templates that never end and take no memory: minijinja walks 10^15 lazily repeated items inside
/// one instruction (or while folding constants at compile time), where fuel does not reach. The
/// tool's deadline stops each with one line.
#[test]
fn a_template_that_never_ends_stops_at_the_deadline() {
    let model = smollm2();
    for (name, source) in [
        ("in.jinja", "{{ 'z' in 10**15 * ['a'] }}"),
        ("equal.jinja", "{% if (10**15 * ['a']) == (10**15 * ['a']) %}x{% endif %}"),
    ] {
        let endless = tmp(name);
        std::fs::write(&endless, source).unwrap();
        let started = std::time::Instant::now();
        let out = loupe(&[
            "--model",
            &model,
            "--chat",
            "a",
            "--template",
            endless.to_str().unwrap(),
            "--template-timeout",
            "2",
        ]);
        assert_one_line_error(&out, "did not finish rendering within 2 s");
        assert!(started.elapsed().as_secs() < 60, "{name} took {:?}", started.elapsed());
    }
}

/// `loupe --messages` against the conversation references (transformers' `apply_chat_template` on
/// message lists, scripts/make-conversation-references.py) for the three real models, at both
/// precisions: the same text and tokens, every cell within 0.01 nats (exact) or a median within
/// 0.05 (fast), and the top-1 where the reference's top-2 are apart (by 0.001, exact; 0.02, fast).
#[test]
fn conversations_match_the_references_at_both_precisions() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lens/tests/fixtures/reference");
    let gemma_template = fixtures.join("gemma-chat-template.jinja");
    for (model, short) in [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m"),
        ("qwen2.5-coder-0.5b-instruct.gguf", "qwen2.5-coder-0.5b"),
        ("gemma-3-270m-q4_k_m.gguf", "gemma3-270m"),
    ] {
        for name in ["two-turns", "three-turns", "six-turns"] {
            let reference: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(fixtures.join(format!("{short}__conversation-{name}.json"))).unwrap(),
            )
            .unwrap();
            // The conversation as a user keeps it: the chat APIs' form.
            let conversation = tmp(&format!("{short}-{name}.json"));
            let messages = serde_json::json!({ "messages": reference["prompt"]["messages"] });
            std::fs::write(&conversation, messages.to_string()).unwrap();
            for (precision, gap) in [("exact", 0.001), ("fast", 0.02)] {
                let json = tmp(&format!("{short}-{name}-{precision}.out.json"));
                let model_path = models().join(model);
                let mut args =
                    vec!["--model", model_path.to_str().unwrap(), "--messages", conversation.to_str().unwrap()];
                args.extend(["--precision", precision, "--json", json.to_str().unwrap()]);
                if short.starts_with("gemma") {
                    args.extend(["--template", gemma_template.to_str().unwrap()]);
                }
                let out = loupe(&args);
                assert!(out.status.success(), "{short} {name}: {}", String::from_utf8_lossy(&out.stderr));
                let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
                let what = format!("{short} {name} {precision}");
                assert_eq!(got["text"], reference["text"], "{what}: rendered text");
                assert_eq!(got["ids"], reference["ids"], "{what}: token ids");
                let (mut errors, mut agree, mut compared) = (Vec::new(), 0, 0);
                let cells = |v: &serde_json::Value, key: &str| v[key].as_array().unwrap().clone();
                for (r, (row, want)) in cells(&got, "entropy").iter().zip(cells(&reference, "entropy")).enumerate() {
                    for (p, (h, want)) in row.as_array().unwrap().iter().zip(want.as_array().unwrap()).enumerate() {
                        errors.push((h.as_f64().unwrap() - want.as_f64().unwrap()).abs());
                        let probs = &reference["top_probs"][r][p];
                        if probs[0].as_f64().unwrap() - probs[1].as_f64().unwrap() > gap {
                            compared += 1;
                            agree += usize::from(got["top_ids"][r][p][0] == reference["top_ids"][r][p][0]);
                        }
                    }
                }
                errors.sort_by(f64::total_cmp);
                let (worst, median) = (errors[errors.len() - 1], errors[errors.len() / 2]);
                println!("{what}: max entropy error {worst:.5}, median {median:.5}, top-1 {agree}/{compared}");
                if precision == "exact" {
                    assert!(worst <= 0.01, "{what}: entropy off by {worst} nats");
                    assert_eq!(agree, compared, "{what}: top-1");
                } else {
                    assert!(median <= 0.05, "{what}: median entropy error {median}");
                    assert!(agree as f64 >= 0.97 * compared as f64, "{what}: top-1 {agree}/{compared}");
                }
            }
        }
    }
}

/// A conversation file that does not fit, a missing one, or a template that refuses the roles'
/// order: one line saying which and why. Standard input works as a file.
#[test]
fn conversation_files_that_do_not_fit_get_one_line() {
    let model = smollm2();
    let file = tmp("conversation.json");
    let path = file.to_str().unwrap();
    let run = |args: &[&str]| loupe(&[&["--model", model.as_str()], args].concat());
    std::fs::write(&file, r#"[{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]"#).unwrap();
    assert_one_line_error(&run(&["--messages", path]), "message 2 has the role \"tool\"");
    std::fs::write(&file, "role: user").unwrap();
    assert_one_line_error(&run(&["--messages", path]), "not JSON");
    assert_one_line_error(&run(&["--messages", "/no/such/chat.json"]), "cannot read");
    assert_one_line_error(&run(&["--messages", path, "--chat", "b"]), "not both");
    // Two user turns in a row, under a template that demands alternation (as Mistral's does).
    std::fs::write(&file, r#"[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]"#).unwrap();
    let strict = tmp("alternating.jinja");
    std::fs::write(
        &strict,
        "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}\
         {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\
         {% endif %}[{{ m.role }}] {{ m.content }}\n{% endfor %}",
    )
    .unwrap();
    assert_one_line_error(&run(&["--messages", path, "--template", strict.to_str().unwrap()]), "must alternate");
    // The same conversation from standard input, under the model's own template.
    let mut child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["--model", &model, "--messages", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(std::fs::read(&file).unwrap().as_slice()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Both user turns and the generation prompt open with the template's own token.
    assert!(stdout.matches("<|im_start|>").count() >= 3, "{stdout}");
}
