//! A plugin's log lines (`Context::log`) reach `tracing` at their own level,
//! with the plugin and workspace as fields and the host's `run` span
//! around them; nothing is dropped by level on the way (the subscriber's
//! filter decides).

use std::io::Write;
use std::sync::{Arc, Mutex};

use learnloop_plugin_api::{
    Context, Event, JobSpec, KindSpec, LogLevel, Manifest, Plugin, PluginError, RecordType, RouteRequest,
    RouteResponse, abi,
};
use learnloop_test_support::host::{host, ingest_all};
use learnloop_test_support::records::sample_records;
use serde_json::Value;

/// A plugin whose job logs one line at each level.
#[derive(Debug, Default)]
struct Chatty;

impl Plugin for Chatty {
    fn manifest(&self) -> Manifest {
        let kind = |record_type| KindSpec {
            record_type,
            kinds: vec![],
            payload_schema: Value::Null,
            description: String::new(),
        };
        Manifest {
            name: "chatty".into(),
            version: "0.0.0".into(),
            abi_version: abi::ABI_VERSION,
            description: "logs at every level".into(),
            kinds: vec![kind(RecordType::Prediction), kind(RecordType::Outcome)],
            routes: vec![],
            jobs: vec![JobSpec::new("talk", "0 0 * * * *", "logs a line at each level")],
            config: vec![],
            schemas: Default::default(),
        }
    }

    fn on_events(&self, _ctx: &mut dyn Context, _events: &[Event]) -> Result<(), PluginError> {
        Ok(())
    }

    fn run_job(&self, ctx: &mut dyn Context, _job: &str) -> Result<Value, PluginError> {
        for (level, word) in [
            (LogLevel::Debug, "d-line"),
            (LogLevel::Info, "i-line"),
            (LogLevel::Warn, "w-line"),
            (LogLevel::Error, "e-line"),
        ] {
            ctx.log(level, word);
        }
        Ok(Value::Null)
    }

    fn handle(&self, _ctx: &mut dyn Context, _request: &RouteRequest) -> Result<RouteResponse, PluginError> {
        Err(PluginError::not_found("no routes"))
    }
}

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plugin_log_lines_reach_tracing_at_their_level() {
    let dir = tempfile::tempdir().unwrap();
    let h = host::<Chatty>(dir.path(), "chatty");
    let mut records = sample_records("chatty", 1);
    records.truncate(1);
    ingest_all(&h, records, 1_700_000_000_000_000);
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let run = tracing::subscriber::with_default(subscriber, || h.run_job("chatty", "talk", "test", None, 1)).unwrap();
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    for (level, word) in [("DEBUG", "d-line"), ("INFO", "i-line"), ("WARN", "w-line"), ("ERROR", "e-line")] {
        let line = text.lines().find(|l| l.contains(word)).unwrap_or_else(|| panic!("{word} was dropped:\n{text}"));
        assert!(line.contains(level), "{word} not at {level}: {line}");
        assert!(line.contains("learnloop_plugin:"), "target: {line}");
        assert!(line.contains("plugin=\"chatty\"") && line.contains("workspace="), "fields: {line}");
        assert!(line.contains("run{plugin=\"chatty\" job=\"talk\""), "the host's run span: {line}");
    }
    assert!(text.contains("job chatty.talk started") && text.contains("job chatty.talk succeeded"), "{text}");
}
