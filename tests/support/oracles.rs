//! Test oracles for text made safe (`opsdeck::sanitize`), written apart from it: shared by
//! the property tests (`tests/properties.rs`) and the fuzz targets (`tests/fuzz`).

/// Directional formatting characters: embeddings, overrides and isolates.
pub fn bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Every ESC in `s` opens an SGR sequence `ESC [ [0-9;:]* m`; no other control, and no
/// bidirectional control, is there.
pub fn only_sgr(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() != Some('[') {
                return false;
            }
            loop {
                match chars.next() {
                    Some('m') => break,
                    Some(c) if c.is_ascii_digit() || c == ';' || c == ':' => {}
                    _ => return false,
                }
            }
        } else if c.is_control() || bidi(c) {
            return false;
        }
    }
    true
}
