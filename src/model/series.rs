//! A bounded time series: the last ten minutes of one metric, for graphs and sparklines.

use std::collections::VecDeque;

/// How far back graphs reach.
pub const WINDOW_SECS: i64 = 600;
/// A hard cap so a host polled very fast still keeps bounded memory.
const MAX_POINTS: usize = 1200;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: VecDeque<(i64, f64)>,
}

impl Series {
    pub fn push(&mut self, at_secs: i64, value: f64) {
        let value = if value.is_finite() { value } else { 0.0 };
        self.points.push_back((at_secs, value));
        while let Some(&(t, _)) = self.points.front() {
            if t < at_secs - WINDOW_SECS || self.points.len() > MAX_POINTS {
                self.points.pop_front();
            } else {
                break;
            }
        }
    }

    /// When the oldest point kept was taken (unix seconds).
    pub fn first_at(&self) -> Option<i64> {
        self.points.front().map(|p| p.0)
    }

    /// When the newest point was taken (unix seconds).
    pub fn last_at(&self) -> Option<i64> {
        self.points.back().map(|p| p.0)
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn last(&self) -> Option<f64> {
        self.points.back().map(|&(_, v)| v)
    }

    /// The newest `n` values, oldest first.
    pub fn tail(&self, n: usize) -> Vec<f64> {
        let skip = self.points.len().saturating_sub(n);
        self.points.iter().skip(skip).map(|&(_, v)| v).collect()
    }

    pub fn max(&self) -> f64 {
        self.points.iter().map(|&(_, v)| v).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_window() {
        let mut s = Series::default();
        for t in 0..1000 {
            s.push(t, t as f64);
        }
        assert_eq!(s.len(), 601);
        assert_eq!(s.tail(2), vec![998.0, 999.0]);
        assert_eq!(s.max(), 999.0);
    }

    #[test]
    fn caps_points_and_sanitises() {
        let mut s = Series::default();
        for _ in 0..5000 {
            s.push(0, f64::NAN);
        }
        assert!(s.len() <= MAX_POINTS);
        assert_eq!(s.last(), Some(0.0));
    }
}

/// Ten minutes of a host's graphs from a metrics source (its start: see `crate::metrics`):
/// `(unix seconds, value)` points per series, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub cpu: Vec<(i64, f64)>,
    pub mem_pct: Vec<(i64, f64)>,
    pub load1: Vec<(i64, f64)>,
    pub rx: Vec<(i64, f64)>,
    pub tx: Vec<(i64, f64)>,
}
