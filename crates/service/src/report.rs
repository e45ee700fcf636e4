//! Rendering the programme report for `tafel report`: a table for people, CSV for
//! spreadsheets, JSON for programs.

use std::fmt::Write;

use tafel_domain::report::Report;

/// The report as `format` (`table`, `csv` or `json`).
pub fn render(report: &Report, format: &str) -> Result<String, String> {
    let rows = rows(report);
    let mut out = String::new();
    match format {
        "json" => {
            out = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
            out.push('\n');
        }
        "csv" => {
            out.push_str("figure,value\n");
            for (name, value) in rows {
                let _ = writeln!(out, "{name},{value}");
            }
        }
        "table" => {
            let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            for (name, value) in rows {
                let _ = writeln!(out, "{name:<width$}  {value:>12}");
            }
        }
        other => return Err(format!("{other:?} is not a format: table, csv or json")),
    }
    Ok(out)
}

fn rows(report: &Report) -> Vec<(String, String)> {
    let days = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |days| format!("{days}"));
    let mut rows = vec![
        ("year".to_owned(), report.year.map_or_else(|| "all".to_owned(), |year| year.to_string())),
        ("requests_submitted".to_owned(), report.requests_submitted.to_string()),
        ("requests_coached".to_owned(), report.requests_coached.to_string()),
        ("requests_ready".to_owned(), report.requests_ready.to_string()),
        ("requests_withdrawn".to_owned(), report.requests_withdrawn.to_string()),
        ("requests_committed".to_owned(), report.requests_committed.to_string()),
        ("mandates_active".to_owned(), report.mandates_active.to_string()),
        ("roundtables_held".to_owned(), report.roundtables_held.to_string()),
        ("entrepreneurs_participating".to_owned(), report.entrepreneurs_participating.to_string()),
        ("financiers_participating".to_owned(), report.financiers_participating.to_string()),
        ("committed_eur".to_owned(), report.committed_eur.to_string()),
    ];
    for (instrument, euros) in &report.committed_eur_by_instrument {
        rows.push((format!("committed_eur.{instrument}"), euros.to_string()));
    }
    for (sdg, euros) in &report.committed_eur_by_sdg {
        rows.push((format!("committed_eur.sdg_{sdg}"), euros.to_string()));
    }
    rows.push(("median_days_submitted_to_ready".to_owned(), days(report.median_days_submitted_to_ready)));
    rows.push(("median_days_ready_to_commitment".to_owned(), days(report.median_days_ready_to_commitment)));
    rows
}
