//! The `enrich` job: LLM enrichment of interactions the online update
//! analysed by rules and queued (`enrich/<seq>`).
//!
//! Why a job: routes catch the plugin up on committed events before they
//! answer, so an LLM call in the online update made every read wait for
//! every queued call (1.5 s a call, six interactions: 9 s for one read).
//! Now the rules answer at once and this job asks the LLM later.
//!
//! A run asks first and writes after: it asks the LLM about up to
//! `enrich_per_run` queued interactions without touching any document, then
//! re-reads each user, history entry and queue entry and applies the
//! answers to what it finds, writing each back with compare-and-set. A
//! rule update committed while the LLM was thinking is therefore kept: it
//! is in what the second phase reads, and one committed between that read
//! and the job's commit makes the commit fail as a whole (the run says so,
//! the entries stay queued and the next run asks again). A queue entry is
//! taken off with compare-and-set too, so two runs at once never apply the
//! same analysis twice.
//!
//! What applying means: the interaction's facet change becomes the LLM's
//! deltas (each at most `max_llm_delta`, as validated by [`crate::llm`])
//! instead of the rules' — the difference is applied to the current facets,
//! on top of whatever happened since — and the LLM's goals and preferences
//! are added beside the rules' (source `llm`), except a preference that a
//! newer one of the user contradicts.

use std::collections::BTreeMap;

use learnloop_plugin_api::{Context, Expect, LogLevel, PluginError};
use serde::{Deserialize, Serialize};

use crate::llm::{self, Analysis, LlmStatus};
use crate::online::{EnrichItem, EnrichStats, HistDoc, Meta, UpdateRecord};
use crate::persona::{UserDoc, round4};
use crate::{PersonaPlugin, get_doc, put_doc, user_key};

/// The report of `enrich` (counts only: no times, so it is reproducible).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrichReport {
    /// Queued interactions this run took up.
    pub taken: u64,
    /// Refined by the LLM's analysis.
    pub enriched: u64,
    /// Left to rules: no answer (no LLM configured, unreachable, timed out).
    pub no_answer: u64,
    /// Left to rules: the answer did not validate.
    pub malformed: u64,
    /// Left to rules: `use_llm` is off.
    pub disabled: u64,
    /// Undone before the job reached them (the LLM was not asked).
    pub undone: u64,
    /// Still queued after this run.
    pub remaining: u64,
    /// Interactions never queued because the queue was full (all time).
    pub dropped: u64,
}

/// What the first phase learned about one queued interaction.
struct Asked {
    key: String,
    item: EnrichItem,
    answer: Result<Analysis, LlmStatus>,
}

impl PersonaPlugin {
    /// Runs `enrich` in one workspace.
    pub(crate) fn enrich(&self, ctx: &mut dyn Context) -> Result<EnrichReport, PluginError> {
        let cfg = self.config();
        // Phase 1: ask, writing nothing.
        let mut asked = Vec::new();
        for (key, s) in ctx.scan_state("enrich/", None, cfg.enrich_per_run)? {
            let item: EnrichItem = serde_json::from_value(s.value)?;
            let undone = self.hist(ctx, &item)?.is_none_or(|h| !h.update.signals.success);
            let answer = if undone {
                Err(LlmStatus::Undone)
            } else if !cfg.use_llm {
                Err(LlmStatus::Disabled)
            } else {
                llm::analyse(ctx, cfg, &serde_json::to_value(&item.interaction)?, &item.facets)
            };
            asked.push(Asked { key, item, answer });
        }

        // Phase 2: apply to what is there now, compare-and-set.
        let (mut stats, stats_expect) = get_doc::<EnrichStats>(ctx, "enrich_stats")?;
        let mut report = EnrichReport::default();
        let mut users: BTreeMap<String, (UserDoc, Expect)> = BTreeMap::new();
        for Asked { key, item, answer } in asked {
            // Another run took it meanwhile: its analysis stands.
            let Some(entry) = ctx.get_state(&key)? else { continue };
            ctx.delete_state(&key, Expect::Version(entry.version))?;
            report.taken += 1;
            stats.done += 1;
            if !users.contains_key(&item.user) {
                let (mut u, expect) = get_doc::<UserDoc>(ctx, &user_key(&item.user))?;
                u.ensure_facets(cfg);
                users.insert(item.user.clone(), (u, expect));
            }
            let u = &mut users.get_mut(&item.user).expect("loaded").0;
            u.llm_pending = u.llm_pending.saturating_sub(1);
            // Undone since phase 1: leave it as the rules left it.
            let hist = self.hist(ctx, &item)?.filter(|h| h.update.signals.success);
            let status = match (answer, hist) {
                (Ok(a), Some(h)) => {
                    self.refine(ctx, u, h, &item, &a)?;
                    LlmStatus::Used
                }
                (Ok(_), None) => LlmStatus::Undone,
                (Err(status), hist) => {
                    if let LlmStatus::Malformed(why) = &status {
                        ctx.log(
                            LogLevel::Warn,
                            &format!(
                                "LLM analysis of interaction {} was malformed ({why}); its rule analysis stands",
                                item.interaction_id
                            ),
                        );
                    }
                    if let Some(mut h) = hist {
                        h.update.llm = status.label().into();
                        let hkey = hist_key(&item);
                        let version = ctx.get_state(&hkey)?.map_or(0, |s| s.version);
                        put_doc(ctx, &hkey, &h, Expect::Version(version))?;
                    }
                    status
                }
            };
            let (counter, stat) = match status {
                LlmStatus::Used => (&mut report.enriched, &mut stats.used),
                LlmStatus::Malformed(_) => (&mut report.malformed, &mut stats.malformed),
                LlmStatus::Disabled => (&mut report.disabled, &mut stats.disabled),
                LlmStatus::Undone => (&mut report.undone, &mut stats.undone),
                _ => (&mut report.no_answer, &mut stats.no_answer),
            };
            *counter += 1;
            *stat += 1;
        }
        for (user, (doc, expect)) in users {
            // A user whose document is gone (never the case but after a
            // partial clean-up) is not brought back by its queue entries.
            if expect != Expect::Absent {
                put_doc(ctx, &user_key(&user), &doc, expect)?;
            }
        }
        if report.taken > 0 {
            put_doc(ctx, "enrich_stats", &stats, stats_expect)?;
        }
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        report.remaining = meta.llm_queued.saturating_sub(stats.done);
        report.dropped = meta.llm_dropped;
        Ok(report)
    }

    /// The history entry of a queued interaction, if it is still there.
    fn hist(&self, ctx: &mut dyn Context, item: &EnrichItem) -> Result<Option<HistDoc>, PluginError> {
        Ok(match ctx.get_state(&hist_key(item))? {
            Some(s) => Some(serde_json::from_value(s.value)?),
            None => None,
        })
    }

    /// Applies the LLM's analysis of one interaction to the user, its
    /// history entry and its training record.
    fn refine(
        &self,
        ctx: &mut dyn Context,
        u: &mut UserDoc,
        mut hist: HistDoc,
        item: &EnrichItem,
        a: &Analysis,
    ) -> Result<(), PluginError> {
        let id = item.interaction_id.as_str();
        let t = item.time;
        // Facets: the interaction's change becomes the model's deltas.
        let rule = hist.update.facet_deltas.clone();
        let mut correction: BTreeMap<String, f64> = BTreeMap::new();
        for f in rule.keys().chain(a.facet_deltas.keys()) {
            let c = a.facet_deltas.get(f).copied().unwrap_or(0.0) - rule.get(f).copied().unwrap_or(0.0);
            if c != 0.0 {
                correction.insert(f.clone(), c);
            }
        }
        let before = u.apply_deltas(&correction);
        let mut net = rule;
        for (f, v) in &u.facets {
            let moved = v - before.get(f).copied().unwrap_or(*v);
            if moved != 0.0 {
                *net.entry(f.clone()).or_default() += moved;
            }
        }
        net = net.into_iter().map(|(f, d)| (f, round4(d))).filter(|(_, d)| *d != 0.0).collect();
        let mut new_facets = hist.update.old_facets.clone();
        for (f, d) in &a.facet_deltas {
            if let Some(v) = new_facets.get_mut(f) {
                *v = round4((*v + d).clamp(0.0, 1.0));
            }
        }
        // Memories: the model's goals and preferences beside the rules'.
        for (n, g) in a.goals.iter().enumerate() {
            if u.add_goal(g, item.confidence, format!("{id}:lg{n}"), t, "llm", id).is_some() {
                hist.update.goals_added.push(g.clone());
            }
        }
        for (n, (it, category, avoid)) in a.preferences.iter().enumerate() {
            if u.contradicted_since(it, category, *avoid, t) {
                continue;
            }
            let confidence = round4(0.9 * item.confidence);
            if let Some((_, sup)) =
                u.add_preference(it, category, *avoid, confidence, format!("{id}:lp{n}"), t, "llm", id)
            {
                hist.update.preferences_added.push(if *avoid {
                    format!("Avoids: {it}")
                } else {
                    format!("Prefers: {it}")
                });
                hist.update.superseded.extend(sup);
            }
        }
        u.analysed_by_rules = u.analysed_by_rules.saturating_sub(1);
        u.analysed_by_llm += 1;
        u.last_enriched_at = ctx.now().as_micros();

        hist.update.facet_deltas = net.clone();
        hist.update.new_facets = new_facets.clone();
        hist.update.source = "rules+llm".into();
        hist.update.llm = LlmStatus::Used.label().into();
        hist.memory.source = "rules+llm".into();
        let hkey = hist_key(item);
        let version = ctx.get_state(&hkey)?.map_or(0, |s| s.version);
        put_doc(ctx, &hkey, &hist, Expect::Version(version))?;

        // The training record says what the persona update finally was.
        let tkey = format!("train/p/{:016}", item.seq);
        if let Some(s) = ctx.get_state(&tkey)? {
            let mut rec: UpdateRecord = serde_json::from_value(s.value)?;
            rec.facet_deltas = net;
            rec.new_facets = new_facets;
            rec.source = "rules+llm".into();
            put_doc(ctx, &tkey, &rec, Expect::Version(s.version))?;
        }
        Ok(())
    }
}

/// The key of a queued interaction's history entry.
fn hist_key(item: &EnrichItem) -> String {
    format!("hist/{}/{}", item.user, item.interaction_id)
}
