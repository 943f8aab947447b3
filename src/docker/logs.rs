//! Container logs, read from the engine's raw byte stream with opsdeck's own decoder.
//!
//! bollard's log decoder buffers a TTY container's output until a newline, so a progress
//! bar drawn with `\r` (or a host that never sends `\n`) grows it without bound, and a
//! multiplexed frame's 32-bit length is taken at its word. Here the frames are read as they
//! stream, no line is buffered past [`MAX_LINE_BYTES`], a `\r` keeps only what a terminal
//! would still show, and every line is sanitised (colours kept) before it leaves.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::InspectContainerOptions;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use crate::checks::BoxIo;
use crate::model::{LogLine, Msg, Stream};

/// The longest line kept; the rest of a longer one is dropped up to its newline. Docker's
/// own log drivers split lines at 16 KiB.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Marks a line cut at [`MAX_LINE_BYTES`].
pub const CUT_MARK: &str = " …[cut]";

const API_TIMEOUT: Duration = Duration::from_secs(5);

type OpenFuture = Pin<Box<dyn Future<Output = Result<BoxIo, String>> + Send>>;

/// Opens a fresh connection to the engine's socket: this machine's Unix socket, or a
/// `direct-streamlocal` channel of the host's SSH connection.
#[derive(Clone)]
pub struct Socket(Arc<dyn Fn() -> OpenFuture + Send + Sync>);

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Socket")
    }
}

impl Socket {
    pub fn new(open: impl Fn() -> OpenFuture + Send + Sync + 'static) -> Self {
        Socket(Arc::new(open))
    }

    /// A Unix socket on this machine.
    pub fn unix(path: &str) -> Self {
        let path = path.to_string();
        Socket::new(move || {
            let path = path.clone();
            Box::pin(async move {
                let s = tokio::net::UnixStream::connect(&path)
                    .await
                    .map_err(|e| format!("cannot connect to {path}: {e}"))?;
                Ok(Box::new(s) as BoxIo)
            })
        })
    }

    async fn open(&self) -> Result<BoxIo, String> {
        (self.0)().await
    }
}

/// What to ask for.
#[derive(Debug, Clone)]
pub struct LogRequest {
    pub follow: bool,
    pub timestamps: bool,
    /// `None`: all of it.
    pub tail: Option<u64>,
    /// Only lines stamped after this (Docker's RFC 3339 timestamp of the last line seen):
    /// a follower resumed after a reconnect neither loses nor repeats a line.
    pub after: Option<jiff::Timestamp>,
}

/// The log's body as it streams, and whether the container has a TTY (raw bytes, no
/// frames).
pub struct LogBody {
    pub tty: bool,
    body: hyper::body::Incoming,
    /// Keeps the HTTP connection's task for as long as the body is read.
    _conn: tokio::task::JoinHandle<()>,
}

impl LogBody {
    /// The next chunk of bytes; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<bytes::Bytes, String>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some(Ok(data)),
                    Err(_) => continue,
                },
                Err(e) => return Some(Err(format!("reading the log: {e}"))),
            }
        }
    }
}

/// Starts reading container `id`'s log. `docker` (already negotiated) gives the API
/// version and inspects the container for its TTY flag; the log itself is a plain HTTP
/// request over a fresh connection from `socket`.
pub async fn open(
    docker: &Docker,
    socket: &Socket,
    id: &str,
    req: &LogRequest,
) -> Result<LogBody, String> {
    let inspect = tokio::time::timeout(
        API_TIMEOUT,
        docker.inspect_container(id, None::<InspectContainerOptions>),
    )
    .await
    .map_err(|_| format!("Docker did not answer within {}s", API_TIMEOUT.as_secs()))?
    .map_err(|e| e.to_string())?;
    let tty = inspect.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    let id = inspect.id.unwrap_or_else(|| id.to_string());
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("Docker answered with an unexpected container id".into());
    }
    let v = docker.client_version();
    let mut path = format!(
        "/v{}.{}/containers/{id}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        v.major_version,
        v.minor_version,
        u8::from(req.follow),
        u8::from(req.timestamps),
        req.tail.map_or("all".to_string(), |n| n.to_string()),
    );
    if let Some(after) = req.after {
        // Docker's `since` is inclusive: the lines at exactly that time are dropped by the
        // splitter ([`LineSplitter::skip_until`]).
        path.push_str(&format!(
            "&since={}.{:09}",
            after.as_second(),
            after.subsec_nanosecond()
        ));
    }
    let stream = tokio::time::timeout(API_TIMEOUT, socket.open())
        .await
        .map_err(|_| "the Docker socket did not open within 5s".to_string())??;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("Docker: {e}"))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "docker")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(API_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| "Docker did not answer within 5s".to_string())?
        .map_err(|e| format!("Docker: {e}"))?;
    let status = response.status();
    let mut body = LogBody {
        tty,
        body: response.into_body(),
        _conn: conn,
    };
    if !status.is_success() {
        // The error's JSON message, bounded and sanitised.
        let mut text = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.extend_from_slice(&chunk);
            if text.len() > 4096 {
                break;
            }
        }
        text.truncate(4096);
        let raw = String::from_utf8_lossy(&text);
        let message = serde_json::from_str::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| raw.into_owned());
        return Err(format!(
            "Docker: {status}: {}",
            crate::sanitize::line(&message)
        ));
    }
    Ok(body)
}

/// Docker's log stream turned into lines: multiplexed frames (an 8-byte header: stream,
/// three zero bytes, a big-endian length) or, for a TTY container, raw bytes.
#[derive(Debug, Default)]
pub struct LogDecoder {
    tty: bool,
    header: Vec<u8>,
    /// Payload bytes left in the current frame, and its stream.
    remaining: usize,
    stream: Option<Stream>,
    splitter: LineSplitter,
}

impl LogDecoder {
    pub fn new(tty: bool) -> Self {
        LogDecoder {
            tty,
            ..Default::default()
        }
    }

    /// A decoder that drops lines stamped at or before `after` (see [`LogRequest::after`]).
    pub fn resuming(tty: bool, after: Option<jiff::Timestamp>) -> Self {
        LogDecoder {
            tty,
            splitter: LineSplitter::skip_until(after),
            ..Default::default()
        }
    }

    /// The newest line's timestamp so far.
    pub fn last_stamp(&self) -> Option<jiff::Timestamp> {
        self.splitter.last_stamp()
    }

    /// Feeds a chunk, however it is cut; complete lines go to `out`. A header that is not
    /// Docker's is an error: the stream cannot be trusted after it.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<LogLine>) -> Result<(), String> {
        let mut splitter = std::mem::take(&mut self.splitter);
        let result = self.demux(chunk, |stream, bytes| splitter.push(stream, bytes, out));
        self.splitter = splitter;
        result
    }

    /// Feeds a chunk and hands each stream's payload bytes to `f` as they come, without
    /// splitting lines (for `opsdeck logs --raw`).
    pub fn demux(
        &mut self,
        mut chunk: &[u8],
        mut f: impl FnMut(Stream, &[u8]),
    ) -> Result<(), String> {
        if self.tty {
            f(Stream::Stdout, chunk);
            return Ok(());
        }
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(chunk.len());
                f(self.stream.unwrap_or(Stream::Stdout), &chunk[..n]);
                self.remaining -= n;
                chunk = &chunk[n..];
                continue;
            }
            let need = 8 - self.header.len();
            let n = need.min(chunk.len());
            self.header.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.header.len() < 8 {
                break;
            }
            let h = std::mem::take(&mut self.header);
            self.stream = match h[0] {
                0 | 1 => Some(Stream::Stdout),
                2 => Some(Stream::Stderr),
                _ => None,
            };
            if self.stream.is_none() || h[1..4] != [0, 0, 0] {
                return Err("Docker sent a log frame opsdeck cannot read".into());
            }
            self.remaining = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        }
        Ok(())
    }

    /// The last lines, which had no newline, at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<LogLine>) {
        self.splitter.finish(out);
    }
}

/// Splits a stream's bytes into lines, holding at most [`MAX_LINE_BYTES`] of an unfinished
/// line per stream. Each line may start with the RFC 3339 timestamp Docker adds when asked.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: [Vec<u8>; 2],
    /// The current line was cut: drop its bytes until its newline.
    skipping: [bool; 2],
    /// Lines stamped at or before this are dropped (a resumed follower's overlap).
    skip_until: Option<jiff::Timestamp>,
    /// The newest timestamp seen.
    last: Option<jiff::Timestamp>,
}

impl LineSplitter {
    /// A splitter that drops lines stamped at or before `after`.
    pub fn skip_until(after: Option<jiff::Timestamp>) -> Self {
        LineSplitter {
            skip_until: after,
            last: after,
            ..Default::default()
        }
    }

    /// The newest timestamp of a line passed on (or the one skipped to).
    pub fn last_stamp(&self) -> Option<jiff::Timestamp> {
        self.last
    }

    /// Passes a finished line on, reading its timestamp.
    fn emit(&mut self, stream: Stream, line: &str, out: &mut Vec<LogLine>) {
        let line = parse_line(stream, line);
        if let Some(t) = line.at {
            if self.skip_until.is_some_and(|until| t <= until) {
                return;
            }
            self.skip_until = None;
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        out.push(line);
    }

    pub fn push(&mut self, stream: Stream, mut chunk: &[u8], out: &mut Vec<LogLine>) {
        let slot = usize::from(stream == Stream::Stderr);
        while !chunk.is_empty() {
            let (piece, ended) = match chunk.iter().position(|&b| b == b'\n') {
                Some(nl) => (&chunk[..nl], true),
                None => (chunk, false),
            };
            chunk = &chunk[(piece.len() + usize::from(ended)).min(chunk.len())..];
            if ended
                && !self.skipping[slot]
                && self.partial[slot].is_empty()
                && piece.len() <= MAX_LINE_BYTES
                && !piece.contains(&b'\r')
            {
                // A whole line inside the chunk, the common case: no copy into `partial`.
                self.emit(stream, &shown(piece), out);
                continue;
            }
            if !self.skipping[slot] {
                self.append(slot, stream, piece, out);
            }
            if ended {
                if !self.skipping[slot] {
                    let line = std::mem::take(&mut self.partial[slot]);
                    self.emit(stream, &shown(&line), out);
                }
                self.skipping[slot] = false;
            }
        }
    }

    /// Adds to the unfinished line what a terminal would still show of it: text before a
    /// carriage return that has text after it is overwritten. Past the bound, the line is
    /// cut and the rest of it dropped.
    fn append(&mut self, slot: usize, stream: Stream, mut piece: &[u8], out: &mut Vec<LogLine>) {
        let mut buf = std::mem::take(&mut self.partial[slot]);
        self.append_to(&mut buf, slot, stream, &mut piece, out);
        self.partial[slot] = buf;
    }

    fn append_to(
        &mut self,
        buf: &mut Vec<u8>,
        slot: usize,
        stream: Stream,
        piece: &mut &[u8],
        out: &mut Vec<LogLine>,
    ) {
        // Byte by byte in order, so the lines never depend on where the stream was cut:
        // a carriage return is kept at the end as pending (`\r\n`, as a TTY sends it, is
        // the line's end); text after one overwrites what came before; once the line
        // passes the bound it is cut, and the rest of it (rewrites included) is dropped.
        while !piece.is_empty() && !self.skipping[slot] {
            if piece[0] == b'\r' {
                if buf.last() != Some(&b'\r') {
                    buf.push(b'\r');
                }
                *piece = &piece[1..];
                continue;
            }
            let end = piece
                .iter()
                .position(|&b| b == b'\r')
                .unwrap_or(piece.len());
            if buf.last() == Some(&b'\r') {
                buf.clear();
            }
            let room = (MAX_LINE_BYTES + 1).saturating_sub(buf.len());
            buf.extend_from_slice(&piece[..room.min(end)]);
            *piece = &piece[end..];
            if buf.len() > MAX_LINE_BYTES {
                let mut line = shown(&buf[..MAX_LINE_BYTES]).into_owned();
                line.push_str(CUT_MARK);
                self.emit(stream, &line, out);
                buf.clear();
                self.skipping[slot] = true;
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<LogLine>) {
        for (slot, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            let line = std::mem::take(&mut self.partial[slot]);
            if !line.is_empty() && !self.skipping[slot] {
                self.emit(stream, &shown(&line), out);
            }
            self.skipping[slot] = false;
        }
    }
}

/// A line's bytes as text: invalid UTF-8 replaced (a character cut at the bound too),
/// trailing carriage returns gone, and only what follows the last one inside.
fn shown(bytes: &[u8]) -> Cow<'_, str> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let trimmed = text.trim_end_matches('\r');
    match (trimmed.rfind('\r'), &text) {
        (Some(cr), _) => Cow::Owned(trimmed[cr + 1..].to_string()),
        (None, Cow::Borrowed(t)) => Cow::Borrowed(t.trim_end_matches('\r')),
        (None, Cow::Owned(_)) => Cow::Owned(trimmed.to_string()),
    }
}

/// A line as the model keeps it: `HH:MM:SS` from Docker's timestamp, and the text with
/// every escape sequence but colours removed.
pub fn parse_line(stream: Stream, raw: &str) -> LogLine {
    let (time, at, text) = match raw.split_once(' ') {
        Some((ts, rest)) if is_timestamp(ts) => (
            ts.get(11..19).unwrap_or("").to_string(),
            ts.parse::<jiff::Timestamp>().ok(),
            rest,
        ),
        _ => (String::new(), None, raw),
    };
    LogLine {
        time,
        at,
        source: None,
        stream,
        text: crate::sanitize::keep_sgr(text).into_owned(),
    }
}

/// `2026-11-23T10:00:01.123456789Z`: digits where digits go, `T` and the colons in place.
fn is_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() >= 20
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Where a followed log got to: the newest line's timestamp, shared with the worker so a
/// follower started again after a reconnect carries on from there.
pub type Resume = std::sync::Arc<std::sync::Mutex<Option<jiff::Timestamp>>>;

/// Follows a container's log until the stream ends or the task is aborted; lines go to
/// the model in batches so a chatty container cannot flood the UI loop. It starts with the
/// last `tail` lines (`None`: all of them); with a time in `resume`, after that line
/// instead (no tail, nothing repeated); it keeps `resume` at the newest line it passed on.
pub async fn follow(
    docker: Docker,
    socket: Socket,
    host: usize,
    id: String,
    tx: mpsc::Sender<Msg>,
    resume: Resume,
    tail: Option<u64>,
) {
    let after = resume.lock().ok().and_then(|r| *r);
    let req = LogRequest {
        follow: true,
        timestamps: true,
        tail: if after.is_some() { None } else { tail },
        after,
    };
    let mut body = match open(&docker, &socket, &id, &req).await {
        Ok(b) => b,
        Err(reason) => {
            let _ = tx.send(Msg::LogEnded { host, id, reason }).await;
            return;
        }
    };
    let mut decoder = LogDecoder::resuming(body.tty, after);
    let mut batch: Vec<LogLine> = Vec::new();
    let mut flush = tokio::time::interval(Duration::from_millis(50));
    let send = |lines: Vec<LogLine>, at: Option<jiff::Timestamp>| {
        let (tx, id, resume) = (tx.clone(), id.clone(), resume.clone());
        async move {
            let sent = tx.send(Msg::LogLines { host, id, lines }).await.is_ok();
            // Only what reached the console counts as seen.
            if sent && let Ok(mut r) = resume.lock() {
                *r = at;
            }
            sent
        }
    };
    let reason = loop {
        tokio::select! {
            item = body.next() => match item {
                Some(Ok(bytes)) => {
                    if let Err(e) = decoder.push(&bytes, &mut batch) {
                        break e;
                    }
                    if batch.len() >= 1000 && !send(std::mem::take(&mut batch), decoder.last_stamp()).await {
                        return;
                    }
                }
                Some(Err(e)) => break e,
                None => break "the container stopped".to_string(),
            },
            _ = flush.tick() => {
                if !batch.is_empty() && !send(std::mem::take(&mut batch), decoder.last_stamp()).await {
                    return;
                }
            }
        }
    };
    decoder.finish(&mut batch);
    send(batch, decoder.last_stamp()).await;
    let _ = tx.send(Msg::LogEnded { host, id, reason }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn splits_lines_across_chunks_and_reads_timestamps() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(
            Stream::Stdout,
            b"2026-11-23T10:00:01.123456789Z hel",
            &mut out,
        );
        assert!(out.is_empty());
        s.push(
            Stream::Stdout,
            b"lo\n2026-11-23T10:00:02.000000000Z second\n",
            &mut out,
        );
        s.push(Stream::Stderr, b"2026-11-23T10:00:03Z oops\r\n", &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].time, "10:00:01");
        assert_eq!(out[0].text, "hello");
        assert_eq!(out[1].text, "second");
        assert_eq!(out[2].stream, Stream::Stderr);
        assert_eq!(out[2].text, "oops");
        assert_eq!(parse_line(Stream::Stdout, "no stamp").time, "");
    }

    #[test]
    fn a_timestamp_lookalike_with_wide_characters_is_text() {
        // Byte 10 is 'T' and the word is 19+ bytes, but bytes 11..19 cut a character.
        let l = parse_line(Stream::Stdout, "0123456789Té日本語x rest");
        assert_eq!(l.time, "");
        assert_eq!(l.text, "0123456789Té日本語x rest");
    }

    #[test]
    fn utf8_split_across_chunks_survives() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let bytes = "naïve ✓\n".as_bytes();
        for b in bytes.chunks(1) {
            s.push(Stream::Stdout, b, &mut out);
        }
        assert_eq!(out[0].text, "naïve ✓");
    }

    #[test]
    fn carriage_returns_keep_what_the_terminal_shows_and_stay_bounded() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for i in 0..100_000 {
            s.push(Stream::Stdout, format!("{i}%\r").as_bytes(), &mut out);
            assert!(s.partial[0].len() <= MAX_LINE_BYTES + 1);
        }
        s.push(Stream::Stdout, b"done\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "done");
    }

    #[test]
    fn a_tty_progress_bar_in_one_chunk_then_crlf() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        for i in 0..10_000 {
            chunk.extend_from_slice(format!("{i}% .....\r").as_bytes());
        }
        s.push(Stream::Stdout, &chunk, &mut out);
        assert!(s.partial[0].len() < 100, "{}", s.partial[0].len());
        s.push(Stream::Stdout, b"\r\r", &mut out);
        s.push(Stream::Stdout, b"done\r\n", &mut out);
        s.push(Stream::Stdout, b"a\r\nb\r", &mut out);
        s.push(Stream::Stdout, b"\n", &mut out);
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["done", "a", "b"]);
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_bound_and_the_rest_dropped() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let chunk = vec![b'a'; 4096];
        for _ in 0..1000 {
            s.push(Stream::Stdout, &chunk, &mut out);
            assert!(s.partial[0].len() <= MAX_LINE_BYTES + 1);
        }
        s.push(Stream::Stdout, b"aaa\nnext\n", &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].text.ends_with(CUT_MARK));
        assert!(out[0].text.len() <= MAX_LINE_BYTES + CUT_MARK.len());
        assert_eq!(out[1].text, "next");
    }

    /// Found by the fuzzer: a line that passed the bound before a carriage return with
    /// text after it was cut when read in small chunks, and overwritten (not cut) when the
    /// carriage return came in the same chunk. The bytes are read in order now.
    #[test]
    fn a_line_past_the_bound_then_a_carriage_return_reads_the_same_however_cut() {
        let mut stream = vec![b'x'; MAX_LINE_BYTES + 500];
        stream.extend_from_slice(b"\rprogress\nnext\r\n");
        let lines = |size: usize| {
            let mut s = LineSplitter::default();
            let mut out = Vec::new();
            for chunk in stream.chunks(size) {
                s.push(Stream::Stdout, chunk, &mut out);
            }
            s.finish(&mut out);
            out.into_iter().map(|l| l.text).collect::<Vec<_>>()
        };
        let whole = lines(stream.len());
        assert_eq!(whole.len(), 2, "{whole:?}");
        assert!(whole[0].ends_with(CUT_MARK), "{:?}", &whole[0][..20]);
        assert_eq!(whole[1], "next");
        for size in [1, 7, 101, 4096, MAX_LINE_BYTES, MAX_LINE_BYTES + 1] {
            assert_eq!(lines(size), whole, "chunks of {size}");
        }
    }

    #[test]
    fn a_resumed_splitter_drops_the_overlap_and_keeps_the_rest() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let mut s = LineSplitter::skip_until(Some(at("2026-12-02T10:00:02.5Z")));
        let mut out = Vec::new();
        s.push(
            Stream::Stdout,
            b"2026-12-02T10:00:02.000000000Z old\n2026-12-02T10:00:02.500000000Z seen\n\
              2026-12-02T10:00:02.500000001Z new\n2026-12-02T10:00:03.000000000Z newer\n",
            &mut out,
        );
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["new", "newer"]);
        assert_eq!(s.last_stamp(), Some(at("2026-12-02T10:00:03Z")));
    }

    #[test]
    fn escape_sequences_but_colours_are_removed() {
        let l = parse_line(
            Stream::Stdout,
            "\u{1b}]52;c;aGk=\u{7}\u{1b}[31mred\u{1b}[0m\u{1b}[2J\u{9b}1;1H",
        );
        assert_eq!(l.text, "\u{1b}[31mred\u{1b}[0m");
    }

    #[test]
    fn frames_are_read_however_the_stream_is_cut() {
        let mut bytes = frame(1, b"2026-11-23T10:00:01Z out one\n");
        bytes.extend(frame(2, b"2026-11-23T10:00:02Z err "));
        bytes.extend(frame(2, b"one\n"));
        bytes.extend(frame(1, b"tail"));
        for size in [1, 3, 7, 8, 9, 1000] {
            let mut d = LogDecoder::new(false);
            let mut out = Vec::new();
            for c in bytes.chunks(size) {
                d.push(c, &mut out).unwrap();
            }
            d.finish(&mut out);
            let texts: Vec<_> = out.iter().map(|l| (l.stream, l.text.as_str())).collect();
            assert_eq!(
                texts,
                [
                    (Stream::Stdout, "out one"),
                    (Stream::Stderr, "err one"),
                    (Stream::Stdout, "tail")
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn a_huge_frame_is_streamed_not_buffered_and_a_bad_header_is_an_error() {
        let mut d = LogDecoder::new(false);
        let mut out = Vec::new();
        let mut header = vec![1, 0, 0, 0];
        header.extend_from_slice(&u32::MAX.to_be_bytes());
        d.push(&header, &mut out).unwrap();
        for _ in 0..100 {
            d.push(&[b'x'; 65536], &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert!(d.splitter.partial[0].is_empty());
        let mut d = LogDecoder::new(false);
        assert!(d.push(b"\x05\0\0\0\0\0\0\x01x", &mut out).is_err());
        // A TTY stream is raw: the same bytes are text.
        let mut d = LogDecoder::new(true);
        let mut out = Vec::new();
        d.push(b"\x01raw\n", &mut out).unwrap();
        assert_eq!(out[0].text, "raw");
    }
}
