//! The page shell and the form patterns of NL Design System (its Utrecht components'
//! class names, so a municipality's own theme of design tokens applies): a skip link,
//! header with the role's navigation, language switch and sign-out, one `main`
//! landmark; form fields with a label, a hint, and the error beside the field, an error
//! summary at the top that links to each field, the person's input kept.

use maud::{DOCTYPE, Markup, html};
use tafel_contract::vocab::Role;

use crate::Cx;
use crate::i18n::{Lang, msg, msg::Key};

/// `text` percent-encoded for a query string.
pub fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A page: `title` is its `h1` and (with Tafel's name) its `<title>`.
pub fn page(lang: Lang, cx: Option<&Cx>, title: &str, body: Markup) -> Markup {
    let path = cx.map_or("/signin", |cx| cx.path.as_str());
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tafel" }
                link rel="stylesheet" href="/static/tafel.css";
                script src="/static/tafel.js" defer {}
            }
            body.utrecht-page-body {
                a.skip-link href="#main" { (lang.t(msg::LAYOUT_SKIP)) }
                header.utrecht-page-header {
                    div.wrap {
                        a.brand href="/" { "Tafel" span.brand-sub { (lang.t(msg::LAYOUT_TAGLINE)) } }
                        div.tools {
                            nav aria-label=(lang.t(msg::LAYOUT_LANGUAGE)) {
                                ul.language-switch {
                                    @for other in Lang::ALL {
                                        li {
                                            @if other == lang {
                                                span aria-current="true" lang=(other.code()) { (other.t(msg::LAYOUT_LANGUAGE_NAME)) }
                                            } @else {
                                                a.utrecht-link href={ "/language/" (other.code()) "?back=" (encode(path)) }
                                                    lang=(other.code()) hreflang=(other.code()) { (other.t(msg::LAYOUT_LANGUAGE_NAME)) }
                                            }
                                        }
                                    }
                                }
                            }
                            @if let Some(cx) = cx {
                                p.signed-in {
                                    (lang.f(msg::LAYOUT_SIGNED_IN_AS, &[("principal", cx.actor.id.as_str()), ("role", &lang.label("role", cx.role().as_str()))]))
                                }
                                form method="post" action="/signout" {
                                    input type="hidden" name="csrf" value=(cx.csrf);
                                    button.utrecht-button.utrecht-button--secondary-action type="submit" { (lang.t(msg::LAYOUT_SIGN_OUT)) }
                                }
                            }
                        }
                    }
                    @if let Some(cx) = cx {
                        nav.main-nav aria-label=(lang.t(msg::LAYOUT_MENU)) {
                            ul.wrap {
                                @let current = current_item(navigation(cx.role()), &cx.path);
                                @for (href, key) in navigation(cx.role()) {
                                    li {
                                        @if current == Some(*href) {
                                            a href=(href) aria-current="page" { (lang.t(*key)) }
                                        } @else {
                                            a href=(href) { (lang.t(*key)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main.utrecht-page-content.wrap tabindex="-1" {
                    @if cx.is_some_and(|cx| cx.demo) {
                        p.demo-banner { strong { (lang.t(msg::LAYOUT_DEMO)) } " " (lang.t(msg::LAYOUT_DEMO_EXPLAINED)) }
                    }
                    h1.utrecht-heading-1 { (title) }
                    (body)
                }
                footer.utrecht-page-footer {
                    div.wrap { p { (lang.t(msg::LAYOUT_FOOTER)) } }
                }
            }
        }
    }
}

/// The menu item the page belongs to: the one whose address is the page's, else the
/// longest one the page's address lies below.
fn current_item(items: &[(&'static str, Key)], path: &str) -> Option<&'static str> {
    items
        .iter()
        .map(|(href, _)| *href)
        .filter(|href| path == *href || path.starts_with(&format!("{href}/")))
        .max_by_key(|href| if path == *href { usize::MAX } else { href.len() })
}

/// The menu of each role: where its work is.
fn navigation(role: Role) -> &'static [(&'static str, Key)] {
    match role {
        Role::Entrepreneur => &[("/requests", msg::NAV_MY_REQUESTS), ("/requests/new", msg::NAV_NEW_REQUEST)],
        Role::Coach => {
            &[("/coaching", msg::NAV_COACHING), ("/requests", msg::NAV_ALL_REQUESTS), ("/report", msg::NAV_REPORT)]
        }
        Role::Financier => &[
            ("/matches", msg::NAV_MATCHES),
            ("/mandates", msg::NAV_MY_MANDATES),
            ("/roundtables", msg::NAV_MY_ROUNDTABLES),
        ],
        Role::Organiser | Role::Admin => &[
            ("/dashboard", msg::NAV_DASHBOARD),
            ("/requests", msg::NAV_ALL_REQUESTS),
            ("/roundtables", msg::NAV_ROUNDTABLES),
            ("/report", msg::NAV_REPORT),
        ],
    }
}

/// One field's error, for the summary and beside the field.
#[derive(Clone, Debug)]
pub struct FieldError {
    /// The field's form name (its element's id is `field-<name>`).
    pub field: String,
    pub message: String,
}

/// The errors of one form, with the person's input.
#[derive(Clone, Debug, Default)]
pub struct FormState {
    pub values: Vec<(String, String)>,
    pub errors: Vec<FieldError>,
    /// An error that belongs to no field (the form as a whole).
    pub general: Option<String>,
}

impl FormState {
    pub fn from_values(values: Vec<(String, String)>) -> Self {
        Self { values, ..Self::default() }
    }

    /// The first value of field `name`.
    pub fn value(&self, name: &str) -> &str {
        self.values.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
    }

    /// Whether field `name` holds `value` among its values (checkboxes).
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.values.iter().any(|(key, given)| key == name && given == value)
    }

    pub fn error(&self, name: &str) -> Option<&str> {
        self.errors.iter().find(|error| error.field == name).map(|error| error.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.general.is_none()
    }
}

/// NL Design System's error summary: at the top, focused by the script (and read by
/// screen readers as an alert), linking to each field.
pub fn error_summary(lang: Lang, form: &FormState) -> Markup {
    html! {
        @if !form.is_empty() {
            div.utrecht-alert.utrecht-alert--error.error-summary role="alert" tabindex="-1" aria-labelledby="error-summary-title" {
                h2 #error-summary-title.utrecht-heading-2 { (lang.t(msg::FORM_ERROR_SUMMARY)) }
                @if let Some(general) = &form.general { p { (general) } }
                @if !form.errors.is_empty() {
                    ul {
                        @for error in &form.errors {
                            li { a.utrecht-link href={ "#field-" (error.field) } { (error.message) } }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a field is `required` and what it asks, beside its label and hint.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub hint: Option<&'a str>,
    pub required: bool,
}

fn field_head(lang: Lang, field: &Field, error: Option<&str>, for_input: bool) -> Markup {
    html! {
        @if for_input {
            label.utrecht-form-label for={ "field-" (field.name) } {
                (field.label)
                @if !field.required { span.optional { " (" (lang.t(msg::FORM_OPTIONAL)) ")" } }
            }
        }
        @if let Some(hint) = field.hint {
            div.utrecht-form-field-description id={ "hint-" (field.name) } { (hint) }
        }
        @if let Some(error) = error {
            p.utrecht-form-field-error-message id={ "error-" (field.name) } {
                span.visually-hidden { (lang.t(msg::FORM_ERROR_PREFIX)) " " } (error)
            }
        }
    }
}

fn described_by(field: &Field, error: Option<&str>) -> Option<String> {
    let mut ids = Vec::new();
    if field.hint.is_some() {
        ids.push(format!("hint-{}", field.name));
    }
    if error.is_some() {
        ids.push(format!("error-{}", field.name));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A one-line text field; `numeric` asks phones for the number pad.
pub fn text_field(lang: Lang, form: &FormState, field: Field, numeric: bool) -> Markup {
    let error = form.error(field.name);
    html! {
        div.utrecht-form-field.utrecht-form-field--text.utrecht-form-field--invalid[error.is_some()] {
            (field_head(lang, &field, error, true))
            input.utrecht-textbox.utrecht-textbox--invalid[error.is_some()] type="text" id={ "field-" (field.name) } name=(field.name)
                value=(form.value(field.name)) required[field.required] aria-required=[field.required.then_some("true")]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described_by(&field, error)]
                inputmode=[numeric.then_some("numeric")] autocomplete="off";
        }
    }
}

/// A date field (`YYYY-MM-DD`; browsers show their own picker).
pub fn date_field(lang: Lang, form: &FormState, field: Field) -> Markup {
    let error = form.error(field.name);
    html! {
        div.utrecht-form-field.utrecht-form-field--invalid[error.is_some()] {
            (field_head(lang, &field, error, true))
            input.utrecht-textbox.utrecht-textbox--invalid[error.is_some()] type="date" id={ "field-" (field.name) } name=(field.name)
                value=(form.value(field.name)) required[field.required]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described_by(&field, error)];
        }
    }
}

pub fn textarea(lang: Lang, form: &FormState, field: Field) -> Markup {
    let error = form.error(field.name);
    html! {
        div.utrecht-form-field.utrecht-form-field--invalid[error.is_some()] {
            (field_head(lang, &field, error, true))
            textarea.utrecht-textarea.utrecht-textarea--invalid[error.is_some()] id={ "field-" (field.name) } name=(field.name) rows="4"
                required[field.required] aria-invalid=[error.map(|_| "true")] aria-describedby=[described_by(&field, error)] {
                (form.value(field.name))
            }
        }
    }
}

/// A group of checkboxes (`multiple`) or radio buttons, in a fieldset whose legend is
/// the label; each option is `(value, label)`.
pub fn choices(lang: Lang, form: &FormState, field: Field, options: &[(String, String)], multiple: bool) -> Markup {
    let error = form.error(field.name);
    let kind = if multiple { "checkbox" } else { "radio" };
    html! {
        div.utrecht-form-field.utrecht-form-field--invalid[error.is_some()] {
            fieldset.utrecht-form-fieldset id={ "field-" (field.name) } aria-describedby=[described_by(&field, error)] {
                legend.utrecht-form-fieldset__legend {
                    (field.label)
                    @if !field.required { span.optional { " (" (lang.t(msg::FORM_OPTIONAL)) ")" } }
                }
                (field_head(lang, &field, error, false))
                div.choices.choices--many[options.len() > 6] {
                    @for (index, (value, label)) in options.iter().enumerate() {
                        div.choice {
                            input.utrecht-checkbox[multiple].utrecht-radio-button[!multiple] type=(kind) name=(field.name) value=(value)
                                id={ "field-" (field.name) "-" (index) } checked[form.has(field.name, value)]
                                aria-invalid=[error.map(|_| "true")];
                            label for={ "field-" (field.name) "-" (index) } { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// A select list; `options` are `(value, label)`, with an empty first choice when the
/// field is optional.
pub fn select(lang: Lang, form: &FormState, field: Field, options: &[(String, String)]) -> Markup {
    let error = form.error(field.name);
    html! {
        div.utrecht-form-field.utrecht-form-field--invalid[error.is_some()] {
            (field_head(lang, &field, error, true))
            select.utrecht-select id={ "field-" (field.name) } name=(field.name) aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described_by(&field, error)] {
                @if !field.required { option value="" { "—" } }
                @for (value, label) in options {
                    option value=(value) selected[form.value(field.name) == value] { (label) }
                }
            }
        }
    }
}

/// The hidden fields every form carries: its CSRF token and the id its event will have.
pub fn form_keys(csrf: &str, event_id: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="event_id" value=(event_id);
    }
}

pub fn submit_button(label: &str) -> Markup {
    html! { button.utrecht-button.utrecht-button--primary-action type="submit" { (label) } }
}

/// A notice after a form went through (`?done=<key>`, one of the catalogue's `done.*`).
pub fn done_notice(lang: Lang, done: Option<&str>) -> Markup {
    let key = done.and_then(|done| msg::by_name(&format!("done.{done}")));
    html! {
        @if let Some(key) = key {
            div.utrecht-alert.utrecht-alert--ok role="status" { p { (lang.t(key)) } }
        }
    }
}

/// A status as a badge, with its label.
pub fn status_badge(lang: Lang, status: &str) -> Markup {
    html! { span class={ "badge badge--" (status) } { (lang.label("status", status)) } }
}

/// Text that came in English from the matcher and could not be put in `lang`: marked
/// as English, so that screen readers read it as such (WCAG 3.1.2).
pub fn english(text: &str) -> Markup {
    html! { span lang="en" { (text) } }
}
