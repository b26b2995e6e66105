//! The pages over the API's own routes: Overview, Improvements, Alerts and
//! insights, Jobs; and their actions (approve, reject, roll back,
//! acknowledge, run now), each of which calls the HTTP route's handler.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use learnloop_core::{Improvement, ImprovementStatus, Role, Severity, Timestamp};
use serde_json::{Value, json};

use super::html::{Html, num, query};
use super::{Ctx, UiError, UiState, page, redirect, svg};
use crate::routes;
use crate::ui_w;

type Page = Result<Response, UiError>;

/// Since when "open" alerts are counted: all of them, not the API's
/// default of the last 24 hours.
pub const ALL_TIME: &str = "1970-01-01T00:00:00Z";

fn day(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

fn when(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.chars().take(16).collect::<String>().replace('T', " ")
}

/// A JSON value as short text for a table cell.
pub fn short_json(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(|x| num(x, 4)).unwrap_or_else(|| n.to_string()),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    if s.chars().count() > 160 { format!("{}…", s.chars().take(159).collect::<String>()) } else { s }
}

fn error_box(h: &mut Html, what: &str, e: &crate::ApiError) {
    ui_w!(h, "<p class=\"flash bad\">{}: {}</p>", what, e.detail);
}

/// `/ui/`: what the workspace holds and what needs attention.
pub async fn overview(State(s): State<UiState>, ctx: Ctx) -> Page {
    let mut h = Html::new();
    // Records: the store's counts, as `learnloop stats` shows them.
    let store = s.app.host.store().clone();
    let ws = ctx.ws.clone();
    let now = Timestamp::now();
    let from = now.add_micros(-365 * 86_400_000_000);
    let until = now.add_micros(86_400_000_000);
    let (counts, days) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::ApiError>((store.counts(Some(&ws))?, store.daily_counts(&ws, from, until)?))
    })
    .await
    .map_err(crate::ApiError::internal)??;
    let (preds, outs, pending) =
        counts.iter().fold((0, 0, 0), |a, c| (a.0 + c.predictions, a.1 + c.outcomes, a.2 + c.pending));
    // Open alerts: the alerts route's answer, unacknowledged, of all time.
    let alerts = routes::findings::alerts(
        State(s.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[("since", ALL_TIME), ("limit", "10000")])),
    )
    .await
    .map(|Json(a)| a.alerts);
    h.lit("<section class=\"cards\">");
    ui_w!(h, "<div class=\"card\"><span class=\"big\" id=\"predictions\">{}</span> predictions</div>", preds);
    ui_w!(h, "<div class=\"card\"><span class=\"big\" id=\"outcomes\">{}</span> outcomes</div>", outs);
    ui_w!(
        h,
        "<div class=\"card\"><span class=\"big\" id=\"pending\">{}</span> predictions awaiting an outcome</div>",
        pending
    );
    match &alerts {
        Ok(list) => {
            ui_w!(h, "<div class=\"card\"><span class=\"big\" id=\"open-alerts\">{}</span> open alerts", list.len());
            h.lit("<span class=\"sev\">");
            for sev in [Severity::Critical, Severity::High, Severity::Medium, Severity::Low] {
                let n = list.iter().filter(|a| a.severity == sev).count();
                let name = format!("{sev:?}").to_lowercase();
                ui_w!(h, "<span class=\"badge {}\" data-severity=\"{}\">{} {}</span>", name, name, n, name);
            }
            ui_w!(h, "</span> <a href=\"/ui/alerts{}\">see them</a></div>", ctx.wsq());
        }
        Err(e) => error_box(&mut h, "alerts", e),
    }
    h.lit("</section>");

    // Events per day: the 60 days up to the newest day with records in the last year.
    h.lit("<section><h2>Events per day</h2>");
    if let Some(last) = days.last() {
        let first = last.day.as_micros() - 59 * 86_400_000_000;
        let by_day: BTreeMap<i64, (u64, u64)> =
            days.iter().map(|d| (d.day.as_micros(), (d.predictions, d.outcomes))).collect();
        let (mut labels, mut p, mut o) = (Vec::new(), Vec::new(), Vec::new());
        let mut t = first;
        while t <= last.day.as_micros() {
            let (a, b) = by_day.get(&t).copied().unwrap_or((0, 0));
            labels.push(Timestamp::from_micros(t).map(day).unwrap_or_default());
            p.push(a as f64);
            o.push(b as f64);
            t += 86_400_000_000;
        }
        h.push(&svg::stacked_bars(
            "predictions and outcomes per day (event time)",
            &labels,
            &[("predictions", "s1", p), ("outcomes", "s2", o)],
        ));
        ui_w!(
            h,
            "<p class=\"hint\">By event time (when it happened), UTC days, the 60 days up to {}, the newest day with records in the last year.</p>",
            day(last.day)
        );
    } else {
        h.lit("<p class=\"empty\">No records with an event time in the last year.</p>");
    }
    h.lit("</section>");

    // Records per plugin and kind.
    h.lit("<section><h2>Records</h2><table id=\"counts\"><thead><tr><th>plugin</th><th>kind</th><th class=\"n\">predictions</th><th class=\"n\">outcomes</th><th class=\"n\">awaiting outcome</th></tr></thead><tbody>");
    for c in &counts {
        ui_w!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            c.plugin,
            c.kind,
            c.predictions,
            c.outcomes,
            c.pending
        );
    }
    if counts.is_empty() {
        h.lit("<tr><td colspan=\"5\" class=\"empty\">no records in this workspace yet</td></tr>");
    }
    h.lit("</tbody></table></section>");

    // Jobs: last run of each (they span every workspace: admin keys only, as on the API).
    h.lit("<section><h2>Jobs</h2>");
    if ctx.caller.role >= Role::Admin {
        let jobs = learnloop_scheduler::effective_jobs(&s.app.config, &s.app.host);
        h.lit("<table id=\"job-status\"><thead><tr><th>job</th><th>schedule</th><th>last run</th><th>status</th></tr></thead><tbody>");
        for j in &jobs {
            let last = last_run(&s, &ctx, &j.plugin, &j.job).await;
            ui_w!(h, "<tr><td>{}/{}</td><td><code>{}</code></td>", j.plugin, j.job, j.schedule);
            match last {
                Some(r) => ui_w!(
                    h,
                    "<td>{}</td><td><span class=\"status {}\">{}</span></td></tr>",
                    when(r.started_at),
                    r.status.as_str(),
                    r.status.as_str()
                ),
                None => h.lit("<td>never</td><td>—</td></tr>"),
            }
        }
        ui_w!(h, "</tbody></table><p><a href=\"/ui/jobs{}\">schedules, history, run now</a></p>", ctx.wsq());
    } else {
        ui_w!(
            h,
            "<p class=\"hint\">Jobs span every workspace, so their runs are shown to admin keys only (as on <code>GET /api/v1/jobs</code>); yours is a {} key.</p>",
            ctx.caller.role.as_str()
        );
    }
    h.lit("</section>");

    // Notifications: the outbox's latest deliveries in this workspace (the
    // admin route's answer, so admin keys only, as on the API).
    h.lit("<section><h2>Notifications</h2>");
    if ctx.caller.role >= Role::Admin {
        let q: BTreeMap<String, String> = [("workspace", ctx.ws.as_str()), ("limit", "10")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match routes::notifications::list(State(s.app.clone()), ctx.caller.clone(), Ok(axum::extract::Query(q))).await {
            Ok(Json(n)) => {
                if n.destinations.is_empty() {
                    h.lit("<p class=\"hint\">No destinations configured: notifications wait in the outbox. Add <code>[[notify.destinations]]</code> (webhook, Slack, PagerDuty or a file) to the config; <code>learnloop-scheduler</code> delivers them.</p>");
                } else {
                    ui_w!(
                        h,
                        "<p>Destinations: <span id=\"destinations\">{}</span>; <span id=\"unrouted\">{}</span> notification(s) not routed yet.</p>",
                        n.destinations.join(", "),
                        n.unrouted
                    );
                }
                h.lit("<table id=\"notifications\"><thead><tr><th>when</th><th>destination</th><th>event</th><th>subject</th><th>status</th><th class=\"n\">attempts</th><th>last error</th></tr></thead><tbody>");
                for d in &n.deliveries {
                    ui_w!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"status {}\">{}</span></td><td class=\"n\">{}</td><td>{}</td></tr>",
                        when(d.notification.occurred_at),
                        d.destination,
                        d.notification.event,
                        d.notification.subject,
                        d.status.as_str(),
                        d.status.as_str(),
                        d.attempts,
                        d.last_error.as_deref().unwrap_or("")
                    );
                }
                if n.deliveries.is_empty() {
                    h.lit("<tr><td colspan=\"7\" class=\"empty\">no deliveries in this workspace yet</td></tr>");
                }
                h.lit("</tbody></table><p class=\"hint\"><code>learnloop notifications list</code>, <code>retry ID</code>, <code>test DESTINATION</code>; README \"Notifications\".</p>");
            }
            Err(e) => error_box(&mut h, "notifications", &e),
        }
    } else {
        ui_w!(
            h,
            "<p class=\"hint\">Notification deliveries are shown to admin keys only (as on <code>GET /api/v1/notifications</code>); yours is a {} key.</p>",
            ctx.caller.role.as_str()
        );
    }
    h.lit("</section>");

    h.lit("<section><h2>Plugins enabled</h2><ul id=\"plugins\">");
    for (name, loaded) in s.app.host.plugins() {
        ui_w!(
            h,
            "<li><strong>{}</strong> {} — {} route(s), {} job(s)</li>",
            name,
            loaded.manifest.version,
            loaded.manifest.routes.len(),
            loaded.manifest.jobs.len()
        );
    }
    h.lit("</ul></section>");
    Ok(page(&s, &ctx, "Overview", h).await)
}

async fn last_run(s: &UiState, ctx: &Ctx, plugin: &str, job: &str) -> Option<learnloop_core::JobRun> {
    let q: BTreeMap<String, String> = [("plugin", plugin), ("job", job), ("limit", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    routes::jobs::history(State(s.app.clone()), ctx.caller.clone(), Ok(axum::extract::Query(q)))
        .await
        .ok()
        .and_then(|Json(r)| r.runs.into_iter().next())
}

/// `/ui/improvements`: every parameter set with its versions, evidence and
/// lifecycle, and the buttons.
pub async fn improvements(State(s): State<UiState>, ctx: Ctx) -> Page {
    let list = routes::improvements::list(
        State(s.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[("limit", "10000"), ("plugin", ctx.q("plugin")), ("status", ctx.q("status"))])),
    )
    .await?
    .0
    .improvements;
    let applied = routes::improvements::applied(State(s.app.clone()), ctx.caller.clone(), Ok(ctx.route_query(&[])))
        .await?
        .0
        .applied;
    let mut h = Html::new();
    ui_w!(
        h,
        "<form class=\"filters\" method=\"get\" action=\"/ui/improvements\"><input type=\"hidden\" name=\"workspace\" value=\"{}\">",
        ctx.ws
    );
    plugin_select(&mut h, &s, ctx.q("plugin"));
    h.lit("<label>status <select name=\"status\"><option value=\"\">any</option>");
    for st in ImprovementStatus::ALL {
        ui_w!(h, "<option value=\"{}\"", st.as_str());
        if ctx.q("status") == st.as_str() {
            h.lit(" selected");
        }
        ui_w!(h, ">{}</option>", st.as_str());
    }
    h.lit("</select></label><button type=\"submit\">filter</button></form>");
    let mut groups: BTreeMap<(String, String), Vec<&Improvement>> = BTreeMap::new();
    for imp in &list {
        groups.entry((imp.plugin.to_string(), imp.target.clone())).or_default().push(imp);
    }
    if groups.is_empty() {
        h.lit("<p class=\"empty\">No improvements proposed in this workspace yet: plugins propose them when their learning jobs run.</p>");
    }
    for ((plugin, target), imps) in &groups {
        let in_force =
            applied.iter().find(|a| a.plugin == *plugin && a.applied.target == *target).map(|a| a.applied.version);
        ui_w!(
            h,
            "<section class=\"improvement-set\" data-plugin=\"{}\" data-target=\"{}\"><h2>{} / {}</h2>",
            plugin,
            target,
            plugin,
            target
        );
        match in_force {
            Some(v) => ui_w!(
                h,
                "<p>In force: <strong class=\"in-force\">version {}</strong>{}</p>",
                v,
                if v == 0 { " (built-in defaults)" } else { "" }
            ),
            None => h.lit("<p>In force: built-in defaults (never applied)</p>"),
        }
        h.lit("<table><thead><tr><th>id</th><th>version</th><th>status</th><th>metric</th><th class=\"n\">expected gain</th><th>backtest</th><th>lifecycle</th><th>actions</th></tr></thead><tbody>");
        for imp in imps {
            ui_w!(
                h,
                "<tr id=\"improvement-{}\" data-status=\"{}\"><td>{}</td><td>{}</td><td><span class=\"status {}\">{}</span></td><td>{}</td><td class=\"n\">{}</td><td>",
                imp.id,
                imp.status.as_str(),
                imp.id,
                imp.version,
                imp.status.as_str(),
                imp.status.as_str(),
                imp.metric,
                num(imp.expected_gain, 4)
            );
            match &imp.backtest {
                Some(b) => kv_list(&mut h, b),
                None => h.lit("—"),
            }
            h.lit("</td><td><details><summary>");
            ui_w!(h, "{} step(s)</summary><ol>", imp.history.len());
            for ev in &imp.history {
                ui_w!(
                    h,
                    "<li>{} <span class=\"status {}\">{}</span>",
                    when(ev.at),
                    ev.status.as_str(),
                    ev.status.as_str()
                );
                if !ev.note.is_null() {
                    ui_w!(h, " <span class=\"note\">{}</span>", short_json(&ev.note));
                }
                h.lit("</li>");
            }
            h.lit("</ol><p class=\"hint\">parameters</p>");
            kv_list(&mut h, &imp.params);
            if !imp.evidence.is_null() {
                h.lit("<p class=\"hint\">evidence</p>");
                kv_list(&mut h, &imp.evidence);
            }
            h.lit("</details></td><td class=\"actions\">");
            let base = format!("/ui/improvements/{}", imp.id);
            if imp.status == ImprovementStatus::Backtested {
                h.push(&ctx.button(&format!("{base}/approve{}", ctx.wsq()), "Approve", Role::Writer, &Html::new()));
            }
            if matches!(imp.status, ImprovementStatus::Proposed | ImprovementStatus::Backtested) {
                let mut reason = Html::new();
                reason
                    .lit("<input type=\"text\" name=\"reason\" placeholder=\"reason (optional)\" maxlength=\"2000\">");
                h.push(&ctx.button(&format!("{base}/reject{}", ctx.wsq()), "Reject", Role::Writer, &reason));
            }
            h.lit("</td></tr>");
        }
        h.lit("</tbody></table>");
        if in_force.is_some_and(|v| v > 0) {
            let mut extra = Html::new();
            ui_w!(
                extra,
                "<input type=\"hidden\" name=\"plugin\" value=\"{}\"><input type=\"hidden\" name=\"target\" value=\"{}\">",
                plugin,
                target
            );
            extra.lit("<label>to version <select name=\"to_version\"><option value=\"\">the one before</option><option value=\"0\">0 (built-in defaults)</option>");
            let mut versions: Vec<u64> = imps.iter().map(|i| i.version).filter(|v| Some(*v) != in_force).collect();
            versions.sort_unstable();
            versions.dedup();
            for v in versions {
                ui_w!(extra, "<option value=\"{}\">{}</option>", v, v);
            }
            extra.lit("</select></label><input type=\"text\" name=\"reason\" placeholder=\"reason (optional)\" maxlength=\"2000\">");
            h.push(&ctx.button(&format!("/ui/improvements/rollback{}", ctx.wsq()), "Roll back", Role::Writer, &extra));
        }
        h.lit("</section>");
    }
    Ok(page(&s, &ctx, "Improvements", h).await)
}

/// A JSON object as a definition list (nested values as compact JSON).
pub fn kv_list(h: &mut Html, v: &Value) {
    match v {
        Value::Object(m) => {
            h.lit("<dl class=\"kv\">");
            for (k, val) in m {
                ui_w!(h, "<dt>{}</dt><dd>{}</dd>", k, short_json(val));
            }
            h.lit("</dl>");
        }
        other => ui_w!(h, "{}", short_json(other)),
    }
}

fn plugin_select(h: &mut Html, s: &UiState, current: &str) {
    h.lit("<label>plugin <select name=\"plugin\"><option value=\"\">any</option>");
    for name in s.app.host.plugins().keys() {
        ui_w!(h, "<option value=\"{}\"", name);
        if current == name {
            h.lit(" selected");
        }
        ui_w!(h, ">{}</option>", name);
    }
    h.lit("</select></label>");
}

/// After an action: the result as the next page's message, then back.
fn done(s: &UiState, ctx: &Ctx, to: &str, result: Result<String, crate::ApiError>) -> Response {
    match result {
        Ok(msg) => s.sessions.flash(&ctx.sid, true, msg),
        Err(e) if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::UNAUTHORIZED => {
            return super::error_page(e.status, &e.detail);
        }
        Err(e) => s.sessions.flash(&ctx.sid, false, e.detail),
    }
    redirect(&format!("{to}{}", ctx.wsq()))
}

/// `POST /ui/improvements/{id}/{approve|reject}`: the routes'
/// `approve` / `reject` handlers.
pub async fn decide(
    State(s): State<UiState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = ctx.form(&body)?;
    let app = State(s.app.clone());
    let q = Ok(ctx.route_query(&[]));
    let result = match action.as_str() {
        "approve" => {
            routes::improvements::approve(app, ctx.caller.clone(), Path(id.clone()), q).await.map(|Json(i)| {
                format!(
                    "improvement {} approved: {} {} version {} is {}",
                    i.id,
                    i.plugin,
                    i.target,
                    i.version,
                    i.status.as_str()
                )
            })
        }
        "reject" => {
            let reason = form.get("reason").cloned().unwrap_or_default();
            let body = if reason.trim().is_empty() { json!({}) } else { json!({"reason": reason}) };
            routes::improvements::reject(
                app,
                ctx.caller.clone(),
                Path(id.clone()),
                q,
                Ok(Bytes::from(body.to_string())),
            )
            .await
            .map(|Json(i)| format!("improvement {} rejected", i.id))
        }
        _ => return Err(UiError::Page(StatusCode::NOT_FOUND, format!("no action {action:?}: approve or reject"))),
    };
    Ok(done(&s, &ctx, "/ui/improvements", result))
}

/// `POST /ui/improvements/rollback`: the route's `rollback` handler.
pub async fn rollback(State(s): State<UiState>, ctx: Ctx, body: Bytes) -> Result<Response, UiError> {
    let form = ctx.form(&body)?;
    let mut b = json!({
        "plugin": form.get("plugin").cloned().unwrap_or_default(),
        "target": form.get("target").cloned().unwrap_or_default(),
    });
    if let Some(v) = form.get("to_version").filter(|v| !v.is_empty()) {
        let v: u64 = v.parse().map_err(|_| {
            UiError::Page(StatusCode::UNPROCESSABLE_ENTITY, format!("to_version: {v:?} is not a version number"))
        })?;
        b["to_version"] = json!(v);
    }
    if let Some(r) = form.get("reason").filter(|r| !r.trim().is_empty()) {
        b["reason"] = json!(r);
    }
    let result = routes::improvements::rollback(
        State(s.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[])),
        Ok(Bytes::from(b.to_string())),
    )
    .await
    .map(|Json(f)| format!("rolled back: {} version {} is in force", f.in_force.target, f.in_force.version));
    Ok(done(&s, &ctx, "/ui/improvements", result))
}

/// `/ui/alerts`: alerts and insights, filterable, with acknowledge buttons.
pub async fn alerts(State(s): State<UiState>, ctx: Ctx) -> Page {
    let include_ack = ctx.q("include_acknowledged") == "true";
    let since_hours: i64 = match ctx.q("hours") {
        "" => 24,
        "all" => 0,
        h => h.parse().map_err(|_| {
            UiError::Page(StatusCode::UNPROCESSABLE_ENTITY, format!("hours: {h:?} is not a number of hours"))
        })?,
    };
    let since = if since_hours == 0 {
        ALL_TIME.to_string()
    } else {
        Timestamp::now().add_micros(-since_hours * 3_600_000_000).to_rfc3339()
    };
    let severity = ctx.q("severity").to_string();
    let alerts = routes::findings::alerts(
        State(s.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[
            ("plugin", ctx.q("plugin")),
            ("since", &since),
            ("limit", "1000"),
            ("include_acknowledged", if include_ack { "true" } else { "" }),
        ])),
    )
    .await?
    .0
    .alerts;
    let insights = routes::findings::insights(
        State(s.app.clone()),
        ctx.caller.clone(),
        Ok(ctx.route_query(&[("plugin", ctx.q("plugin")), ("kind", ctx.q("kind")), ("limit", "200")])),
    )
    .await?
    .0
    .insights;
    let mut h = Html::new();
    ui_w!(
        h,
        "<form class=\"filters\" method=\"get\" action=\"/ui/alerts\"><input type=\"hidden\" name=\"workspace\" value=\"{}\">",
        ctx.ws
    );
    plugin_select(&mut h, &s, ctx.q("plugin"));
    h.lit("<label>severity <select name=\"severity\"><option value=\"\">any</option>");
    for sev in ["critical", "high", "medium", "low"] {
        ui_w!(h, "<option value=\"{}\"", sev);
        if severity == sev {
            h.lit(" selected");
        }
        ui_w!(h, ">{}</option>", sev);
    }
    h.lit("</select></label><label>seen in the last <select name=\"hours\">");
    for (v, label) in [("24", "24 hours"), ("168", "7 days"), ("720", "30 days"), ("all", "all time")] {
        ui_w!(h, "<option value=\"{}\"", v);
        if ctx.q("hours") == v || (ctx.q("hours").is_empty() && v == "24") {
            h.lit(" selected");
        }
        ui_w!(h, ">{}</option>", label);
    }
    h.lit("</select></label><label><input type=\"checkbox\" name=\"include_acknowledged\" value=\"true\"");
    if include_ack {
        h.lit(" checked");
    }
    ui_w!(
        h,
        "> acknowledged too</label><label>insight kind <input type=\"text\" name=\"kind\" value=\"{}\"></label><button type=\"submit\">filter</button></form>",
        ctx.q("kind")
    );
    let shown: Vec<_> = alerts
        .iter()
        .filter(|a| severity.is_empty() || format!("{:?}", a.severity).eq_ignore_ascii_case(&severity))
        .collect();
    ui_w!(h, "<section><h2>Alerts <span class=\"count\" id=\"alert-count\">{}</span></h2>", shown.len());
    h.lit("<table id=\"alerts\"><thead><tr><th>id</th><th>severity</th><th>plugin</th><th>kind</th><th>subject</th><th>message</th><th>last seen</th><th class=\"n\">times</th><th></th></tr></thead><tbody>");
    for a in &shown {
        let sev = format!("{:?}", a.severity).to_lowercase();
        ui_w!(
            h,
            "<tr id=\"alert-{}\"><td>{}</td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td><td class=\"subject\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>",
            a.id,
            a.id,
            sev,
            sev,
            a.plugin,
            a.kind,
            a.subject,
            a.message,
            when(a.last_seen_at),
            a.occurrences
        );
        match a.acknowledged_at {
            Some(t) => ui_w!(h, "<span class=\"acked\">acknowledged {}</span>", when(t)),
            None => h.push(&ctx.button(
                &format!("/ui/alerts/{}/ack{}", a.id, ctx.wsq()),
                "Acknowledge",
                Role::Writer,
                &Html::new(),
            )),
        }
        h.lit("</td></tr>");
    }
    if shown.is_empty() {
        h.lit("<tr><td colspan=\"9\" class=\"empty\">no alerts match</td></tr>");
    }
    h.lit("</tbody></table></section>");
    ui_w!(h, "<section><h2>Insights <span class=\"count\" id=\"insight-count\">{}</span></h2>", insights.len());
    h.lit("<table id=\"insights\"><thead><tr><th>when</th><th>plugin</th><th>kind</th><th>title</th><th>detail</th><th class=\"n\">confidence</th><th class=\"n\">impact</th></tr></thead><tbody>");
    for i in &insights {
        ui_w!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            when(i.created_at),
            i.plugin,
            i.kind,
            i.title,
            i.detail,
            num(i.confidence, 2),
            num(i.impact, 2)
        );
    }
    if insights.is_empty() {
        h.lit("<tr><td colspan=\"7\" class=\"empty\">no insights match</td></tr>");
    }
    h.lit("</tbody></table></section>");
    Ok(page(&s, &ctx, "Alerts & insights", h).await)
}

/// `POST /ui/alerts/{id}/ack`: the route's `acknowledge` handler.
pub async fn acknowledge(
    State(s): State<UiState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    ctx.form(&body)?;
    let result =
        routes::findings::acknowledge(State(s.app.clone()), ctx.caller.clone(), Path(id), Ok(ctx.route_query(&[])))
            .await
            .map(|Json(a)| format!("alert {} acknowledged", a.id));
    Ok(done(&s, &ctx, "/ui/alerts", result))
}

/// `/ui/jobs`: schedules, history, run now (admin keys, as on the API).
pub async fn jobs(State(s): State<UiState>, ctx: Ctx) -> Page {
    let mut h = Html::new();
    if ctx.caller.role < Role::Admin {
        ui_w!(
            h,
            "<p class=\"hint\" id=\"jobs-admin-only\">Jobs span every workspace, so they are shown to admin keys only (as on <code>GET /api/v1/jobs</code>); yours is a {} key.</p>",
            ctx.caller.role.as_str()
        );
        return Ok(page(&s, &ctx, "Jobs", h).await);
    }
    let jobs = routes::jobs::list(State(s.app.clone()), ctx.caller.clone()).await?.0.jobs;
    h.lit("<section><h2>Schedules</h2><table id=\"jobs\"><thead><tr><th>job</th><th>what it does</th><th>schedule</th><th>last run</th><th></th></tr></thead><tbody>");
    for j in &jobs {
        ui_w!(h, "<tr><td>{}/{}</td><td>{}</td><td><code>{}</code>", j.plugin, j.job, j.description, j.schedule);
        if j.overridden {
            ui_w!(h, " <span class=\"hint\">(default <code>{}</code>)</span>", j.default_schedule);
        }
        if !j.enabled {
            h.lit(" <span class=\"badge low\">disabled</span>");
        }
        if let Some(e) = &j.schedule_error {
            ui_w!(h, " <span class=\"flash bad\">{}</span>", e);
        }
        h.lit("</td><td>");
        match last_run(&s, &ctx, &j.plugin, &j.job).await {
            Some(r) => ui_w!(
                h,
                "{} <span class=\"status {}\">{}</span>",
                when(r.started_at),
                r.status.as_str(),
                r.status.as_str()
            ),
            None => h.lit("never"),
        }
        h.lit("</td><td>");
        h.push(&ctx.button(
            &format!("/ui/jobs/{}/{}/run{}", j.plugin, j.job, ctx.wsq()),
            "Run now",
            Role::Admin,
            &Html::new(),
        ));
        h.lit("</td></tr>");
    }
    h.lit("</tbody></table></section>");
    let q: BTreeMap<String, String> = [("limit".to_string(), "50".to_string())].into();
    let runs =
        routes::jobs::history(State(s.app.clone()), ctx.caller.clone(), Ok(axum::extract::Query(q))).await?.0.runs;
    h.lit("<section><h2>History</h2><table id=\"runs\"><thead><tr><th>id</th><th>job</th><th>runner</th><th>started</th><th>took</th><th>status</th><th>report or error</th></tr></thead><tbody>");
    for r in &runs {
        let took = r
            .finished_at
            .map(|f| format!("{} s", num((f.as_micros() - r.started_at.as_micros()) as f64 / 1e6, 2)))
            .unwrap_or_else(|| "—".into());
        ui_w!(
            h,
            "<tr><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"status {}\">{}</span></td><td class=\"report\">",
            r.id,
            r.plugin,
            r.job,
            r.runner,
            when(r.started_at),
            took,
            r.status.as_str(),
            r.status.as_str()
        );
        if let Some(e) = &r.error {
            ui_w!(h, "<span class=\"error\">{}</span>", e);
        } else if let Some(rep) = &r.report {
            ui_w!(h, "{}", short_json(rep));
        }
        h.lit("</td></tr>");
    }
    if runs.is_empty() {
        h.lit("<tr><td colspan=\"7\" class=\"empty\">no runs recorded yet</td></tr>");
    }
    h.lit("</tbody></table></section>");
    Ok(page(&s, &ctx, "Jobs", h).await)
}

/// `POST /ui/jobs/{plugin}/{job}/run`: the route's `run` handler.
pub async fn run_job(
    State(s): State<UiState>,
    ctx: Ctx,
    Path((plugin, job)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, UiError> {
    ctx.form(&body)?;
    let result =
        routes::jobs::run(State(s.app.clone()), ctx.caller.clone(), Path((plugin, job))).await.map(|Json(r)| {
            format!(
                "{}/{} ran: {}{}",
                r.plugin,
                r.job,
                r.status.as_str(),
                r.error.map(|e| format!(" ({e})")).unwrap_or_default()
            )
        });
    Ok(done(&s, &ctx, "/ui/jobs", result))
}

/// A link to a page of this workspace with extra parameters.
pub fn link(ctx: &Ctx, path: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![("workspace", ctx.ws.as_str())];
    pairs.extend_from_slice(extra);
    format!("{path}{}", query(&pairs))
}
