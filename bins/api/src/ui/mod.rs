//! The dashboard: server-rendered pages under `/ui/` showing what
//! learnloop learned, with the buttons to act on it.
//!
//! Pages are HTML built with [`html::Html`] (every value escaped), charts
//! are SVG drawn here ([`svg`]), and the one stylesheet and one script are
//! compiled into the binary (`static/`): nothing is fetched from the
//! internet and nothing but `cargo build` builds it.
//!
//! Every number comes from the code the JSON routes run: the core routes'
//! handler functions are called directly (`crate::routes::...`, with the
//! session's [`Caller`]), plugin answers from [`PluginHost::handle`] after
//! the same role check `routes::plugins` does. So a page and
//! `GET /api/v1/...` cannot disagree, and approve / reject / roll back /
//! acknowledge / run-now are the HTTP routes' own code, with their role
//! checks: a reader's forged POST is the route's 403.
//!
//! Security: sign-in with an API key makes a server-side session
//! ([`session`]); state-changing forms carry the session's CSRF token and a
//! POST whose token or `Origin` is wrong is refused (403) before anything
//! runs; every answer carries a Content-Security-Policy that allows
//! scripts, styles and images from this origin only (no inline script or
//! style), and may not be framed.
//!
//! `/ui` is not part of the OpenAPI document: it is HTML for people, not
//! an API.
//!
//! [`PluginHost::handle`]: learnloop_plugin_host::PluginHost::handle

pub mod html;
mod pages;
mod plugins;
pub mod session;
pub mod svg;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use learnloop_core::{Role, WorkspaceId};
use serde_json::Value;

use crate::auth::Caller;
use crate::{ApiError, AppState, ui_w};
use html::Html;
use session::Sessions;

/// What the dashboard's handlers share: the API's state and the sessions.
#[derive(Clone)]
pub struct UiState {
    /// The API's state (host, store, config, key cache).
    pub app: AppState,
    /// Signed-in browsers.
    pub sessions: Arc<Sessions>,
}

/// The Content-Security-Policy of every dashboard answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's router, to be nested under `/ui`.
pub fn router(app: AppState) -> Router<AppState> {
    let state = UiState { app, sessions: Arc::new(Sessions::default()) };
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/{file}", get(static_file))
        .route("/improvements", get(pages::improvements))
        .route("/improvements/rollback", post(pages::rollback))
        .route("/improvements/{id}/{action}", post(pages::decide))
        .route("/alerts", get(pages::alerts))
        .route("/alerts/{id}/ack", post(pages::acknowledge))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{plugin}/{job}/run", post(pages::run_job))
        .route("/drift", get(plugins::drift))
        .route("/trust", get(plugins::trust))
        .route("/cost", get(plugins::cost))
        .route("/cost/assess", post(plugins::assess))
        .route("/persona", get(plugins::persona))
        .fallback(not_found)
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

/// Security headers on every dashboard answer, and a refusal of any
/// state-changing request whose `Origin` is another site.
async fn headers(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD && !same_origin(&req) {
        return error_page(
            StatusCode::FORBIDDEN,
            "this form was sent from another site; open the dashboard and try again",
        );
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Whether a request's `Origin` (when it has one) is this server: its host
/// is the request's `Host`, or the `X-Forwarded-Host` a reverse proxy in
/// front of the API passed on.
fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
    let header_is = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| !h.is_empty() && h.split(',').next().map(str::trim) == Some(rest))
    };
    !rest.is_empty() && (header_is("host") || header_is("x-forwarded-host"))
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "no such page")
}

/// The stylesheet and the script, compiled in.
async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (include_str!("static/style.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("static/app.js"), "text/javascript; charset=utf-8"),
        _ => return error_page(StatusCode::NOT_FOUND, "no such file"),
    };
    let mut r = ([(header::CONTENT_TYPE, kind)], body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

/// A signed-in request: who, which workspace, the session's CSRF token.
pub struct Ctx {
    /// The key's caller (verified again for this request).
    pub caller: Caller,
    /// The workspace shown: `?workspace=` (which the key must cover), else
    /// the key's own, else the default.
    pub ws: WorkspaceId,
    /// The session id.
    pub sid: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// A message from the last action, shown once.
    pub flash: Option<(bool, String)>,
    /// The query string's parameters.
    pub query: BTreeMap<String, String>,
    /// The path asked for (for the navigation).
    pub path: String,
}

/// Why a request was not answered with its page.
pub enum UiError {
    /// Not signed in (or the session ended): to the login page.
    SignIn,
    /// An error page with this status and message.
    Page(StatusCode, String),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError::Page(e.status, e.detail)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn => redirect("/ui/login"),
            UiError::Page(status, message) => error_page(status, &message),
        }
    }
}

impl FromRequestParts<UiState> for Ctx {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, UiError> {
        let sid = session::cookie_id(&parts.headers).ok_or(UiError::SignIn)?;
        let session = state.sessions.get(&sid).ok_or(UiError::SignIn)?;
        let caller = match session.key_hash {
            Some(hash) => match crate::auth::verify_hash(&state.app, hash).await {
                Ok(c) => c,
                Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                    state.sessions.remove(&sid);
                    return Err(UiError::SignIn);
                }
                Err(e) => return Err(e.into()),
            },
            None if !state.app.config.auth.enabled => Caller { role: Role::Admin, workspace: None, keyed: false },
            None => return Err(UiError::SignIn),
        };
        let mut query = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            if query.insert(k.to_string(), v.to_string()).is_some() {
                return Err(UiError::Page(StatusCode::BAD_REQUEST, format!("query parameter {k:?} is given twice")));
            }
        }
        let requested = query.get("workspace").filter(|w| !w.is_empty()).map(String::as_str);
        let ws = caller.workspace(requested, &state.app.config.default_workspace)?;
        let flash = state.sessions.take_flash(&sid);
        Ok(Ctx { caller, ws, sid, csrf: session.csrf, flash, query, path: parts.uri.path().to_string() })
    }
}

impl Ctx {
    /// `?workspace=<this one>` for links and form actions.
    pub fn wsq(&self) -> String {
        html::query(&[("workspace", self.ws.as_str())])
    }

    /// A query parameter, empty when absent.
    pub fn q(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or("")
    }

    /// The hidden CSRF field of a form.
    pub fn csrf_field(&self) -> Html {
        let mut h = Html::new();
        ui_w!(h, "<input type=\"hidden\" name=\"csrf\" value=\"{}\">", self.csrf);
        h
    }

    /// A form posting to `action` with one button, disabled (with the
    /// reason as its title) when the key lacks `role`.
    pub fn button(&self, action: &str, label: &str, role: Role, extra: &Html) -> Html {
        let mut h = Html::new();
        ui_w!(h, "<form class=\"inline\" method=\"post\" action=\"{}\">", action);
        h.push(&self.csrf_field());
        h.push(extra);
        if self.caller.role >= role {
            ui_w!(h, "<button type=\"submit\">{}</button></form>", label);
        } else {
            ui_w!(
                h,
                "<button type=\"submit\" disabled title=\"needs a {} key; yours is a {} key\">{}</button></form>",
                role.as_str(),
                self.caller.role.as_str(),
                label
            );
        }
        h
    }

    /// Checks the CSRF token of a posted form and returns its fields.
    pub fn form(&self, body: &Bytes) -> Result<BTreeMap<String, String>, UiError> {
        let mut fields = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            fields.insert(k.to_string(), v.to_string());
        }
        match fields.get("csrf") {
            Some(t) if session::same_token(t, &self.csrf) => Ok(fields),
            _ => Err(UiError::Page(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or stale; reload the page and try again".into(),
            )),
        }
    }

    /// The query of a core route: `workspace` plus `extra`.
    pub fn route_query(&self, extra: &[(&str, &str)]) -> axum::extract::Query<BTreeMap<String, String>> {
        let mut q = BTreeMap::new();
        q.insert("workspace".to_string(), self.ws.to_string());
        for (k, v) in extra {
            if !v.is_empty() {
                q.insert(k.to_string(), v.to_string());
            }
        }
        axum::extract::Query(q)
    }
}

/// A plugin route's answer, as `GET /api/v1/<plugin><path>` would give it:
/// the same role check as `routes::plugins::call`, then
/// [`learnloop_plugin_host::PluginHost::handle`].
pub async fn plugin_call(
    s: &UiState,
    ctx: &Ctx,
    plugin: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Value,
) -> Result<Value, ApiError> {
    let loaded = s.app.host.plugin(plugin).map_err(|e| ApiError::not_found(e.message))?;
    let (route, _) = learnloop_plugin_host::match_route(&loaded.manifest.routes, method, path)
        .ok_or_else(|| ApiError::not_found(format!("plugin {plugin:?} has no route {method} {path}")))?;
    ctx.caller.require(route.role)?;
    let q: BTreeMap<String, String> =
        query.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (host, ws, p, m, path) =
        (s.app.host.clone(), ctx.ws.clone(), plugin.to_string(), method.to_string(), path.to_string());
    let r = tokio::task::spawn_blocking(move || host.handle(&p, &ws, &m, &path, q, body))
        .await
        .map_err(ApiError::internal)??;
    if r.status >= 400 {
        let detail = r.body.get("detail").and_then(Value::as_str).unwrap_or("the plugin refused").to_string();
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
        return Err(ApiError { status, ..ApiError::bad_request(detail) });
    }
    Ok(r.body)
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The pages of the navigation: (path, title, plugin it needs).
const NAV: [(&str, &str, Option<&str>); 8] = [
    ("/ui", "Overview", None),
    ("/ui/improvements", "Improvements", None),
    ("/ui/alerts", "Alerts & insights", None),
    ("/ui/jobs", "Jobs", None),
    ("/ui/drift", "Drift", Some("drift")),
    ("/ui/trust", "Trust", Some("trust")),
    ("/ui/cost", "Cost", Some("cost")),
    ("/ui/persona", "Persona", Some("persona")),
];

/// A whole page: head, navigation, workspace switcher, flash, `body`.
pub async fn page(s: &UiState, ctx: &Ctx, title: &str, body: Html) -> Response {
    let mut h = head(title);
    h.lit("<body><header><a class=\"brand\" href=\"/ui\">learnloop</a><nav>");
    for (path, name, plugin) in NAV {
        if plugin.is_some_and(|p| !s.app.host.plugins().contains_key(p)) {
            continue;
        }
        let current = if ctx.path == path || (path == "/ui" && ctx.path == "/ui/") { " class=\"current\"" } else { "" };
        ui_w!(h, "<a href=\"{}{}\"", path, ctx.wsq());
        if !current.is_empty() {
            h.lit(" class=\"current\" aria-current=\"page\"");
        }
        ui_w!(h, ">{}</a>", name);
    }
    h.lit("</nav><div class=\"who\">");
    if ctx.caller.workspace.is_none() {
        let mut all = workspaces(s).await;
        if !all.contains(&ctx.ws.to_string()) {
            all.push(ctx.ws.to_string());
            all.sort();
        }
        ui_w!(
            h,
            "<form class=\"inline\" method=\"get\" action=\"{}\" id=\"ws-switch\"><label>workspace <select name=\"workspace\" class=\"autosubmit\">",
            ctx.path
        );
        for w in &all {
            let sel = if *w == ctx.ws.as_str() { " selected" } else { "" };
            ui_w!(h, "<option value=\"{}\"", w);
            h.lit(if sel.is_empty() { "" } else { " selected" });
            ui_w!(h, ">{}</option>", w);
        }
        h.lit("</select></label><noscript><button type=\"submit\">show</button></noscript></form>");
    } else {
        ui_w!(h, "<span class=\"ws\" id=\"workspace\">workspace {}</span>", ctx.ws);
    }
    ui_w!(
        h,
        "<span class=\"role\" id=\"role\" data-role=\"{}\">{} key</span>",
        ctx.caller.role.as_str(),
        ctx.caller.role.as_str()
    );
    h.lit("<form class=\"inline\" method=\"post\" action=\"/ui/logout\">");
    h.push(&ctx.csrf_field());
    h.lit("<button type=\"submit\" class=\"link\">sign out</button></form></div></header><main>");
    if let Some((ok, msg)) = &ctx.flash {
        ui_w!(h, "<p class=\"flash {}\" id=\"flash\" role=\"status\">{}</p>", if *ok { "ok" } else { "bad" }, msg);
    }
    ui_w!(h, "<h1>{}</h1>", title);
    h.push(&body);
    h.lit("</main></body></html>");
    html_response(StatusCode::OK, h)
}

fn head(title: &str) -> Html {
    let mut h = Html::new();
    ui_w!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · learnloop</title><link rel=\"stylesheet\" href=\"/ui/static/style.css\"><script src=\"/ui/static/app.js\" defer></script></head>",
        title
    );
    h
}

fn html_response(status: StatusCode, h: Html) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], h.into_string()).into_response()
}

/// A page saying what went wrong (no navigation: it may be shown to
/// someone not signed in).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let mut h = head("Error");
    ui_w!(
        h,
        "<body class=\"bare\"><main><h1>{} {}</h1><p class=\"error\" id=\"error\">{}</p><p><a href=\"/ui\">back to the dashboard</a></p></main></body></html>",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        message
    );
    html_response(status, h)
}

/// Every workspace with records of a loaded plugin, and the default one.
async fn workspaces(s: &UiState) -> Vec<String> {
    let host = s.app.host.clone();
    let default = s.app.config.default_workspace.clone();
    tokio::task::spawn_blocking(move || {
        let mut all = std::collections::BTreeSet::from([default]);
        for name in host.plugins().keys() {
            if let Ok(p) = learnloop_core::PluginName::parse("plugin", name)
                && let Ok(ws) = host.store().workspaces(&p)
            {
                all.extend(ws.into_iter().map(|w| w.to_string()));
            }
        }
        all.into_iter().collect()
    })
    .await
    .unwrap_or_default()
}

async fn login_page(State(s): State<UiState>) -> Response {
    login_form(&s, StatusCode::OK, None)
}

fn login_form(s: &UiState, status: StatusCode, error: Option<&str>) -> Response {
    let mut h = head("Sign in");
    h.lit("<body class=\"bare\"><main class=\"login\"><h1>learnloop</h1>");
    if let Some(e) = error {
        ui_w!(h, "<p class=\"flash bad\" id=\"error\" role=\"alert\">{}</p>", e);
    }
    h.lit("<form method=\"post\" action=\"/ui/login\" id=\"login\">");
    if s.app.config.auth.enabled {
        h.lit(
            "<label>API key <input type=\"password\" name=\"key\" id=\"key\" autocomplete=\"off\" required autofocus></label>\
             <p class=\"hint\">A reader key shows its workspace; a writer key can also approve, reject and acknowledge; \
             an admin key sees every workspace and the jobs. The first start wrote an admin key to \
             <code>&lt;data_dir&gt;/admin.key</code>; <code>learnloop keys create</code> makes others. The key stays here: \
             the browser gets a session cookie only.</p>",
        );
    } else {
        h.lit("<p class=\"hint\">Authentication is off (<code>[auth] enabled = false</code>): everyone who reaches this server is an admin.</p>");
    }
    h.lit("<button type=\"submit\" id=\"sign-in\">Sign in</button></form></main></body></html>");
    html_response(status, h)
}

async fn login(State(s): State<UiState>, parts: axum::http::request::Parts, body: Bytes) -> Response {
    let key = form_urlencoded::parse(&body).find(|(k, _)| k == "key").map(|(_, v)| v.trim().to_string());
    let hash = if s.app.config.auth.enabled {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return login_form(&s, StatusCode::UNAUTHORIZED, Some("enter an API key"));
        };
        let hash = crate::auth::hash_key(&key);
        match crate::auth::verify_hash(&s.app, hash).await {
            Ok(_) => Some(hash),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                return login_form(&s, StatusCode::UNAUTHORIZED, Some("unknown or revoked API key"));
            }
            Err(e) => return error_page(e.status, &e.detail),
        }
    } else {
        None
    };
    // A session id already in the browser is ended: signing in never
    // adopts an id the browser brought (session fixation).
    if let Some(old) = session::cookie_id(&parts.headers) {
        s.sessions.remove(&old);
    }
    let id = s.sessions.create(hash);
    let mut r = redirect("/ui");
    let cookie = session::set_cookie(&id, session::over_tls(&parts.uri, &parts.headers));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(s): State<UiState>, parts: axum::http::request::Parts, body: Bytes) -> Response {
    let Some(sid) = session::cookie_id(&parts.headers) else {
        return redirect("/ui/login");
    };
    if let Some(sess) = s.sessions.get(&sid) {
        let token = form_urlencoded::parse(&body).find(|(k, _)| k == "csrf").map(|(_, v)| v.to_string());
        if !token.is_some_and(|t| session::same_token(&t, &sess.csrf)) {
            return error_page(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or stale; reload the page and try again",
            );
        }
        s.sessions.remove(&sid);
    }
    let mut r = redirect("/ui/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(session::over_tls(&parts.uri, &parts.headers))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
