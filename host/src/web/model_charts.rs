//! The results page's section for a model study: the host's own performance report of a
//! `model-evaluation` run (a table overall and per subgroup, the ROC curve and the
//! calibration plot, drawn from the report's rounded figures) and the ONNX download of a
//! logistic `model-fit` run. Every figure shown is one the host computed from its noisy
//! counts; a subgroup below the threshold shows as withheld, with no metric.

use super::html::esc;
use serde_json::Value;
use std::fmt::Write as _;

const SIZE: f64 = 300.0;
const MARGIN: f64 = 44.0;

/// The section of the page for `report`, or nothing for a run that is not a model study.
pub fn section(run_id: &str, report: &Value) -> String {
    match report.get("kind").and_then(Value::as_str) {
        Some("model-evaluation") => evaluation(report),
        Some("model-fit") if report.get("family").and_then(Value::as_str) == Some("logistic") => {
            format!(
                "<h2>Fitted model</h2><p id=\"model-download\">The released coefficients as a \
                 model: <a id=\"download-onnx\" href=\"/results/{id}/model.onnx\" \
                 download=\"{name}.onnx\">ONNX</a> (input <code>features</code>, the fit's \
                 features in order; output <code>probability</code>), to evaluate on another \
                 period with a <code>model-evaluation</code> study.</p>",
                id = super::html::url_encode(run_id),
                name = esc(run_id)
            )
        }
        _ => String::new(),
    }
}

fn number(v: &Value) -> String {
    v.as_f64().map_or("–".to_owned(), |x| format!("{x:.3}"))
}

fn evaluation(report: &Value) -> String {
    let mut out = String::from(
        "<h2>Model performance</h2><p class=\"note\">Computed by the warehouse from its own \
         counts of binned scores (noisy, rounded); a group below the threshold is withheld \
         with all its figures.</p><table id=\"model-performance\"><thead><tr><th>Group</th>\
         <th>Consultations</th><th>Events</th><th>AUROC (95% CI)</th><th>Calibration slope</th>\
         <th>Calibration intercept</th></tr></thead><tbody>",
    );
    let mut row = |label: &str, m: &Value| {
        if m.get("withheld").is_some() {
            let _ = write!(
                out,
                "<tr><td>{}</td><td colspan=\"5\" class=\"withheld\">withheld</td></tr>",
                esc(label)
            );
            return;
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({} to {})</td><td>{}</td><td>{}</td></tr>",
            esc(label),
            m["rows"],
            m["events"],
            number(&m["auroc"]),
            number(&m["auroc_ci95"][0]),
            number(&m["auroc_ci95"][1]),
            number(&m["calibration"]["slope"]),
            number(&m["calibration"]["intercept"]),
        );
    };
    let overall = &report["overall"];
    row("overall", overall);
    if let Some(groupings) = report["subgroups"].as_object() {
        for (grouping, levels) in groupings {
            for (level, m) in levels.as_object().into_iter().flatten() {
                row(&format!("{grouping} = {level}"), m);
            }
        }
    }
    out.push_str("</tbody></table>");
    if let Some(thresholds) = overall["thresholds"].as_array().filter(|t| !t.is_empty()) {
        out.push_str(
            "<table id=\"model-thresholds\"><thead><tr><th>Threshold</th><th>Sensitivity</th>\
             <th>Specificity</th><th>PPV</th><th>NPV</th></tr></thead><tbody>",
        );
        for t in thresholds {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                number(&t["threshold"]),
                number(&t["sensitivity"]),
                number(&t["specificity"]),
                number(&t["ppv"]),
                number(&t["npv"]),
            );
        }
        out.push_str("</tbody></table>");
    }
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
    if !roc.is_empty() || !calibration.is_empty() {
        out.push_str("<div id=\"model-charts\">");
        out.push_str(&plot(
            "roc-curve",
            "ROC curve",
            ("1 − specificity", "sensitivity"),
            1.0,
            &roc,
            true,
        ));
        let top = calibration
            .iter()
            .fold(0.0f64, |m, &(x, y)| m.max(x).max(y))
            .max(0.01);
        let top = (top * 10.0).ceil() / 10.0;
        out.push_str(&plot(
            "calibration-plot",
            "Calibration",
            ("mean predicted risk", "observed share"),
            top.min(1.0),
            &calibration,
            false,
        ));
        out.push_str("</div>");
    }
    out
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
) -> String {
    let total = SIZE + 2.0 * MARGIN;
    let x = |v: f64| MARGIN + SIZE * (v / top).clamp(0.0, 1.0);
    let y = |v: f64| MARGIN + SIZE - SIZE * (v / top).clamp(0.0, 1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"model-chart\" id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         aria-labelledby=\"{id}-title\" viewBox=\"0 0 {total} {total}\" width=\"{total}\" \
         height=\"{total}\" font-family=\"system-ui,sans-serif\" font-size=\"11\">\
         <title id=\"{id}-title\">{title}</title><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <text x=\"{MARGIN}\" y=\"20\" font-size=\"14\" font-weight=\"600\">{title}</text>\
         <rect x=\"{MARGIN}\" y=\"{MARGIN}\" width=\"{SIZE}\" height=\"{SIZE}\" fill=\"none\" stroke=\"#374151\"/>\
         <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9ca3af\" stroke-dasharray=\"4 4\"/>",
        x(0.0),
        y(0.0),
        x(top),
        y(top),
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#374151\">{v:.2}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#374151\">{v:.2}</text>",
            x(v),
            MARGIN + SIZE + 16.0,
            MARGIN - 6.0,
            y(v) + 4.0,
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        MARGIN + SIZE / 2.0,
        total - 6.0,
        axes.0,
        MARGIN + SIZE / 2.0,
        axes.1,
    );
    if line {
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let path: Vec<String> = sorted
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
    } else {
        for &(a, b) in points {
            let _ = write!(
                out,
                "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#1d4ed8\"/>",
                x(a),
                y(b)
            );
        }
    }
    out.push_str("</svg>");
    out
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
        let html = section("run-1", &report);
        assert!(html.contains("0.710 (0.650 to 0.770)"), "{html}");
        assert!(html.contains("id=\"roc-curve\"") && html.contains("id=\"calibration-plot\""));
        assert_eq!(html.matches("<circle").count(), 2);
        assert!(html.contains("region = &lt;b&gt;Bretagne&lt;/b&gt;</td><td colspan=\"5\" class=\"withheld\">withheld"), "{html}");
        assert!(!html.contains("<b>Bretagne"));
    }

    #[test]
    fn only_a_logistic_fit_offers_an_onnx_download_and_other_runs_get_nothing() {
        let logistic = section("run-2", &json!({"kind": "model-fit", "family": "logistic"}));
        assert!(logistic.contains("href=\"/results/run-2/model.onnx\""));
        let poisson = section("run-2", &json!({"kind": "model-fit", "family": "poisson"}));
        assert!(poisson.is_empty());
        assert!(section("run-3", &Value::Null).is_empty());
    }
}
