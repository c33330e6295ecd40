//! The results page's section for a model study: the host's own performance report of a
//! `model-evaluation` run (a table overall and per subgroup, the ROC curve and the
//! calibration plot, drawn from the report's rounded figures) and the ONNX download of a
//! logistic `model-fit` run. Every figure shown is one the host computed from its noisy
//! counts; a subgroup below the threshold shows as withheld, with no metric.

use crate::forms::url_encode;
use maud::{Markup, html};
use serde_json::Value;

const SIZE: f64 = 300.0;
const MARGIN: f64 = 44.0;

/// The section of the page for `report`, or nothing for a run that is not a model study.
pub fn section(run_id: &str, report: &Value) -> Markup {
    match report.get("kind").and_then(Value::as_str) {
        Some("model-evaluation") => evaluation(report),
        Some("model-fit") if report.get("family").and_then(Value::as_str) == Some("logistic") => {
            html! {
                h2 { "Fitted model" }
                p #model-download {
                    "The released coefficients as a model: "
                    a #download-onnx
                        href={ "/results/" (url_encode(run_id)) "/model.onnx" }
                        download={ (run_id) ".onnx" } { "ONNX" }
                    " (input " code { "features" } ", the fit's features in order; output "
                    code { "probability" } "), to evaluate on another period with a "
                    code { "model-evaluation" } " study."
                }
            }
        }
        _ => html! {},
    }
}

fn number(v: &Value) -> String {
    v.as_f64().map_or("–".to_owned(), |x| format!("{x:.3}"))
}

/// A row of the performance table: a group's figures, or the word that it is withheld.
fn performance_row(label: &str, m: &Value) -> Markup {
    html! {
        tr {
            td { (label) }
            @if m.get("withheld").is_some() {
                td colspan="5" class="withheld" { "withheld" }
            } @else {
                td { (m["rows"].to_string()) }
                td { (m["events"].to_string()) }
                td {
                    (number(&m["auroc"])) " (" (number(&m["auroc_ci95"][0])) " to "
                    (number(&m["auroc_ci95"][1])) ")"
                }
                td { (number(&m["calibration"]["slope"])) }
                td { (number(&m["calibration"]["intercept"])) }
            }
        }
    }
}

fn evaluation(report: &Value) -> Markup {
    let overall = &report["overall"];
    let mut groups: Vec<(String, &Value)> = vec![("overall".to_owned(), overall)];
    if let Some(groupings) = report["subgroups"].as_object() {
        for (grouping, levels) in groupings {
            for (level, m) in levels.as_object().into_iter().flatten() {
                groups.push((format!("{grouping} = {level}"), m));
            }
        }
    }
    let thresholds = overall["thresholds"].as_array().filter(|t| !t.is_empty());
    let points = |v: &Value| -> Vec<(f64, f64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
            .collect()
    };
    let roc = points(&overall["roc"]);
    let calibration: Vec<(f64, f64)> = overall["calibration"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g["mean_predicted"].as_f64()?, g["observed"].as_f64()?)))
        .collect();
    let top = calibration
        .iter()
        .fold(0.0f64, |m, &(x, y)| m.max(x).max(y))
        .max(0.01);
    let top = (top * 10.0).ceil() / 10.0;
    html! {
        h2 { "Model performance" }
        p.note {
            "Computed by the warehouse from its own counts of binned scores (noisy, rounded); \
             a group below the threshold is withheld with all its figures."
        }
        table #model-performance {
            thead {
                tr {
                    th { "Group" }
                    th { "Consultations" }
                    th { "Events" }
                    th { "AUROC (95% CI)" }
                    th { "Calibration slope" }
                    th { "Calibration intercept" }
                }
            }
            tbody {
                @for (label, m) in &groups {
                    (performance_row(label, m))
                }
            }
        }
        @if let Some(thresholds) = thresholds {
            table #model-thresholds {
                thead {
                    tr {
                        th { "Threshold" }
                        th { "Sensitivity" }
                        th { "Specificity" }
                        th { "PPV" }
                        th { "NPV" }
                    }
                }
                tbody {
                    @for t in thresholds {
                        tr {
                            td { (number(&t["threshold"])) }
                            td { (number(&t["sensitivity"])) }
                            td { (number(&t["specificity"])) }
                            td { (number(&t["ppv"])) }
                            td { (number(&t["npv"])) }
                        }
                    }
                }
            }
        }
        @if !roc.is_empty() || !calibration.is_empty() {
            div #model-charts {
                (plot("roc-curve", "ROC curve", ("1 − specificity", "sensitivity"), 1.0, &roc, true))
                (plot(
                    "calibration-plot",
                    "Calibration",
                    ("mean predicted risk", "observed share"),
                    top.min(1.0),
                    &calibration,
                    false,
                ))
            }
        }
    }
}

/// A square plot of `points` over [0, top]², with the diagonal for reference; a line
/// through them (`line`) or markers.
fn plot(
    id: &str,
    title: &str,
    axes: (&str, &str),
    top: f64,
    points: &[(f64, f64)],
    line: bool,
) -> Markup {
    let total = SIZE + 2.0 * MARGIN;
    let x = |v: f64| MARGIN + SIZE * (v / top).clamp(0.0, 1.0);
    let y = |v: f64| MARGIN + SIZE - SIZE * (v / top).clamp(0.0, 1.0);
    let one = |v: f64| format!("{v:.1}");
    let path = line.then(|| {
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        sorted
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect::<Vec<_>>()
            .join(" ")
    });
    html! {
        svg class="model-chart" id=(id) xmlns="http://www.w3.org/2000/svg" role="img"
            aria-labelledby={ (id) "-title" } viewBox={ "0 0 " (total) " " (total) }
            width=(total) height=(total) font-family="system-ui,sans-serif" font-size="11" {
            title id={ (id) "-title" } { (title) }
            rect width="100%" height="100%" fill="#fff" {}
            text x=(MARGIN) y="20" font-size="14" font-weight="600" { (title) }
            rect x=(MARGIN) y=(MARGIN) width=(SIZE) height=(SIZE) fill="none" stroke="#374151" {}
            line x1=(one(x(0.0))) y1=(one(y(0.0))) x2=(one(x(top))) y2=(one(y(top)))
                stroke="#9ca3af" stroke-dasharray="4 4" {}
            @for i in 0..=4 {
                @let v = top * f64::from(i) / 4.0;
                text x=(one(x(v))) y=(one(MARGIN + SIZE + 16.0)) text-anchor="middle"
                    fill="#374151" { (format!("{v:.2}")) }
                text x=(one(MARGIN - 6.0)) y=(one(y(v) + 4.0)) text-anchor="end"
                    fill="#374151" { (format!("{v:.2}")) }
            }
            text x=(one(MARGIN + SIZE / 2.0)) y=(one(total - 6.0)) text-anchor="middle" {
                (axes.0)
            }
            text transform={ "translate(12 " (one(MARGIN + SIZE / 2.0)) ") rotate(-90)" }
                text-anchor="middle" { (axes.1) }
            @if let Some(path) = path {
                polyline class="series" fill="none" stroke="#1d4ed8" stroke-width="2"
                    points=(path) {}
            } @else {
                @for &(a, b) in points {
                    circle class="point" cx=(one(x(a))) cy=(one(y(b))) r="4" fill="#1d4ed8" {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metrics() -> Value {
        json!({
            "rows": 1000, "events": 50, "auroc": 0.71, "auroc_ci95": [0.65, 0.77],
            "thresholds": [{"threshold": 0.05, "sensitivity": 0.8, "specificity": 0.5, "ppv": 0.08, "npv": 0.98}],
            "calibration": {"slope": 1.02, "intercept": -0.01,
                "groups": [{"mean_predicted": 0.02, "observed": 0.021}, {"mean_predicted": 0.1, "observed": 0.09}]},
            "roc": [[0.0, 0.0], [0.5, 0.8], [1.0, 1.0]],
        })
    }

    #[test]
    fn an_evaluation_shows_its_figures_curves_and_withheld_groups() {
        let report = json!({
            "kind": "model-evaluation",
            "overall": metrics(),
            "subgroups": {"region": {"<b>Bretagne</b>": {"withheld": true}, "Corse": metrics()}},
        });
        let html = section("run-1", &report).into_string();
        assert!(html.contains("0.710 (0.650 to 0.770)"), "{html}");
        assert!(html.contains("id=\"roc-curve\"") && html.contains("id=\"calibration-plot\""));
        assert_eq!(html.matches("<circle").count(), 2);
        assert!(html.contains("region = &lt;b&gt;Bretagne&lt;/b&gt;</td><td colspan=\"5\" class=\"withheld\">withheld"), "{html}");
        assert!(!html.contains("<b>Bretagne"));
    }

    #[test]
    fn only_a_logistic_fit_offers_an_onnx_download_and_other_runs_get_nothing() {
        let logistic =
            section("run-2", &json!({"kind": "model-fit", "family": "logistic"})).into_string();
        assert!(logistic.contains("href=\"/results/run-2/model.onnx\""));
        let poisson = section("run-2", &json!({"kind": "model-fit", "family": "poisson"}));
        assert!(poisson.into_string().is_empty());
        assert!(section("run-3", &Value::Null).into_string().is_empty());
    }
}
