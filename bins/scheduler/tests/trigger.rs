//! A triggered job through the real host: the trust plugin's
//! `meta_learning` is due as soon as `GET /learning/status` says
//! `should_trigger_learning_cycle`, and no longer once it ran.

use learnloop_plugin_api::JobTrigger;
use learnloop_scheduler::JobRunner;
use learnloop_test_support::host::host_on;
use learnloop_test_support::records::sample_records;
use learnloop_test_support::store::{fast, test_store};

#[test]
fn trust_meta_learning_is_due_after_enough_new_evaluations_and_not_after_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let store = test_store(dir.path(), &fast());
    let host =
        host_on::<learnloop_plugin_trust::TrustPlugin>(store, dir.path(), "trust", "learning_trigger_outcomes = 10");
    let manifest = &host.plugins()["trust"].manifest;
    let job = manifest.jobs.iter().find(|j| j.name == "meta_learning").unwrap();
    let trigger: &JobTrigger = job.trigger.as_ref().expect("meta_learning declares its trigger");
    assert_eq!((trigger.route.as_str(), trigger.field.as_str()), ("/learning/status", "should_trigger_learning_cycle"));
    assert_eq!(host.trigger_due("trust", trigger), Ok(false), "no evaluations yet");

    let records = sample_records("trust", 8); // 6 evaluations per workspace
    host.ingest(records, learnloop_core::Timestamp::now()).unwrap();
    assert_eq!(host.trigger_due("trust", trigger), Ok(false), "6 new evaluations < 10");
    // The same 8 again (duplicates) and 12 more: 15 evaluations per workspace.
    host.ingest(sample_records("trust", 20), learnloop_core::Timestamp::now()).unwrap();
    assert_eq!(host.trigger_due("trust", trigger), Ok(true), "enough new evaluations in a workspace");
    let run = host.run_job("trust", "meta_learning", "test", None, 1).unwrap();
    assert_eq!(run.status, learnloop_core::JobStatus::Succeeded, "{:?}", run.error);
    assert_eq!(host.trigger_due("trust", trigger), Ok(false), "the cycle ran: nothing new since");
    // A route that does not exist is an error naming it, not a silent "no".
    let bad = JobTrigger { route: "/nope".into(), field: "x".into() };
    let e = host.trigger_due("trust", &bad).unwrap_err();
    assert!(e.contains("/nope"), "{e}");
}
