//! Compact number formatting: a VPS row has about eight characters per figure at 80 columns.

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `1.2G`, `512M`, `980K`, `12B`, in powers of 1024 as `free -h` shows them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", bytes(bytes_per_sec.max(0.0) as u64))
}

/// `42s`, `5m`, `3h`, `2d`: the coarsest unit that still says something.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

pub fn percent(p: f64) -> String {
    if p >= 99.5 {
        format!("{:.0}%", p.min(999.0))
    } else if p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The newest `width` values as block characters scaled to `max`.
pub fn sparkline(values: &[f64], width: usize, max: f64) -> String {
    let skip = values.len().saturating_sub(width);
    let mut out: String = " ".repeat(width.saturating_sub(values.len()));
    for &v in &values[skip..] {
        let ratio = if max > 0.0 {
            (v / max).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let i = (ratio * (BARS.len() - 1) as f64).round() as usize;
        out.push(BARS[i.min(BARS.len() - 1)]);
    }
    out
}

/// Cuts `text` to `width` characters with an ellipsis.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s
}

/// `text` in exactly `width` terminal columns: cut with an ellipsis by display width (a
/// wide character counts two), or padded with spaces.
pub fn fit_columns(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    let mut out = String::with_capacity(width);
    let mut used = 0;
    if total <= width {
        out.push_str(text);
        used = total;
    } else if width > 0 {
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width - 1 {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// `532 B`, `12.3 MB`, `1.1 GB`: decimal, as file managers and `ls -h --si` print.
pub fn si_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0G");
        assert_eq!(bytes(300 * 1024 * 1024), "300M");
        assert_eq!(age(59), "59s");
        assert_eq!(age(3600 * 30), "30h");
        assert_eq!(age(86_400 * 3), "3d");
        assert_eq!(percent(5.25), "5.2%");
        assert_eq!(percent(42.4), "42%");
        assert_eq!(sparkline(&[0.0, 50.0, 100.0], 5, 100.0), "  ▁▅█");
        assert_eq!(fit("course-supporter", 8), "course-…");
        assert_eq!(fit_columns("db", 4), "db  ");
        assert_eq!(fit_columns("日本語のサービス", 7), "日本語…");
        assert_eq!(fit_columns("日本語のサービス", 6), "日本… ");
        assert_eq!(fit_columns("abc", 0), "");
    }
}
