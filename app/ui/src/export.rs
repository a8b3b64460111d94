//! Taking the figure away: the data as JSON (the command-line tool's schema), the magnified view as
//! SVG (vector text, for papers) and as PNG.

use crate::draw;
use crate::figure_data::FigureData;
use crate::labels::{fit, xml_escape};
use crate::layout::{self, Layout};
use crate::scale::{css, text_colour, Scale};
use loupe_protocol::{LensGrid, LensReport, Timings, TrackedToken};
use wasm_bindgen::JsCast;

/// The figure's data in the same schema as `loupe --json`.
pub fn report(fig: &FigureData) -> LensReport {
    let rows: Vec<_> = fig.rows.iter().flatten().collect();
    let n = fig.n_positions();
    let model = fig.model.clone().unwrap_or_default();
    let file = model.source.rsplit('/').next().unwrap_or("").split('?').next().unwrap_or("").trim_start_matches("local file ").to_string();
    LensReport {
        model: file,
        architecture: model.architecture,
        precision: fig.precision.clone(),
        prompt: fig.prompt.clone(),
        text: fig.text.clone(),
        ids: fig.tokens.iter().map(|t| t.id).collect(),
        tokens: fig.tokens.iter().map(|t| t.piece.clone()).collect(),
        token_info: fig.tokens.clone(),
        grid: LensGrid {
            n_rows: rows.len(),
            n_positions: n,
            entropy: rows.iter().map(|r| r.entropy.clone()).collect(),
            top_ids: rows.iter().map(|r| r.top_ids.clone()).collect(),
            top_probs: rows.iter().map(|r| r.top_probs.clone()).collect(),
            kl_to_last: rows.iter().map(|r| r.kl_to_last.clone()).collect(),
            tracked: fig
                .tracked
                .iter()
                .enumerate()
                .map(|(i, t)| TrackedToken {
                    id: t.id,
                    piece: t.piece.clone(),
                    prob: rows.iter().map(|r| r.tracked_prob.get(i).cloned().unwrap_or_default()).collect(),
                    rank: rows.iter().map(|r| r.tracked_rank.get(i).cloned().unwrap_or_default()).collect(),
                })
                .collect(),
        },
        top_tokens: rows.iter().map(|r| r.top_pieces.clone()).collect(),
        timings: Timings { load: 0.0, forward: fig.forward_s, lens: fig.lens_s },
    }
}

/// The magnified view as a standalone SVG document, legend included.
pub fn svg(fig: &FigureData, scale: &Scale, l: &Layout) -> String {
    let legend_top = l.height() + 10.0;
    let height = legend_top + draw::LEGEND_H + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" font-family=\"ui-monospace, Menlo, Consolas, monospace\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n",
        w = l.width
    );
    let chars = l.label_chars();
    for r in 0..l.n_rows {
        for p in l.start..l.end {
            let colour = scale.colour(fig.value(scale.metric, r, p));
            let (x, y) = (l.x(p), l.y(r));
            s += &format!("<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{}\" fill=\"{}\"/>\n", l.cell_w + 0.3, layout::ROW_H + 0.3, css(colour));
            if l.labelled() {
                if let Some(top) = fig.top1_text(r, p) {
                    s += &format!(
                        "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" dominant-baseline=\"central\" fill=\"{}\">{}</text>\n",
                        x + l.cell_w / 2.0,
                        y + layout::ROW_H / 2.0,
                        text_colour(colour),
                        xml_escape(&fit(top, chars))
                    );
                }
            }
        }
    }
    for r in 0..l.n_rows {
        s += &format!("<text x=\"{}\" y=\"{:.2}\" text-anchor=\"end\" dominant-baseline=\"central\" fill=\"#333\">{}</text>\n", layout::LEFT - 6.0, l.y(r) + layout::ROW_H / 2.0, layout::row_label(r));
    }
    for p in l.start..l.end {
        let Some(t) = fig.tokens.get(p) else { continue };
        let (x, y) = (l.x(p) + l.cell_w / 2.0, l.grid_bottom() + 6.0);
        let label = xml_escape(&fit(&t.text, 14));
        let colour = if t.template { draw::TEMPLATE_COLOUR } else { "#111" };
        let boxed = if t.template {
            let w = fit(&t.text, 14).chars().count() as f64 * layout::CHAR_W;
            format!("<rect x=\"{:.1}\" y=\"-7\" width=\"{:.1}\" height=\"14\" fill=\"none\" stroke=\"{colour}\"/>", -w - 3.0, w + 5.0)
        } else {
            String::new()
        };
        s += &format!(
            "<g transform=\"translate({x:.2},{y:.2}) rotate(-60)\">{boxed}<text text-anchor=\"end\" dominant-baseline=\"central\" fill=\"{colour}\">{label}</text></g>\n"
        );
    }
    // Legend: a gradient of the same colour map.
    let (lx, lw) = (layout::LEFT, 320.0f64.min(l.width - layout::LEFT - 20.0));
    s += &format!("<text x=\"{lx}\" y=\"{:.1}\" font-family=\"system-ui, sans-serif\" font-size=\"12\">{}</text>\n", legend_top + 11.0, xml_escape(&scale.title));
    let steps = 64;
    for i in 0..steps {
        let t = i as f32 / (steps - 1) as f32;
        s += &format!("<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"12\" fill=\"{}\"/>\n", lx + i as f64 * lw / steps as f64, legend_top + 16.0, lw / steps as f64 + 0.3, css(scale.bar_colour(t)));
    }
    for (v, label) in scale.ticks() {
        let x = lx + scale.along(v) as f64 * lw;
        s += &format!("<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-family=\"system-ui, sans-serif\">{}</text>\n", legend_top + 43.0, xml_escape(&label));
    }
    if let (crate::figure_data::Metric::Entropy, Some(ln_v)) = (scale.metric, fig.ln_vocab()) {
        let x = lx + (ln_v / scale.max).min(1.0) as f64 * lw;
        let arrow = if ln_v > scale.max { " →" } else { "" };
        s += &format!("<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"2\"/>\n", legend_top + 13.0, legend_top + 31.0);
        s += &format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-family=\"system-ui, sans-serif\">ln V = {ln_v:.2}{arrow}</text>\n", lx + lw, legend_top + 11.0);
    }
    s += "</svg>\n";
    s
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

/// The magnified view and its legend rendered at twice the resolution, as a PNG download.
pub fn png(name: &str, fig: &FigureData, scale: &Scale, l: &Layout) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(canvas) = document.create_element("canvas") else { return };
    let canvas: web_sys::HtmlCanvasElement = canvas.unchecked_into();
    let height = l.height() + draw::LEGEND_H + 20.0;
    canvas.set_width((l.width * 2.0) as u32);
    canvas.set_height((height * 2.0) as u32);
    let Some(ctx) = draw::context(&canvas) else { return };
    let _ = ctx.scale(2.0, 2.0);
    ctx.set_fill_style_str("#fff");
    ctx.fill_rect(0.0, 0.0, l.width, height);
    draw::magnified(&ctx, l, fig, scale, None);
    draw::legend(&ctx, layout::LEFT, l.height() + 10.0, 320.0f64.min(l.width - layout::LEFT - 20.0), scale, fig.ln_vocab());
    let Ok(data_url) = canvas.to_data_url_with_type("image/png") else { return };
    let Some(b64) = data_url.split(',').nth(1) else { return };
    let Ok(bytes) = web_sys::window().unwrap().atob(b64) else { return };
    let raw: Vec<u8> = bytes.chars().map(|c| c as u8).collect();
    let array = js_sys::Uint8Array::from(&raw[..]);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    if let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&js_sys::Array::of1(&array), &options) {
        download_blob(name, &blob);
    }
}
