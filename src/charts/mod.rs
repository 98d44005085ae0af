//! Charts: an indicator result drawn as SVG or PNG with plotters, in Italian
//! or English, with a DejaVu font bundled in the binary so that a machine
//! without system fonts still renders text and accents.
//!
//! Owns the drawing of bar, grouped and stacked bar, line, population pyramid
//! and target-vs-actual charts. Suppressed cells are drawn as suppressed (a
//! hatched stub labelled `c`), never as zero. It must not run queries.

mod data;

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::indicators::{ChartKind, CodeLabels, IndicatorResult, Lang};
use data::{ChartData, Value};

/// The font family name the bundled font is registered under.
const FONT: &str = "sans-serif";

/// Output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    /// The format a file name asks for, from its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(Self::Svg),
            "png" => Some(Self::Png),
            _ => None,
        }
    }
}

/// What to draw and how big.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartOptions {
    pub lang: Lang,
    pub width: u32,
    pub height: u32,
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self {
            lang: Lang::It,
            width: 800,
            height: 480,
        }
    }
}

/// Failures while drawing.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("encoding the PNG: {0}")]
    Png(#[from] png::EncodingError),
    #[error("the chart must be between 100×100 and 4000×4000 pixels, not {0}×{1}")]
    Size(u32, u32),
}

fn draw_error<E: std::fmt::Debug>(error: E) -> ChartError {
    ChartError::Draw(format!("{error:?}"))
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans is a valid font"));
        plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold())
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans Bold is a valid font"));
    });
}

/// Draws `result` with the chart kind its header declares.
pub fn render(
    result: &IndicatorResult,
    labels: &CodeLabels,
    options: ChartOptions,
    format: ImageFormat,
) -> Result<Vec<u8>, ChartError> {
    let (width, height) = (options.width, options.height);
    if !(100..=4000).contains(&width) || !(100..=4000).contains(&height) {
        return Err(ChartError::Size(width, height));
    }
    register_font();
    let data = ChartData::from_result(result, labels, options.lang);
    match format {
        ImageFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                draw(&root, &data, result.spec.chart)?;
                root.present().map_err(draw_error)?;
            }
            Ok(svg.into_bytes())
        }
        ImageFormat::Png => {
            let mut pixels = vec![0u8; width as usize * height as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
                draw(&root, &data, result.spec.chart)?;
                root.present().map_err(draw_error)?;
            }
            let mut png_bytes = Vec::new();
            let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.write_header()?.write_image_data(&pixels)?;
            Ok(png_bytes)
        }
    }
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 97, 141),
    RGBColor(230, 126, 34),
    RGBColor(39, 174, 96),
    RGBColor(142, 68, 173),
    RGBColor(192, 57, 43),
    RGBColor(127, 140, 141),
    RGBColor(22, 160, 133),
    RGBColor(241, 196, 15),
    RGBColor(52, 73, 94),
    RGBColor(211, 84, 0),
];
const SUPPRESSED: RGBColor = RGBColor(200, 200, 200);

fn color(series: usize) -> RGBColor {
    PALETTE[series % PALETTE.len()]
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
    kind: ChartKind,
) -> Result<(), ChartError> {
    root.fill(&WHITE).map_err(draw_error)?;
    let legend = legend_layout(root, data)?;
    let legend_rows = legend
        .iter()
        .map(|(_, (_, y))| y / LEGEND_ROW + 1)
        .max()
        .unwrap_or(0);
    let footer_height = 28 + LEGEND_ROW * legend_rows;
    let (body, footer) = root.split_vertically(root.dim_in_pixel().1 as i32 - footer_height);
    let label_style = TextStyle::from((FONT, 13).into_font());
    for (series, (name, (x, y))) in legend.iter().enumerate() {
        footer
            .draw(&Rectangle::new(
                [(*x, y + 4), (x + 12, y + 16)],
                color(series).filled(),
            ))
            .map_err(draw_error)?;
        footer
            .draw_text(name, &label_style, (x + 16, y + 3))
            .map_err(draw_error)?;
    }
    let grey = BLACK.mix(0.7);
    let note_style = TextStyle::from((FONT, 12).into_font()).color(&grey);
    footer
        .draw_text(
            &data.footnote,
            &note_style,
            (10, LEGEND_ROW * legend_rows + 8),
        )
        .map_err(draw_error)?;
    match kind {
        ChartKind::Line => line_chart(&body, data),
        ChartKind::Pyramid => pyramid(&body, data),
        ChartKind::StackedBar => bar_chart(&body, data, true),
        ChartKind::Bar | ChartKind::GroupedBar | ChartKind::TargetVsActual => {
            bar_chart(&body, data, false)
        }
    }
}

const LEGEND_ROW: i32 = 20;

/// Where each series' key goes, wrapping onto more rows when the names do
/// not fit the width. No legend for a single series: the title names it.
fn legend_layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ChartData,
) -> Result<Vec<(String, (i32, i32))>, ChartError> {
    if data.series.len() < 2 {
        return Ok(Vec::new());
    }
    let style = TextStyle::from((FONT, 13).into_font());
    let width = root.dim_in_pixel().0 as i32;
    let (mut x, mut y) = (60, 0);
    let mut out = Vec::new();
    for name in &data.series {
        let (w, _) = root.estimate_text_size(name, &style).map_err(draw_error)?;
        let needed = 16 + w as i32 + 18;
        if x + needed > width - 10 && x > 60 {
            x = 60;
            y += LEGEND_ROW;
        }
        out.push((name.clone(), (x, y)));
        x += needed;
    }
    Ok(out)
}

fn bar_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &ChartData,
    stacked: bool,
) -> Result<(), ChartError> {
    let series = data.series.len().max(1);
    let top = if stacked {
        (0..data.categories.len())
            .map(|c| {
                (0..data.series.len())
                    .filter_map(|s| data.value(c, s).number())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    } else {
        data.max_value()
    };
    let top = nice_top(top);
    let mut chart = categories_chart(area, data, top, 1, false)?;
    let slot = 0.8;
    let width = if stacked { slot } else { slot / series as f64 };
    let stub = top * 0.04;
    for c in 0..data.categories.len() {
        let mut base = 0.0;
        for s in 0..data.series.len() {
            let x0 = c as f64 - slot / 2.0 + if stacked { 0.0 } else { s as f64 * width };
            let x1 = x0 + width;
            match data.value(c, s) {
                Value::Number(v) => {
                    let (y0, y1) = if stacked { (base, base + v) } else { (0.0, v) };
                    base = y1;
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0, y0), (x1, y1)],
                            color(s).filled(),
                        )))
                        .map_err(draw_error)?;
                    if let (false, Some((low, high))) = (stacked, data.interval(c, s)) {
                        draw_error_bar(&mut chart, (x0 + x1) / 2.0, (x1 - x0) / 4.0, low, high)?;
                    }
                }
                Value::Suppressed => {
                    let (y0, y1) = if stacked {
                        (base, base + stub)
                    } else {
                        (0.0, stub)
                    };
                    base = y1;
                    draw_suppressed(&mut chart, x0, x1, y0, y1)?;
                }
                Value::Missing => {}
            }
        }
    }
    Ok(())
}

/// A confidence interval as a vertical bar with caps.
fn draw_error_bar<DB: DrawingBackend>(
    chart: &mut CategoryChart<'_, DB>,
    x: f64,
    half_cap: f64,
    low: f64,
    high: f64,
) -> Result<(), ChartError> {
    let ink = BLACK.stroke_width(1);
    let low = low.max(0.0);
    let lines = [
        vec![(x, low), (x, high)],
        vec![(x - half_cap, low), (x + half_cap, low)],
        vec![(x - half_cap, high), (x + half_cap, high)],
    ];
    chart
        .draw_series(
            lines
                .into_iter()
                .map(|points| PathElement::new(points, ink)),
        )
        .map_err(draw_error)?;
    Ok(())
}

/// A stub for a suppressed cell: hatched grey, outlined, labelled `c`.
fn draw_suppressed<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
) -> Result<(), ChartError> {
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x0, y0), (x1, y1)],
            SUPPRESSED.filled(),
        )))
        .map_err(draw_error)?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x0, y0), (x1, y1)],
            BLACK.mix(0.6).stroke_width(1),
        )))
        .map_err(draw_error)?;
    let centred_above =
        TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    let hatches = 4;
    let lines = (0..hatches).map(|i| {
        let t = (i as f64 + 0.5) / hatches as f64;
        PathElement::new(
            vec![
                (x0 + (x1 - x0) * t, y0),
                (x0 + (x1 - x0) * (t + 0.2).min(1.0), y1),
            ],
            BLACK.mix(0.5),
        )
    });
    chart.draw_series(lines).map_err(draw_error)?;
    chart
        .draw_series(std::iter::once(Text::new(
            "c",
            ((x0 + x1) / 2.0, y1),
            centred_above,
        )))
        .map_err(draw_error)?;
    Ok(())
}

fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &ChartData,
) -> Result<(), ChartError> {
    let categories = data.categories.len().max(1);
    let top = nice_top(data.max_value());
    let step = categories.div_ceil(12).max(1);
    let mut chart = categories_chart(area, data, top, step, true)?;
    let stub = top * 0.03;
    for s in 0..data.series.len() {
        let mut segment: Vec<(f64, f64)> = Vec::new();
        for c in 0..data.categories.len() {
            match data.value(c, s) {
                Value::Number(v) => segment.push((c as f64, v)),
                other => {
                    if segment.len() > 1 {
                        chart
                            .draw_series(LineSeries::new(segment.clone(), color(s).stroke_width(2)))
                            .map_err(draw_error)?;
                    }
                    segment.clear();
                    if other == Value::Suppressed {
                        draw_suppressed(&mut chart, c as f64 - 0.15, c as f64 + 0.15, 0.0, stub)?;
                    }
                }
            }
        }
        if segment.len() > 1 {
            chart
                .draw_series(LineSeries::new(segment.clone(), color(s).stroke_width(2)))
                .map_err(draw_error)?;
        }
        chart
            .draw_series(
                segment
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color(s).filled())),
            )
            .map_err(draw_error)?;
    }
    Ok(())
}

/// Categories (age classes) upwards; the first series to the left, the
/// second to the right, as population pyramids are drawn.
fn pyramid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &ChartData,
) -> Result<(), ChartError> {
    let categories = data.categories.len().max(1);
    let top = nice_top(data.max_value());
    let mut chart = ChartBuilder::on(area)
        .caption(&data.title, (FONT, 18).into_font().style(FontStyle::Bold))
        .margin(12)
        .margin_top(34)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-top..top, -0.5f64..(categories as f64 - 0.5))
        .map_err(draw_error)?;
    let label = category_label(data.categories.clone(), 1);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(categories * 2 + 1)
        .y_label_formatter(&label)
        .x_label_formatter(&|x: &f64| format!("{}", x.abs().round()))
        .x_label_style((FONT, 12).into_font())
        .y_label_style((FONT, 12).into_font())
        .x_desc(&data.unit)
        .axis_desc_style((FONT, 13).into_font())
        .draw()
        .map_err(draw_error)?;
    let stub = top * 0.04;
    for c in 0..data.categories.len() {
        for s in 0..data.series.len().min(2) {
            let side = if s == 0 { -1.0 } else { 1.0 };
            let (y0, y1) = (c as f64 - 0.4, c as f64 + 0.4);
            match data.value(c, s) {
                Value::Number(v) => {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(0.0, y0), (side * v, y1)],
                            color(s).filled(),
                        )))
                        .map_err(draw_error)?;
                }
                Value::Suppressed => {
                    let (a, b) = if side < 0.0 {
                        (-stub, 0.0)
                    } else {
                        (0.0, stub)
                    };
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(a, y0), (b, y1)],
                            SUPPRESSED.filled(),
                        )))
                        .map_err(draw_error)?;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            "c",
                            (side * stub * 1.6, y1),
                            (FONT, 12).into_font(),
                        )))
                        .map_err(draw_error)?;
                }
                Value::Missing => {}
            }
        }
    }
    Ok(())
}

/// Formats a numeric axis position as the category at that whole number,
/// showing one category in `every` so that long axes stay legible.
fn category_label(names: Vec<String>, every: usize) -> impl Fn(&f64) -> String {
    move |position: &f64| {
        let index = position.round();
        let on_category = (position - index).abs() < 1e-6 && index >= 0.0;
        if on_category && (index as usize) % every == 0 {
            names.get(index as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

type CategoryChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Categories along x, values from 0 to `top` along y, with the title, the
/// unit and labelled axes.
fn categories_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    data: &ChartData,
    top: f64,
    label_every: usize,
    vertical_grid: bool,
) -> Result<CategoryChart<'a, DB>, ChartError> {
    let categories = data.categories.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&data.title, (FONT, 18).into_font().style(FontStyle::Bold))
        .margin(12)
        .margin_top(34)
        .x_label_area_size(if data.long_labels() { 70 } else { 40 })
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(categories as f64 - 0.5), 0f64..top)
        .map_err(draw_error)?;
    let label = category_label(data.categories.clone(), label_every);
    let mut mesh = chart.configure_mesh();
    if !vertical_grid {
        mesh.disable_x_mesh();
    }
    mesh.x_labels(categories * 2 + 1)
        .x_label_formatter(&label)
        .x_label_style((FONT, 12).into_font())
        .y_label_style((FONT, 12).into_font())
        .y_desc(&data.unit)
        .axis_desc_style((FONT, 13).into_font())
        .draw()
        .map_err(draw_error)?;
    Ok(chart)
}

/// A round upper bound for an axis, with some headroom.
fn nice_top(max: f64) -> f64 {
    if !(max > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf((max * 1.1).log10().floor());
    let scaled = max * 1.1 / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| *n >= scaled)
        .unwrap_or(10.0);
    nice * magnitude
}
