//! Charts: valid SVG, decodable PNG of the requested size with text drawn by
//! the bundled font, Italian and English labels, suppressed cells marked.

use osservatorio::charts::{render, ChartError, ChartOptions, ImageFormat};
use osservatorio::indicators::Lang;

use crate::indicators::{catalog, params};

/// The text of every `<text>` element, trimmed, after checking the SVG parses.
fn svg_texts(svg: &[u8]) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(svg);
    let mut texts = Vec::new();
    let mut current: Option<String> = None;
    let mut buffer = Vec::new();
    let mut saw_root = false;
    loop {
        match reader
            .read_event_into(&mut buffer)
            .expect("well-formed SVG")
        {
            Event::Start(e) => {
                saw_root |= e.name().as_ref() == b"svg";
                if e.name().as_ref() == b"text" {
                    current = Some(String::new());
                }
            }
            Event::Text(t) => {
                if let Some(text) = current.as_mut() {
                    text.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(text) = current.as_mut() {
                    let entity = format!("&{};", String::from_utf8_lossy(r.as_ref()));
                    text.push_str(&quick_xml::escape::unescape(&entity).unwrap());
                }
            }
            Event::End(e) if e.name().as_ref() == b"text" => {
                if let Some(text) = current.take() {
                    texts.push(text.trim().to_string());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    assert!(saw_root, "the document is an <svg>");
    texts
}

#[tokio::test]
async fn every_chart_kind_renders_valid_svg_in_both_languages() {
    let (engine, catalog) = catalog().await;
    let options = ChartOptions::default();
    for id in [
        "age_pyramid",
        "desk_activity",
        "staff_hires",
        "workers_by_job_type",
        "weekly_hours",
        "contracts_started_by_year",
    ] {
        let result = catalog
            .run(&engine, id, &params(&[("year", "2023")]))
            .await
            .unwrap();
        let italian =
            svg_texts(&render(&result, catalog.labels(), options, ImageFormat::Svg).unwrap());
        let title = result.spec.title(Lang::It);
        assert!(
            italian.iter().any(|t| t.starts_with(title)),
            "{id}: title {title:?} among {italian:?}"
        );
        assert!(
            italian.iter().any(|t| t.starts_with("Fonte: Osservatorio")),
            "{id}"
        );
        let english = svg_texts(
            &render(
                &result,
                catalog.labels(),
                ChartOptions {
                    lang: Lang::En,
                    ..options
                },
                ImageFormat::Svg,
            )
            .unwrap(),
        );
        assert!(
            english
                .iter()
                .any(|t| t.starts_with(result.spec.title(Lang::En))),
            "{id}: {english:?}"
        );
    }
    let pyramid = catalog
        .run(&engine, "age_pyramid", &params(&[("year", "2023")]))
        .await
        .unwrap();
    let texts = svg_texts(&render(&pyramid, catalog.labels(), options, ImageFormat::Svg).unwrap());
    assert!(
        texts.iter().any(|t| t.contains("età")),
        "accents survive: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "Donne") && texts.iter().any(|t| t == "Uomini"),
        "codes are labelled: {texts:?}"
    );
}

#[tokio::test]
async fn suppressed_cells_are_drawn_as_suppressed() {
    let (engine, catalog) = catalog().await;
    let result = catalog
        .run(&engine, "desk_activity", &params(&[("year", "2023")]))
        .await
        .unwrap();
    let suppressed = (0..result.num_rows())
        .filter(|&r| result.flags(r).contains('c'))
        .count();
    assert!(suppressed > 0, "the month × service table has small cells");
    let texts = svg_texts(
        &render(
            &result,
            catalog.labels(),
            ChartOptions::default(),
            ImageFormat::Svg,
        )
        .unwrap(),
    );
    assert!(
        texts.iter().filter(|t| *t == "c").count() >= 1,
        "suppressed cells carry the `c` mark"
    );
    assert!(
        texts.iter().any(|t| t.contains("c = dato riservato")),
        "the key explains the mark"
    );
}

#[tokio::test]
async fn png_has_the_requested_size_and_drawn_text() {
    let (engine, catalog) = catalog().await;
    let result = catalog
        .run(&engine, "staff_hires", &params(&[("year", "2023")]))
        .await
        .unwrap();
    let options = ChartOptions {
        lang: Lang::It,
        width: 640,
        height: 400,
    };
    let png_bytes = render(&result, catalog.labels(), options, ImageFormat::Png).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (640, 400));
    let stride = info.line_size;
    let inked = |rows: std::ops::Range<usize>| {
        rows.flat_map(|y| {
            pixels[y * stride..(y + 1) * stride]
                .chunks(3)
                .map(|p| p[0] < 128 && p[1] < 128 && p[2] < 128)
                .collect::<Vec<_>>()
        })
        .filter(|dark| *dark)
        .count()
    };
    // The title band and the footnote are text only: dark pixels there are glyphs.
    assert!(inked(20..50) > 200, "the title is drawn, not blank");
    assert!(inked(372..392) > 100, "the footnote is drawn");
    let error = render(
        &result,
        catalog.labels(),
        ChartOptions {
            width: 20,
            ..options
        },
        ImageFormat::Png,
    )
    .unwrap_err();
    assert!(matches!(error, ChartError::Size(20, 400)));
}
