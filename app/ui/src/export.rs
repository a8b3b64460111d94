//! Taking the figure away: the report as JSON (the schema of `loupe --json`), and the magnified
//! seed's composite (overview, magnified range with its legend, zoomed column) as SVG (vector text)
//! and PNG, both painted by `figure_paint::composite`.

use crate::figure_data::{FigureData, Metric};
use crate::figure_paint;
use crate::layout::Layout;
use crate::paint::canvas::CanvasPainter;
use crate::paint::svg::SvgPainter;
use crate::scale::Scale;
use wasm_bindgen::JsCast;

/// The report; compared with a pinned run, also that run's report, how their cells line up, and
/// the entropy change per cell (`compared_with`), so the file carries both runs.
pub fn json(fig: &FigureData) -> String {
    let Some(c) = &fig.compare else { return serde_json::to_string(&fig.report).unwrap_or_default() };
    let Ok(mut report) = serde_json::to_value(&fig.report) else { return String::new() };
    let change: Vec<Vec<Option<f32>>> = (0..fig.n_rows())
        .map(|r| {
            (0..fig.n_positions()).map(|p| fig.value(Metric::EntropyChange, r, p).filter(|v| v.is_finite())).collect()
        })
        .collect();
    report["compared_with"] = serde_json::json!({
        "report": c.pinned.report,
        "positions": c.alignment.positions,
        "rows": c.alignment.rows,
        "alignment": c.alignment.how,
        "entropy_change": change,
    });
    serde_json::to_string(&report).unwrap_or_default()
}

pub fn svg(fig: &FigureData, scale: &Scale, l: &Layout, column: Option<usize>) -> String {
    let (w, h) = (figure_paint::composite_width(l), figure_paint::composite_height(l, fig, column));
    let mut painter = SvgPainter::new(w, h);
    figure_paint::composite(&mut painter, l, fig, scale, column);
    painter.finish()
}

/// Offers `data` as a file download.
pub fn download(name: &str, mime: &str, data: &str) {
    let parts = js_sys::Array::of1(&data.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else { return };
    download_blob(name, &blob);
}

fn download_blob(name: &str, blob: &web_sys::Blob) {
    let Ok(url) = web_sys::Url::create_object_url_with_blob(blob) else { return };
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Ok(a) = document.create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.set_attribute("data-export", name).ok();
        if let Some(body) = document.body() {
            let _ = body.append_child(&a);
            a.click();
            let _ = body.remove_child(&a);
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// The composite at twice the resolution, as a PNG download.
pub fn png(name: &str, fig: &FigureData, scale: &Scale, l: &Layout, column: Option<usize>) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(canvas) = document.create_element("canvas") else { return };
    let canvas: web_sys::HtmlCanvasElement = canvas.unchecked_into();
    let (w, h) = (figure_paint::composite_width(l), figure_paint::composite_height(l, fig, column));
    let Some(mut painter) = CanvasPainter::sized(&canvas, w, h, 2.0) else { return };
    figure_paint::composite(&mut painter, l, fig, scale, column);
    let Ok(data_url) = canvas.to_data_url_with_type("image/png") else { return };
    let Some(b64) = data_url.split(',').nth(1) else { return };
    let Some(bytes) = web_sys::window().and_then(|w| w.atob(b64).ok()) else { return };
    let raw: Vec<u8> = bytes.chars().map(|c| c as u8).collect();
    let array = js_sys::Uint8Array::from(&raw[..]);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    if let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&js_sys::Array::of1(&array), &options) {
        download_blob(name, &blob);
    }
}
