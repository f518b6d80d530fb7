//! Sweep reports: `systole report DIR` reads `DIR/results.jsonl` and writes, each chart as
//! SVG and as PNG (text in the bundled DejaVu Sans, so no system fonts are needed):
//!
//! - `pareto.{svg,png}`: latency against energy for every valid point (log-log), area as
//!   colour, the points on the latency-energy-area Pareto front ringed and the
//!   latency-energy front joined;
//! - `utilization.{svg,png}`: per-layer utilization of the chosen point (the Pareto point
//!   with the lowest energy-delay product), with its lower-bound utilization beside it;
//! - `roofline.{svg,png}`: the chosen point's layers against its compute and DRAM roofs;
//! - `report.md`: the summary and the table of Pareto points, linking the charts.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use systole_sweep::Record;

/// Indices of the points no other point beats in latency, energy and area at once.
pub fn pareto(points: &[&Record]) -> Vec<usize> {
    let key = |r: &Record| [r.latency_ms, r.energy_uj, r.area_mm2];
    (0..points.len())
        .filter(|&i| {
            let a = key(points[i]);
            !points.iter().any(|q| {
                let b = key(q);
                b.iter().zip(&a).all(|(x, y)| x <= y) && b.iter().zip(&a).any(|(x, y)| x < y)
            })
        })
        .collect()
}

/// Energy-delay product, uJ x ms.
fn edp(r: &Record) -> f64 {
    r.energy_uj * r.latency_ms
}

/// Why a report or chart could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReportError {
    /// No point of the sweep is valid, so there is nothing to chart.
    #[error("none of the {records} points is valid; nothing to plot")]
    #[diagnostic(help("the records' `status` and `error` fields say why each point failed"))]
    NothingValid {
        /// The records read.
        records: usize,
    },
    /// The font compiled into the binary does not parse.
    #[error("the bundled DejaVu Sans does not parse")]
    Font,
    /// Plotters could not draw or write a chart file.
    #[error("{}: {message}", file.display())]
    Draw {
        /// The chart file.
        file: PathBuf,
        /// Plotters' message.
        message: String,
    },
    /// The Markdown page could not be written.
    #[error("{}: {error}", path.display())]
    Write {
        /// The page's file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
}

/// A drawing step's result: plotters' message, which [`Chart::write`] gives its file.
type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The font family every chart's text uses.
const FONT: &str = "sans-serif";

/// Registers the bundled DejaVu Sans as [`FONT`] (once per process): the bitmap backend
/// renders text with it, and both backends measure text with it.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let parsed = REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    if *parsed {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// What a compression search found on one architecture, for [`write_search_chart`].
pub struct SearchFront<'a> {
    /// Chart title.
    pub title: &'a str,
    /// The cost axis label, e.g. "cycles".
    pub cost: &'a str,
    /// The Pareto front: (predicted SQNR dB, cost).
    pub front: &'a [(f64, f64)],
    /// Uniform policies: (label, measured SQNR dB, cost).
    pub uniform: &'a [(String, f64, f64)],
    /// The chosen policy: (measured SQNR dB, cost).
    pub chosen: Option<(f64, f64)>,
}

/// Draws a compression search's front (cost against SQNR) into `out/name.svg` and
/// `out/name.png`; returns the files written.
pub fn write_search_chart(f: &SearchFront, out: &Path, name: &str) -> Result<Vec<PathBuf>, ReportError> {
    register_font()?;
    let mut files = vec![];
    Chart::Search(f).write(out, name, (900, 640), &mut files)?;
    Ok(files)
}

fn search_chart<DB: DrawingBackend>(f: &SearchFront, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let finite = |v: f64| v.is_finite();
    let dbs = f.front.iter().map(|p| p.0).chain(f.uniform.iter().map(|u| u.1)).chain(f.chosen.map(|c| c.0)).filter(|&v| finite(v));
    let costs = f.front.iter().map(|p| p.1).chain(f.uniform.iter().map(|u| u.2)).chain(f.chosen.map(|c| c.1));
    let (d0, d1) = (dbs.clone().fold(f64::INFINITY, f64::min), dbs.fold(f64::NEG_INFINITY, f64::max));
    let (c0, c1) = (costs.clone().fold(f64::INFINITY, f64::min), costs.fold(f64::NEG_INFINITY, f64::max));
    let pad = |a: f64, b: f64| ((b - a).abs() * 0.08).max(1e-9);
    let mut chart = ChartBuilder::on(root)
        .caption(f.title, (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d((d0 - pad(d0, d1))..(d1 + pad(d0, d1)), (c0 - pad(c0, c1))..(c1 + pad(c0, c1)))
        .map_err(err)?;
    chart.configure_mesh().x_desc("output SQNR (dB)").y_desc(f.cost).draw().map_err(err)?;
    let front: Vec<(f64, f64)> = f.front.iter().copied().filter(|p| finite(p.0)).collect();
    chart
        .draw_series(LineSeries::new(front.clone(), RGBColor(50, 110, 200).stroke_width(2)))
        .map_err(err)?
        .label("Pareto front (predicted SQNR)")
        .legend(|(x, y)| PathElement::new(vec![(x - 10, y), (x + 10, y)], RGBColor(50, 110, 200)));
    chart.draw_series(front.iter().map(|&p| Circle::new(p, 3, RGBColor(50, 110, 200).filled()))).map_err(err)?;
    chart
        .draw_series(f.uniform.iter().filter(|u| finite(u.1)).map(|u| TriangleMarker::new((u.1, u.2), 8, RGBColor(230, 120, 40).filled())))
        .map_err(err)?
        .label("uniform policies (measured)")
        .legend(|(x, y)| TriangleMarker::new((x, y), 6, RGBColor(230, 120, 40).filled()));
    chart.draw_series(f.uniform.iter().filter(|u| finite(u.1)).map(|u| Text::new(u.0.clone(), (u.1, u.2), (FONT, 13)))).map_err(err)?;
    if let Some(c) = f.chosen.filter(|c| finite(c.0)) {
        chart
            .draw_series([Circle::new(c, 8, BLACK.stroke_width(2))])
            .map_err(err)?
            .label("chosen (measured)")
            .legend(|(x, y)| Circle::new((x, y), 6, BLACK.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

/// The charts of a report, each drawable on any plotters backend.
enum Chart<'a> {
    Search(&'a SearchFront<'a>),
    Pareto(&'a [&'a Record], &'a [usize]),
    Utilization(&'a Record),
    Roofline(&'a Record),
}

impl Chart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
    where
        DB::ErrorType: 'static,
    {
        match self {
            Chart::Search(f) => search_chart(f, root),
            Chart::Pareto(ok, front) => pareto_chart(ok, front, root),
            Chart::Utilization(r) => utilization_chart(r, root),
            Chart::Roofline(r) => roofline_chart(r, root),
        }
    }

    /// Draws the chart into `out/name.svg` and `out/name.png`.
    fn write(&self, out: &Path, name: &str, size: (u32, u32), files: &mut Vec<PathBuf>) -> Result<(), ReportError> {
        let (svg, png) = (out.join(format!("{name}.svg")), out.join(format!("{name}.png")));
        self.draw(&SVGBackend::new(&svg, size).into_drawing_area()).map_err(|message| ReportError::Draw { file: svg.clone(), message })?;
        self.draw(&BitMapBackend::new(&png, size).into_drawing_area())
            .map_err(|message| ReportError::Draw { file: png.clone(), message })?;
        files.extend([svg, png]);
        Ok(())
    }
}

/// Writes the charts and the page into `out`; returns the files written.
pub fn write(records: &[Record], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let ok: Vec<&Record> = records.iter().filter(|r| r.status == "ok").collect();
    if ok.is_empty() {
        return Err(ReportError::NothingValid { records: records.len() });
    }
    register_font()?;
    let front = pareto(&ok);
    let chosen = *front.iter().min_by(|&&a, &&b| edp(ok[a]).total_cmp(&edp(ok[b]))).expect("a non-empty front");
    let mut files = Vec::new();
    Chart::Pareto(&ok, &front).write(out, "pareto", (900, 640), &mut files)?;
    Chart::Utilization(ok[chosen]).write(out, "utilization", (1000, 560), &mut files)?;
    Chart::Roofline(ok[chosen]).write(out, "roofline", (900, 640), &mut files)?;
    let page_path = out.join("report.md");
    std::fs::write(&page_path, page(records, &ok, &front, chosen))
        .map_err(|error| ReportError::Write { path: page_path.clone(), error })?;
    files.push(page_path);
    Ok(files)
}

fn span(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = v.clone().fold(f64::INFINITY, f64::min);
    let hi = v.fold(f64::NEG_INFINITY, f64::max);
    (lo / 1.3, hi * 1.3)
}

fn pareto_chart<DB: DrawingBackend>(ok: &[&Record], front: &[usize], root: &DrawingArea<DB, Shift>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1) = span(ok.iter().map(|r| r.latency_ms));
    let (y0, y1) = span(ok.iter().map(|r| r.energy_uj));
    let (a0, a1) = (ok.iter().map(|r| r.area_mm2).fold(f64::INFINITY, f64::min), ok.iter().map(|r| r.area_mm2).fold(0.0, f64::max));
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{}: latency vs energy, colour = area ({a0:.2}-{a1:.2} mm^2)", ok[0].target), (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(err)?;
    chart.configure_mesh().x_desc("latency (ms)").y_desc("energy (uJ)").draw().map_err(err)?;
    let colour = |a: f64| {
        let t = if a1 > a0 { (a - a0) / (a1 - a0) } else { 0.5 };
        RGBColor((40.0 + 200.0 * t) as u8, 80, (240.0 - 200.0 * t) as u8)
    };
    chart.draw_series(ok.iter().map(|r| Circle::new((r.latency_ms, r.energy_uj), 4, colour(r.area_mm2).filled()))).map_err(err)?;
    chart
        .draw_series(front.iter().map(|&i| Circle::new((ok[i].latency_ms, ok[i].energy_uj), 8, BLACK.stroke_width(2))))
        .map_err(err)?
        .label("latency-energy-area Pareto point")
        .legend(|(x, y)| Circle::new((x, y), 6, BLACK.stroke_width(2)));
    let mut line: Vec<(f64, f64)> = front.iter().map(|&i| (ok[i].latency_ms, ok[i].energy_uj)).collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best = f64::INFINITY;
    line.retain(|&(_, e)| {
        let keep = e < best;
        best = best.min(e);
        keep
    });
    chart
        .draw_series(LineSeries::new(line, BLACK.stroke_width(1)))
        .map_err(err)?
        .label("latency-energy front")
        .legend(|(x, y)| PathElement::new(vec![(x - 10, y), (x + 10, y)], BLACK));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

fn utilization_chart<DB: DrawingBackend>(r: &Record, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let n = r.layers.len();
    let mut chart = ChartBuilder::on(root)
        .caption(format!("point {}: utilization per layer (bars), best possible (dots)", r.id), (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..n as f64, 0f64..1.05f64)
        .map_err(err)?;
    chart.configure_mesh().disable_x_mesh().x_desc("layer (in order)").y_desc("utilization").draw().map_err(err)?;
    chart
        .draw_series(r.layers.iter().enumerate().map(|(i, l)| {
            let c = match l.op.as_str() {
                "depthwise" => RGBColor(230, 120, 40),
                "gemm" => RGBColor(120, 120, 120),
                _ => RGBColor(50, 110, 200),
            };
            Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, l.utilization)], c.filled())
        }))
        .map_err(err)?;
    let best = |l: &systole_sweep::results::LayerRecord| {
        let bound = l.compute_bound_cycles.max(l.memory_bound_cycles).max(1);
        (l.compute_bound_cycles as f64 / bound as f64).min(1.0)
    };
    chart.draw_series(r.layers.iter().enumerate().map(|(i, l)| Circle::new((i as f64 + 0.5, best(l)), 3, BLACK.filled()))).map_err(err)?;
    root.present().map_err(err)
}

fn roofline_chart<DB: DrawingBackend>(r: &Record, root: &DrawingArea<DB, Shift>) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let peak = 2.0 * r.pes as f64 * r.clock_mhz / 1000.0;
    // Reads and writes have a channel each: DRAM bytes (both) move at up to twice the rate.
    let bw = 2.0 * r.dram_bytes_per_cycle as f64 * r.clock_mhz / 1000.0;
    let pts: Vec<(f64, f64, &str)> = r
        .layers
        .iter()
        .filter(|l| l.dram_bytes > 0 && l.cycles > 0)
        .map(|l| (2.0 * l.macs as f64 / l.dram_bytes as f64, 2.0 * l.macs as f64 / (l.cycles as f64 / r.clock_mhz) / 1000.0, l.op.as_str()))
        .collect();
    let (x0, x1) = span(pts.iter().map(|p| p.0).chain([peak / bw]));
    let y1 = peak * 2.0;
    let y0 = pts.iter().map(|p| p.1).fold(peak, f64::min) / 2.0;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("point {}: roofline ({peak:.0} GOPS peak, {bw:.1} GB/s DRAM read + write)", r.id), (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0.max(1e-6)..y1).log_scale())
        .map_err(err)?;
    chart.configure_mesh().x_desc("operational intensity (ops per DRAM byte)").y_desc("GOPS").draw().map_err(err)?;
    let ridge = peak / bw;
    let roof: Vec<(f64, f64)> = vec![(x0, x0 * bw), (ridge, peak), (x1, peak)];
    chart
        .draw_series(LineSeries::new(roof, RED.stroke_width(2)))
        .map_err(err)?
        .label("roof")
        .legend(|(x, y)| PathElement::new(vec![(x - 10, y), (x + 10, y)], RED));
    chart
        .draw_series(pts.iter().map(|&(x, y, op)| {
            let c = if op == "depthwise" {
                RGBColor(230, 120, 40)
            } else if op == "gemm" {
                RGBColor(120, 120, 120)
            } else {
                RGBColor(50, 110, 200)
            };
            Circle::new((x, y), 4, c.filled())
        }))
        .map_err(err)?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

fn page(all: &[Record], ok: &[&Record], front: &[usize], chosen: usize) -> String {
    let mut s = String::new();
    let r = ok[chosen];
    let _ = writeln!(s, "# Sweep report: {}\n", r.target);
    let failed = all.len() - ok.len();
    let _ = writeln!(
        s,
        "{} points, {} valid, {} failed (invalid or unmappable); {} on the latency-energy-area Pareto front.\n",
        all.len(),
        ok.len(),
        failed,
        front.len()
    );
    let _ = writeln!(
        s,
        "![Pareto front](pareto.svg)\n\nEvery chart is also a PNG beside its SVG (`pareto.png`, `utilization.png`, `roofline.png`).\n"
    );
    let _ = writeln!(s, "## Pareto points (by latency)\n");
    let _ =
        writeln!(s, "| id | parameters | latency (ms) | energy (uJ) | area (mm^2) | EDP (uJ ms) | utilization | cycles / lower bound |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<&Record> = front.iter().map(|&i| ok[i]).collect();
    rows.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms).then(a.id.cmp(&b.id)));
    for p in rows {
        let params = p.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            s,
            "| {}{} | {} | {:.3} | {:.1} | {:.3} | {:.1} | {:.3} | {:.2} |",
            p.id,
            if p.id == r.id { " (chosen)" } else { "" },
            params,
            p.latency_ms,
            p.energy_uj,
            p.area_mm2,
            edp(p),
            p.utilization,
            p.cycles as f64 / p.lower_bound_cycles.max(1) as f64
        );
    }
    let _ = writeln!(s, "\n## Chosen point {}: lowest energy-delay product on the front\n", r.id);
    let _ = writeln!(s, "![Utilization per layer](utilization.svg)\n\n![Roofline](roofline.svg)\n");
    let _ = writeln!(s, "Each layer's mapping (searched for {:?}) against its lower bounds:\n", r.objective);
    let _ = writeln!(s, "| layer | op | mapping | cycles | compute bound | memory bound | cycles / bound | utilization |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for l in &r.layers {
        let bound = l.compute_bound_cycles.max(l.memory_bound_cycles).max(1);
        let mapping = l.mapping.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "| {} | {} | {mapping} | {} | {} | {} | {:.2} | {:.3} |",
            l.name,
            l.op,
            l.cycles,
            l.compute_bound_cycles,
            l.memory_bound_cycles,
            l.cycles as f64 / bound as f64,
            l.utilization
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, lat: f64, e: f64, a: f64) -> Record {
        let mut r: Record = serde_json::from_str(&format!(
            r#"{{"id":{id},"space":"s","target":"t","params":{{}},"status":"ok","cycles":1,"latency_ms":{lat},"macs":1,"utilization":0.5,"lower_bound_cycles":1,"energy_uj":{e},"area_mm2":{a},"dram_bytes":1,"layers":[]}}"#
        ))
        .unwrap();
        r.pes = 4;
        r
    }

    #[test]
    fn pareto_by_hand() {
        let pts = [rec(0, 1.0, 10.0, 1.0), rec(1, 2.0, 5.0, 1.0), rec(2, 2.0, 6.0, 1.0), rec(3, 3.0, 20.0, 0.5), rec(4, 3.0, 20.0, 0.6)];
        let refs: Vec<&Record> = pts.iter().collect();
        // 2 is beaten by 1 (same latency and area, less energy); 4 by 3 (less area).
        assert_eq!(pareto(&refs), vec![0, 1, 3]);
    }
}
