//! The streamed body of the CSV export (`api/devices.csv`): the matching devices are listed
//! on a blocking thread (16 bytes a device, [`matching`]) and their rows built and written a
//! thousand at a time ([`export::csv_pieces`]); each piece goes to the client through a
//! channel of [`PIECES`] pieces. The export never holds its whole text nor all its rows, and
//! stops when the client goes away.

use super::export;
use super::fleet::{matching, rows_of};
use super::order::Sort;
use super::query::Query;
use crate::app::SharedApp;
use crate::config::Config;
use bytes::Bytes;
use hyper::body::Frame;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Devices whose rows are built and written at a time.
pub const ROWS: usize = 1000;
/// Pieces written ahead of the client.
pub const PIECES: usize = 2;

/// The CSV of the devices `query` lets through in the order of `sort`, as a body written
/// while it is sent.
/// With `bom`, the text starts with a UTF-8 byte order mark (for spreadsheets that read
/// CSV as their local code page otherwise).
pub fn body(
    app: SharedApp,
    cfg: Arc<Config>,
    (query, sort): (Query, Sort),
    bom: bool,
) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES);
    tokio::task::spawn_blocking(move || {
        if bom
            && tx
                .blocking_send(Ok(Bytes::from_static(b"\xEF\xBB\xBF")))
                .is_err()
        {
            return;
        }
        let m = matching(&app, &cfg, &query, sort);
        let groups = super::view::show_groups(&cfg);
        let extra = export::Extra {
            groups: &groups,
            rollouts: &cfg.rollouts,
        };
        let chunks = m
            .devices
            .chunks(ROWS)
            .map(|c| rows_of(&app, &cfg, c, false));
        let now = crate::clock::now();
        let written = export::csv_pieces(chunks, extra, cfg.status.missing, now, |piece| {
            tx.blocking_send(Ok(Bytes::from(piece))).is_ok()
        });
        if let Err(e) = written {
            tracing::error!("CSV export failed: {e}");
            // the status line is sent: the client sees the body break off
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    axum::body::Body::new(Pieces(rx))
}

/// A body of the pieces a channel brings, until it is closed.
struct Pieces(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|piece| piece.map(|p| p.map(Frame::data)))
    }
}
