//! A bounded time series: the last ten minutes of one metric, for graphs and sparklines.

use std::collections::VecDeque;

/// How far back graphs reach.
pub const WINDOW_SECS: i64 = 600;
/// A hard cap so a host polled very fast still keeps bounded memory.
const MAX_POINTS: usize = 1200;

/// Points are kept as seconds after the series' first and `f32` values: 8 bytes a point,
/// so a 500-host fleet's ten minutes of graphs fit in a few megabytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    base: i64,
    points: VecDeque<(i32, f32)>,
    /// The points a full window holds at the host's refresh: room for them is made at
    /// the first point, once (growing by doubling would leave most of it unused).
    room: usize,
}

impl Series {
    /// A series of a host refreshed every `refresh_secs`.
    pub fn at_refresh(refresh_secs: u64) -> Self {
        Series {
            room: (WINDOW_SECS as usize / refresh_secs.max(1) as usize + 8).min(MAX_POINTS + 1),
            ..Series::default()
        }
    }

    fn make_room(&mut self, more: usize) {
        if self.points.capacity() == 0 {
            self.points.reserve_exact(self.room.max(more));
        }
    }

    fn at(&self, offset: i32) -> i64 {
        self.base + i64::from(offset)
    }

    fn offset(&self, at_secs: i64) -> i32 {
        i32::try_from(at_secs - self.base).unwrap_or(if at_secs > self.base {
            i32::MAX
        } else {
            i32::MIN
        })
    }

    pub fn push(&mut self, at_secs: i64, value: f64) {
        let value = if value.is_finite() { value as f32 } else { 0.0 };
        if self.points.is_empty() {
            self.base = at_secs;
        }
        self.make_room(1);
        let offset = self.offset(at_secs);
        self.points.push_back((offset, value));
        while let Some(&(t, _)) = self.points.front() {
            if self.at(t) < at_secs - WINDOW_SECS || self.points.len() > MAX_POINTS {
                self.points.pop_front();
            } else {
                break;
            }
        }
        if self.points.len() == 1 || self.points.front().is_some_and(|&(t, _)| t > 1 << 30) {
            self.rebase();
        }
    }

    /// The oldest point becomes the base again (offsets stay small however long it runs).
    fn rebase(&mut self) {
        let Some(&(first, _)) = self.points.front() else {
            return;
        };
        self.base = self.at(first);
        for p in &mut self.points {
            p.0 -= first;
        }
    }

    /// Older points, oldest first, put before the first one kept (a metrics source's
    /// history arriving after the first figures); points not older are left out, and the
    /// window and the cap still hold.
    pub fn prepend(&mut self, older: &[(i64, f64)]) {
        let first = self.first_at().unwrap_or(i64::MAX);
        let newest = self.last_at();
        let room = MAX_POINTS.saturating_sub(self.points.len());
        let keep: Vec<(i64, f64)> = older
            .iter()
            .copied()
            .filter(|&(t, _)| t < first && newest.is_none_or(|n| t >= n - WINDOW_SECS))
            .collect();
        let keep = &keep[keep.len().saturating_sub(room)..];
        let Some(&(oldest, _)) = keep.first() else {
            return;
        };
        self.make_room(keep.len() + 1);
        let shift = self.points.front().map(|_| first - oldest);
        self.base = oldest;
        if let Some(shift) = shift {
            let shift = i32::try_from(shift).unwrap_or(i32::MAX);
            for p in &mut self.points {
                p.0 = p.0.saturating_add(shift);
            }
        }
        for &(t, v) in keep.iter().rev() {
            let value = if v.is_finite() { v as f32 } else { 0.0 };
            let offset = self.offset(t);
            self.points.push_front((offset, value));
        }
        if newest.is_none() {
            // Only history: the window is the history's own.
            if let Some(last) = self.last_at() {
                while self
                    .points
                    .front()
                    .is_some_and(|&(t, _)| self.at(t) < last - WINDOW_SECS)
                {
                    self.points.pop_front();
                }
                self.rebase();
            }
        }
    }

    /// When the oldest point kept was taken (unix seconds).
    pub fn first_at(&self) -> Option<i64> {
        self.points.front().map(|p| self.at(p.0))
    }

    /// When the newest point was taken (unix seconds).
    pub fn last_at(&self) -> Option<i64> {
        self.points.back().map(|p| self.at(p.0))
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn last(&self) -> Option<f64> {
        self.points.back().map(|&(_, v)| f64::from(v))
    }

    /// The newest `n` values, oldest first.
    pub fn tail(&self, n: usize) -> Vec<f64> {
        let skip = self.points.len().saturating_sub(n);
        self.points
            .iter()
            .skip(skip)
            .map(|&(_, v)| f64::from(v))
            .collect()
    }

    pub fn max(&self) -> f64 {
        self.points
            .iter()
            .map(|&(_, v)| f64::from(v))
            .fold(0.0, f64::max)
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
    fn history_goes_before_the_first_figures() {
        let mut s = Series::default();
        s.push(1000, 5.0);
        s.push(1002, 6.0);
        // older points, one overlapping, one out of the window
        s.prepend(&[(300, 9.0), (990, 1.0), (996, 2.0), (1000, 7.0)]);
        assert_eq!(s.tail(10), vec![1.0, 2.0, 5.0, 6.0]);
        assert_eq!((s.first_at(), s.last_at()), (Some(990), Some(1002)));
        s.push(1600, 8.0);
        assert_eq!(s.first_at(), Some(1000), "the window still holds");
        // history alone
        let mut h = Series::default();
        h.prepend(&[(0, 1.0), (500, 2.0), (900, 3.0)]);
        assert_eq!(h.tail(10), vec![2.0, 3.0]);
        assert_eq!(h.first_at(), Some(500));
        h.push(902, 4.0);
        assert_eq!(h.tail(10), vec![2.0, 3.0, 4.0]);
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
