//! The change test behind an agent's trend (issue 19, item 3), on the
//! plugin's own online state ([`AgentDoc::evaluate`]) and verdict function
//! ([`score::verdicts`], what `trust_recalculation` runs), over many seeds:
//! * ten agents of constant quality (each with its own per-type approval
//!   probabilities and type mix) for 10,000 evaluations each, verdicts after
//!   every 10 evaluations of each agent: no declining verdict in ≥ 95% of 20
//!   seeded runs — where the old fast − slow EWMA rule (threshold 0.05)
//!   flags some agent in every run;
//! * one agent whose approval drops from 0.8 to 0.5 among nine constant
//!   ones is declared declining within 100 of its evaluations after the
//!   drop in ≥ 80% of 20 seeds (the rate and the delays are printed).
//!
//! `trust_recalculation` itself (BH over the agents of the workspace, alerts,
//! the verdict in the profile) is exercised through the host in
//! `simulation.rs` (`a_declining_agent_is_flagged`).

use learnloop_plugin_trust::Config;
use learnloop_plugin_trust::score::{AgentDoc, verdicts};
use learnloop_stats::{Ewma, SplitMix64 as Rng};

const TYPES: [&str; 3] = ["strategy", "content", "analytics"];

/// One agent of the simulation: approval per type, type mix.
struct Agent {
    p: [f64; 3],
    mix: [f64; 3],
    doc: AgentDoc,
    fast: Ewma,
    slow: Ewma,
}

impl Agent {
    fn draw(rng: &mut Rng) -> Agent {
        let base = 0.4 + 0.5 * rng.uniform();
        let p = [0, 1, 2].map(|_| (base + 0.2 * (rng.uniform() - 0.5)).clamp(0.05, 0.97));
        let w = [0, 1, 2].map(|_| 0.2 + rng.uniform());
        let sum: f64 = w.iter().sum();
        Agent {
            p,
            mix: w.map(|x| x / sum),
            doc: AgentDoc::default(),
            fast: Ewma::new(0.2).unwrap(),
            slow: Ewma::new(0.05).unwrap(),
        }
    }

    /// One evaluation with approval probability `override_p` (else the agent's own per type).
    fn step(&mut self, rng: &mut Rng, cfg: &Config, override_p: Option<f64>, t: i64) {
        let u = rng.uniform();
        let k = if u < self.mix[0] {
            0
        } else if u < self.mix[0] + self.mix[1] {
            1
        } else {
            2
        };
        let p = override_p.unwrap_or(self.p[k]);
        let y = if rng.uniform() < p { 1.0 } else { 0.0 };
        let label = if y > 0.5 { "approved" } else { "rejected" };
        self.doc.evaluate(TYPES[k], label, y, y, Some(1.0), Some(0.7), cfg, t);
        self.fast.update(y).unwrap();
        self.slow.update(y).unwrap();
    }

    /// The old rule: fast − slow EWMA below −0.05 after ≥ 20 evaluations.
    fn old_rule_declining(&self) -> bool {
        self.fast.count() >= 20 && self.slow.value().unwrap() - self.fast.value().unwrap() > 0.05
    }
}

/// What `trust_recalculation` does with the agents' pending blocks; returns
/// the agents declared declining.
fn recalc(agents: &mut [Agent], cfg: &Config) -> Vec<usize> {
    let pending: Vec<(String, f64, f64)> = agents
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.doc.change.pending().map(|(d, im)| (i.to_string(), d, im)))
        .collect();
    let mut out = Vec::new();
    for (id, status, adj) in verdicts(&pending, cfg.decline_fdr) {
        let i: usize = id.parse().unwrap();
        agents[i].doc.change.decide(status, adj);
        if status == "declining" {
            out.push(i);
        }
    }
    out
}

#[test]
fn stationary_agents_raise_no_declining_alert() {
    let cfg = Config::default();
    let seeds = 20;
    let (mut clean, mut old_clean) = (0, 0);
    let mut false_verdicts = 0;
    for seed in 0..seeds {
        let mut rng = Rng::new(1000 + seed);
        let mut agents: Vec<Agent> = (0..10).map(|_| Agent::draw(&mut rng)).collect();
        let (mut flagged, mut old_flagged) = (false, false);
        for i in 0..10_000i64 {
            for a in agents.iter_mut() {
                a.step(&mut rng, &cfg, None, i);
            }
            if i % 10 == 9 {
                let d = recalc(&mut agents, &cfg);
                false_verdicts += d.len();
                flagged |= !d.is_empty();
                old_flagged |= agents.iter().any(Agent::old_rule_declining);
            }
        }
        clean += usize::from(!flagged);
        old_clean += usize::from(!old_flagged);
    }
    println!(
        "stationary: runs without a declining verdict {clean}/{seeds} (change test), {old_clean}/{seeds} (old EWMA rule); false declining verdicts in all runs: {false_verdicts}"
    );
    assert!(clean * 100 >= 95 * seeds as usize, "{clean}/{seeds} runs clean");
    assert!(
        old_clean < seeds as usize / 2,
        "the old rule is the baseline this test must be able to fail on: {old_clean}/{seeds}"
    );
}

#[test]
fn a_drop_from_0_8_to_0_5_is_flagged_within_100_evaluations() {
    let cfg = Config::default();
    let seeds = 20u64;
    let mut delays = Vec::new();
    let mut within = 0;
    let mut false_alarms = 0;
    for seed in 0..seeds {
        let mut rng = Rng::new(5000 + seed);
        let mut agents: Vec<Agent> = (0..10).map(|_| Agent::draw(&mut rng)).collect();
        // Agent 0 is approved 80% of the time on every type, then 50%.
        let change = 500 + (rng.next_u64() % 30) as i64;
        let mut delay = None;
        for i in 0..(change + 300) {
            for (j, a) in agents.iter_mut().enumerate() {
                let p = (j == 0).then_some(if i < change { 0.8 } else { 0.5 });
                a.step(&mut rng, &cfg, p, i);
            }
            if i % 10 == 9 {
                let d = recalc(&mut agents, &cfg);
                false_alarms += d.iter().filter(|&&j| j != 0 || i < change).count();
                if delay.is_none() && d.contains(&0) && i >= change {
                    delay = Some(i + 1 - change);
                }
            }
        }
        if delay.is_some_and(|d| d <= 100) {
            within += 1;
        }
        delays.push(delay);
    }
    println!(
        "drop 0.8 → 0.5: flagged within 100 evaluations in {within}/{seeds} seeds; delays {delays:?}; false alarms {false_alarms}"
    );
    assert!(within * 100 >= 80 * seeds as usize, "{within}/{seeds}: {delays:?}");
    assert!(delays.iter().all(Option::is_some), "flagged eventually in every seed: {delays:?}");
}
