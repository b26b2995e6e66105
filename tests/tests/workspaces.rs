//! Workspaces are honoured everywhere: with `default_workspace = "team-a"`
//! in the config, every CLI command and every HTTP route that takes a
//! workspace acts on team-a unless told otherwise, and on the workspace it
//! is told when it is. Each row of the tables names a command or route and
//! checks where the data went (or which workspace was read).
//!
//! mod list: the CLI table (sample, ingest, jobs, improvements, call,
//! export, replay, keys), the HTTP table (ingest with and without
//! `?workspace=`, plugin and improvement routes), and `learnloop call
//! --server` against the real `learnloop-api`.

use learnloop_e2e::{Scratch, http, start_api};
use serde_json::{Value, json};

const CONFIG: &str = "default_workspace = \"team-a\"\n[improvements]\nauto_apply = false\n";

/// The distinct workspaces of the rows `sql` selects.
fn workspaces(s: &Scratch, sql: &str) -> Vec<String> {
    let mut w: Vec<String> = s.sql(sql).into_iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    w.sort();
    w.dedup();
    w
}

fn stdout_json(out: &std::process::Output, what: &str) -> Value {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn agents(v: &Value) -> usize {
    v["agents"].as_array().map_or(0, Vec::len)
}

#[test]
fn every_command_and_route_honours_default_workspace() {
    let s = Scratch::new();
    let config = s.write("learnloop.toml", CONFIG);
    let sample = s.path("sample.jsonl");

    // --- The CLI -------------------------------------------------------
    let out = s.run(&["sample", "--plugins", "trust", "-o", sample.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&sample).unwrap();
    assert!(
        text.contains("\"workspace\":\"team-a\"") && !text.contains("\"workspace\":\"default\""),
        "sample writes team-a"
    );
    assert!(s.run(&["ingest", sample.to_str().unwrap()]).status.success());
    s.write(
        "bare.jsonl",
        r#"{"type":"prediction","id":"bare-1","plugin":"drift","subject":"m1","kind":"regression","value":1}"#,
    );
    assert!(s.run(&["ingest", "bare.jsonl"]).status.success());
    assert_eq!(
        workspaces(&s, "SELECT workspace FROM predictions"),
        ["team-a"],
        "ingest: records without a workspace go to team-a"
    );

    let (code, run) = s.json(&["jobs", "run", "trust", "meta_learning"]);
    assert_eq!(code, 0, "{run}");
    assert!(
        run["report"]["improvements"]["team-a"]["held"].as_array().is_some_and(|h| h.len() == 1),
        "jobs run: team-a: {run:#}"
    );
    let (_, list) = s.json(&["improvements", "list"]);
    let id = list["improvements"][0]["id"].to_string();

    // (command, check of its output or exit). Each would read `default`
    // (and fail its check) if the command ignored default_workspace.
    type Check = Box<dyn Fn(&std::process::Output) -> Result<(), String>>;
    let ok_json = |f: fn(&Value) -> bool| -> Check {
        Box::new(move |o: &std::process::Output| {
            let v: Value = serde_json::from_slice(&o.stdout)
                .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&o.stderr)))?;
            if o.status.success() && f(&v) { Ok(()) } else { Err(format!("unexpected: {v}")) }
        })
    };
    let fails_with = |fragment: &'static str| -> Check {
        Box::new(move |o: &std::process::Output| {
            let err = String::from_utf8_lossy(&o.stderr);
            if !o.status.success() && err.contains(fragment) {
                Ok(())
            } else {
                Err(format!("expected a failure naming {fragment:?}: {err}"))
            }
        })
    };
    let show = ["improvements", "show", id.as_str()];
    let approve = ["improvements", "approve", id.as_str()];
    let reject = ["improvements", "reject", id.as_str()];
    let cli: Vec<(Vec<&str>, Check)> = vec![
        (vec!["improvements", "list"], ok_json(|v| v["improvements"].as_array().is_some_and(|a| a.len() == 1))),
        (show.to_vec(), ok_json(|v| v["workspace"] == "team-a")),
        (vec!["call", "trust", "GET", "/agents"], ok_json(|v| agents(v) > 0)),
        (vec!["call", "trust", "GET", "/agents", "--workspace", "default"], ok_json(|v| agents(v) == 0)),
        (vec!["call", "trust", "GET", "/agents", "-q", "workspace=default"], ok_json(|v| agents(v) == 0)),
        (approve.to_vec(), ok_json(|v| v["status"] == "applied" && v["workspace"] == "team-a")),
        (
            vec!["improvements", "process", "--plugin", "trust"],
            ok_json(|v| v["trust"]["monitoring"].as_array().is_some_and(|m| !m.is_empty())),
        ),
        (
            vec!["improvements", "applied", "--plugin", "trust"],
            ok_json(|v| {
                v["applied"].as_array().is_some_and(|a| a.iter().any(|x| x["target"] == "weights" && x["version"] == 1))
            }),
        ),
        (vec!["improvements", "rollback", "trust", "weights"], ok_json(|v| v["in_force"]["version"] == 0)),
        // Found in team-a (and refused for its status), not "not found" in default.
        (reject.to_vec(), fails_with("rolled_back")),
        (vec!["replay", "--plugin", "trust"], ok_json(|v| v["workspaces"].to_string().contains("team-a"))),
        (vec!["keys", "create", "--role", "writer"], fails_with("--workspace is required")),
    ];
    for (args, check) in &cli {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = s.run(&full);
        if let Err(e) = check(&out) {
            panic!("learnloop {}: {e}", args.join(" "));
        }
    }
    // A plugin route that writes: its state lands in team-a.
    let body = json!({"id": "t1", "model": "m1", "versions": ["v1", "v2"]}).to_string();
    let out = s.run(&["call", "drift", "POST", "/ab_tests", "--body", &body]);
    stdout_json(&out, "call drift POST /ab_tests");
    assert_eq!(workspaces(&s, "SELECT workspace FROM plugin_state WHERE plugin = 'drift'"), ["team-a"]);
    // Export names the workspace of every line.
    let out = s.run(&["export", "--workspace", "team-a"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).lines().all(|l| l.contains("\"workspace\":\"team-a\"")));

    // --- The HTTP API, on the same config and data ---------------------
    let (_api, addr) = start_api(
        &s,
        &["--config", config.to_str().unwrap(), "--data-dir", s.data_dir().to_str().unwrap(), "--bind", "127.0.0.1:0"],
    );
    let admin = std::fs::read_to_string(s.data_dir().join("admin.key")).unwrap().trim().to_string();
    let writer: Value =
        stdout_json(&s.run(&["--json", "keys", "create", "--role", "writer", "--workspace", "team-a"]), "keys create");
    let writer = writer["key"].as_str().unwrap().to_string();
    let bare =
        |id: &str| json!({"id": id, "plugin": "drift", "subject": "m2", "kind": "regression", "value": 2}).to_string();
    let named = |id: &str, ws: &str| {
        json!({"id": id, "workspace": ws, "plugin": "drift", "subject": "m2", "kind": "regression", "value": 2})
            .to_string()
    };
    // (method, path, key, body, status, workspace the record landed in or a fragment of the problem)
    let routes: Vec<(&str, &str, &str, String, u16, &str)> = vec![
        ("POST", "/api/v1/predictions?workspace=team-b", &admin, bare("h1"), 201, "team-b"),
        (
            "POST",
            "/api/v1/outcomes?workspace=team-b",
            &admin,
            json!({"id": "h1o", "plugin": "drift", "prediction_id": "h1", "value": 3}).to_string(),
            201,
            "team-b",
        ),
        ("POST", "/api/v1/predictions", &admin, bare("h2"), 422, "required for admin keys"),
        ("POST", "/api/v1/predictions", &admin, named("h3", "team-c"), 201, "team-c"),
        ("POST", "/api/v1/predictions", &writer, bare("h4"), 201, "team-a"),
        ("POST", "/api/v1/predictions?workspace=team-b", &writer, bare("h5"), 403, "\"team-a\", not \"team-b\""),
        ("POST", "/api/v1/predictions", &writer, named("h6", "team-b"), 403, "\"team-a\", not \"team-b\""),
        (
            "POST",
            "/api/v1/predictions?workspace=team-b",
            &admin,
            named("h7", "team-c"),
            422,
            "query parameter asks for \"team-b\"",
        ),
        ("POST", "/api/v1/predictions?ws=team-b", &admin, bare("h8"), 400, "unknown query parameter \"ws\""),
    ];
    for (method, path, key, body, status, expect) in &routes {
        let (st, answer) = http(&addr, method, path, Some(key), body);
        assert_eq!(st, *status, "{method} {path} {body}: {answer}");
        let id = serde_json::from_str::<Value>(body).unwrap()["id"].as_str().unwrap().to_string();
        let landed = workspaces(
            &s,
            &format!(
                "SELECT workspace FROM predictions WHERE id = '{id}' UNION ALL SELECT workspace FROM outcomes WHERE id = '{id}'"
            ),
        );
        if *status < 300 {
            assert_eq!(landed, [*expect], "{method} {path} {body}");
        } else {
            let detail: Value =
                serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {answer}"));
            assert!(
                detail["detail"].as_str().unwrap_or("").contains(expect),
                "{method} {path}: {answer} lacks {expect:?}"
            );
            assert!(landed.is_empty(), "{method} {path}: nothing stored");
        }
    }
    // Reads: without `?workspace=` an admin key reads default_workspace (team-a).
    let get = |path: &str, key: &str| -> Value {
        let (st, b) = http(&addr, "GET", path, Some(key), "");
        assert_eq!(st, 200, "GET {path}: {b}");
        serde_json::from_str(&b).unwrap()
    };
    assert!(agents(&get("/api/v1/trust/agents", &admin)) > 0, "plugin route reads team-a");
    assert_eq!(
        agents(&get("/api/v1/trust/agents?workspace=team-b", &admin)),
        0,
        "plugin route reads team-b when asked"
    );
    assert_eq!(
        get("/api/v1/improvements", &admin)["improvements"].as_array().map(Vec::len),
        Some(1),
        "improvements of team-a"
    );
    assert_eq!(get("/api/v1/improvements?workspace=team-b", &admin)["improvements"].as_array().map(Vec::len), Some(0));
    assert_eq!(get(&format!("/api/v1/improvements/{id}"), &admin)["workspace"], "team-a");
    let (st, b) = http(&addr, "GET", &format!("/api/v1/improvements/{id}?workspace=team-b"), Some(&admin), "");
    assert_eq!(st, 404, "improvement {id} is team-a's: {b}");
    let insights = |q: &str| get(&format!("/api/v1/insights{q}"), &admin)["insights"].as_array().map_or(0, Vec::len);
    assert!(insights("") > 0 && insights("?workspace=team-b") == 0, "insights of team-a by default");
    assert_eq!(get("/api/v1/alerts?workspace=team-b", &admin)["alerts"], json!([]));
    // Writes to an improvement: found in team-a (refused for its status), not found in team-b.
    for action in ["approve", "reject"] {
        let (st, b) = http(&addr, "POST", &format!("/api/v1/improvements/{id}/{action}"), Some(&admin), "");
        assert!(st != 404 && b.contains("rolled_back"), "{action} in team-a: {st} {b}");
        let (st, b) =
            http(&addr, "POST", &format!("/api/v1/improvements/{id}/{action}?workspace=team-b"), Some(&admin), "");
        assert_eq!(st, 404, "{action} in team-b: {b}");
    }
    assert!(get("/api/v1/drift/summary", &writer).to_string().contains("m2"), "the writer's own workspace");

    // --- `learnloop call --server`: the same routes through the API ----
    let server = format!("http://{addr}");
    let out = s.run(&["call", "trust", "GET", "/agents", "--server", &server, "--api-key", &admin]);
    assert!(agents(&stdout_json(&out, "call --server")) > 0, "the server's default_workspace (team-a)");
    let out =
        s.run(&["call", "trust", "GET", "/agents", "--server", &server, "--api-key", &admin, "--workspace", "team-b"]);
    assert_eq!(agents(&stdout_json(&out, "call --server --workspace team-b")), 0);
    let out = s
        .cmd(&[
            "call",
            "drift",
            "POST",
            "/ab_tests",
            "--server",
            &server,
            "--body",
            &json!({"id": "t2", "model": "m2", "versions": ["v1", "v2"]}).to_string(),
        ])
        .env("LEARNLOOP_API_KEY", &writer)
        .output()
        .unwrap();
    stdout_json(&out, "call --server with LEARNLOOP_API_KEY");
    let (_, tests) = s.json(&["call", "drift", "GET", "/ab_tests"]);
    assert!(tests.to_string().contains("\"t2\""), "the server wrote team-a, which the CLI reads locally: {tests}");
    // Refusals come back as the server's problem, named.
    let out = s.run(&[
        "call",
        "drift",
        "GET",
        "/summary",
        "--server",
        &server,
        "--api-key",
        &writer,
        "--workspace",
        "team-b",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server answered 403") && err.contains("team-b"), "{err}");
    let out = s.run(&["call", "drift", "GET", "/summary", "--server", &server]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("LEARNLOOP_API_KEY"), "401 says how to pass a key");
}
