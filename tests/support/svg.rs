//! A terminal screen (as the vt100 parser read it from the real binary) drawn as SVG:
//! every cell at its own column, so box drawing and block characters line up whatever
//! font the viewer has; colours, bold, dim, italic, underline and reverse as the terminal
//! shows them.

use std::fmt::Write;

/// Cell size in pixels for a 14 px monospace font.
const CW: f64 = 8.4;
const CH: f64 = 18.0;
const PAD: f64 = 12.0;
const BG: (u8, u8, u8) = (0x1d, 0x20, 0x26);
const FG: (u8, u8, u8) = (0xd8, 0xdc, 0xe3);

/// The 16 ANSI colours of the terminal the pictures are "taken" in (a common dark
/// scheme); indices 16–255 are xterm's cube and grey ramp.
const ANSI: [(u8, u8, u8); 16] = [
    (0x2c, 0x31, 0x3a),
    (0xe0, 0x6c, 0x75),
    (0x98, 0xc3, 0x79),
    (0xe5, 0xc0, 0x7b),
    (0x61, 0xaf, 0xef),
    (0xc6, 0x78, 0xdd),
    (0x56, 0xb6, 0xc2),
    (0xab, 0xb2, 0xbf),
    (0x5c, 0x63, 0x70),
    (0xff, 0x7b, 0x86),
    (0xb5, 0xe8, 0x90),
    (0xff, 0xd7, 0x87),
    (0x7c, 0xc5, 0xff),
    (0xe0, 0x9c, 0xff),
    (0x7e, 0xe0, 0xea),
    (0xff, 0xff, 0xff),
];

fn indexed(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => ANSI[i as usize],
        16..=231 => {
            let n = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(n / 36), level((n / 6) % 6), level(n % 6))
        }
        _ => {
            let g = 8 + (i - 232) * 10;
            (g, g, g)
        }
    }
}

fn rgb(c: vt100::Color, default: (u8, u8, u8)) -> (u8, u8, u8) {
    match c {
        vt100::Color::Default => default,
        vt100::Color::Idx(i) => indexed(i),
        vt100::Color::Rgb(r, g, b) => (r, g, b),
    }
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Cells of one style on a row: `[start, end)` and the glyphs that are not blank.
struct Run {
    start: u16,
    end: u16,
    style: Style,
    /// column, cells wide, contents
    glyphs: Vec<(u16, u16, String)>,
}

#[derive(Clone, PartialEq)]
struct Style {
    fg: (u8, u8, u8),
    bg: (u8, u8, u8),
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

fn style_of(cell: &vt100::Cell) -> Style {
    let (mut fg, mut bg) = (rgb(cell.fgcolor(), FG), rgb(cell.bgcolor(), BG));
    if cell.inverse() {
        std::mem::swap(&mut fg, &mut bg);
    }
    Style {
        fg,
        bg,
        bold: cell.bold(),
        dim: cell.dim(),
        italic: cell.italic(),
        underline: cell.underline(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole screen as one SVG document; `title` goes into `<title>` for accessibility.
pub fn render(screen: &vt100::Screen, title: &str) -> String {
    let (rows, cols) = screen.size();
    let (rows, cols) = (rows.get(), cols.get());
    let width = f64::from(cols) * CW + 2.0 * PAD;
    let height = f64::from(rows) * CH + 2.0 * PAD;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.1} {height:.1}" role="img">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" rx="8" fill="{}"/>"#,
        hex(BG)
    );
    let _ = writeln!(
        out,
        r#"<g font-family="'DejaVu Sans Mono','Menlo','Consolas','Liberation Mono',monospace" font-size="14px">"#
    );
    for row in 0..rows {
        let y = PAD + f64::from(row) * CH;
        // runs of one style: a background rect each, then their glyphs
        let mut runs: Vec<Run> = Vec::new();
        let mut col = 0;
        while col < cols {
            let Some(cell) = screen.cell(row, col) else {
                col += 1;
                continue;
            };
            if cell.is_wide_continuation() {
                col += 1;
                continue;
            }
            let st = style_of(cell);
            let span = if cell.is_wide() { 2 } else { 1 };
            let text = cell.contents().to_string();
            match runs.last_mut() {
                Some(run) if run.style == st && run.end == col => {
                    run.end = col + span;
                    if !text.trim().is_empty() {
                        run.glyphs.push((col, span, text));
                    }
                }
                _ => {
                    let glyphs = if text.trim().is_empty() {
                        Vec::new()
                    } else {
                        vec![(col, span, text)]
                    };
                    runs.push(Run {
                        start: col,
                        end: col + span,
                        style: st,
                        glyphs,
                    });
                }
            }
            col += span;
        }
        for run in &runs {
            if run.style.bg != BG {
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{CH}" fill="{}"/>"#,
                    PAD + f64::from(run.start) * CW,
                    f64::from(run.end - run.start) * CW + 0.3,
                    hex(run.style.bg)
                );
            }
        }
        for Run {
            style: st, glyphs, ..
        } in &runs
        {
            if glyphs.is_empty() {
                continue;
            }
            let mut attrs = format!(r#" fill="{}""#, hex(st.fg));
            if st.bold {
                attrs.push_str(r#" font-weight="bold""#);
            }
            if st.dim {
                attrs.push_str(r#" opacity="0.6""#);
            }
            if st.italic {
                attrs.push_str(r#" font-style="italic""#);
            }
            if st.underline {
                attrs.push_str(r#" text-decoration="underline""#);
            }
            // One tspan per word (glyphs in touching cells), with an x for every
            // character: browsers place each glyph in its own column, and renderers
            // that take only a tspan's first x still start every word where it belongs.
            let mut words: Vec<Vec<&(u16, u16, String)>> = Vec::new();
            for g in glyphs {
                match words.last_mut() {
                    Some(w) if w.last().is_some_and(|p| p.0 + p.1 == g.0) => w.push(g),
                    _ => words.push(vec![g]),
                }
            }
            let spans: String = words
                .iter()
                .map(|w| {
                    let xs: Vec<String> = w
                        .iter()
                        .map(|(c, _, _)| format!("{:.1}", PAD + f64::from(*c) * CW))
                        .collect();
                    // a cell holds one character (a combining mark would need an x too)
                    let text: String = w.iter().filter_map(|(_, _, t)| t.chars().next()).collect();
                    format!(r#"<tspan x="{}">{}</tspan>"#, xs.join(" "), escape(&text))
                })
                .collect();
            let _ = writeln!(
                out,
                r#"<text y="{:.1}"{attrs}>{spans}</text>"#,
                y + CH * 0.78
            );
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}
