//! The CSV export of the device list (`api/devices.csv`, pure): one line per device with the
//! fields of the JSON list that fit in a cell, written with the `csv` crate (quoting, line
//! ends). Cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
//! tab or carriage return) get a leading `'`: device names come from the devices.
//!
//! Times are ISO 8601 in UTC (`2026-12-06T05:15:00Z`); after the fixed columns come one
//! column per `show` expression of the configured queries (`QUERY TITLE: COLUMN TITLE`; an
//! expression's error as `error: …`) and one per staged rollout (`rollout ID wave`: the
//! device's wave, 1-based, empty when it is not in the rollout's scope).

use super::query::{Clock, DeviceFields};
use super::status::Row;
use super::view::{Cell, ShowGroup};
use crate::rollout::Rollout;

/// The columns after the fixed ones: the queries' `show` expressions and the rollouts.
#[derive(Clone, Copy, Default)]
pub struct Extra<'a> {
    pub groups: &'a [ShowGroup],
    pub rollouts: &'a [Rollout],
}

impl Extra<'_> {
    fn header(&self) -> Vec<String> {
        let mut h: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        for g in self.groups {
            for c in &g.columns {
                h.push(format!("{}: {}", g.title, c.title));
            }
        }
        for r in self.rollouts {
            h.push(format!("rollout {} wave", r.id));
        }
        h
    }
}

/// A time as ISO 8601 in UTC; empty for none.
pub fn iso(t: i64) -> String {
    if t == 0 {
        String::new()
    } else {
        crate::php::format_datetime(t).replace(' ', "T") + "Z"
    }
}

/// The header line.
pub const COLUMNS: [&str; 19] = [
    "sn",
    "type",
    "name",
    "realip",
    "ip",
    "phase",
    "classes",
    "environments",
    "seen",
    "missing",
    "firmware",
    "firmware_requested",
    "bootcode",
    "bootcode_requested",
    "backup",
    "certstat",
    "csr_waiting",
    "signed_waiting",
    "problem",
];

/// A text cell a spreadsheet shows as text.
fn cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The CSV of `rows` (`missing_after` and `now` decide `missing`).
#[cfg(test)]
pub fn csv(rows: &[Row], missing_after: i64, now: i64) -> Result<Vec<u8>, csv::Error> {
    let mut out = Vec::new();
    csv_pieces(
        std::iter::once(rows),
        Extra::default(),
        missing_after,
        now,
        |p| {
            out.extend_from_slice(&p);
            true
        },
    )?;
    Ok(out)
}

/// Writes the CSV of the rows given chunk by chunk to `emit`, one piece of text per chunk
/// (the header line with the first), so that a large fleet costs one chunk of rows and its
/// text at a time, never the whole table. Stops early when `emit` returns `false` (nobody
/// reads any more).
pub fn csv_pieces<C: AsRef<[Row]>>(
    chunks: impl IntoIterator<Item = C>,
    extra: Extra<'_>,
    missing_after: i64,
    now: i64,
    mut emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), csv::Error> {
    let clock = Clock { now, missing_after };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(extra.header())?;
    for chunk in chunks {
        for r in chunk.as_ref() {
            record(&mut w, r, clock, extra)?;
        }
        let piece = w
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        if !emit(piece) {
            return Ok(());
        }
        w = csv::Writer::from_writer(Vec::new());
    }
    let rest = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    if !rest.is_empty() {
        emit(rest);
    }
    Ok(())
}

fn record(
    w: &mut csv::Writer<Vec<u8>>,
    r: &Row,
    clock: Clock,
    extra: Extra<'_>,
) -> Result<(), csv::Error> {
    let f = r.fields();
    let v = &*r.view;
    let seen = iso(f.seen);
    let backup = f.backup.map(iso).unwrap_or_default();
    let flag = |b: bool| if b { "true" } else { "false" };
    let record = [
        cell(f.sn),
        cell(f.device_type),
        cell(f.name),
        cell(f.realip),
        cell(f.ip),
        cell(f.phase),
        cell(f.classes),
        cell(f.environments),
        seen.as_str().into(),
        flag(f.is_missing(clock)).into(),
        cell(f.firmware),
        cell(f.firmware_requested),
        cell(f.bootcode),
        cell(f.bootcode_requested),
        backup.as_str().into(),
        cell(f.certstat.unwrap_or_default()),
        flag(f.csr_waiting).into(),
        flag(f.signed_waiting).into(),
        cell(v.problem.as_deref().unwrap_or_default()),
    ];
    let mut more: Vec<String> = Vec::new();
    for (gi, g) in extra.groups.iter().enumerate() {
        let res = v.queries.get(gi).and_then(Option::as_ref);
        for ci in 0..g.columns.len() {
            more.push(match res.and_then(|q| q.cells.get(ci)) {
                Some(Cell::Value(s)) => cell(s).into_owned(),
                Some(Cell::Error(e)) => format!("error: {e}"),
                None => String::new(),
            });
        }
    }
    let split = |s: &str| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (classes, envs) = (split(f.classes), split(f.environments));
    for ro in extra.rollouts {
        let in_scope = !f.unreadable && ro.in_scope(&classes, &envs);
        more.push(
            match crate::rollout::wave_of(ro, f.sn).filter(|_| in_scope) {
                Some(w) => (w + 1).to_string(),
                None => String::new(),
            },
        );
    }
    w.write_record(
        record
            .iter()
            .map(|c| c.as_bytes())
            .chain(more.iter().map(|c| c.as_bytes())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::files::CertState;
    use crate::admin::view::DeviceView;
    use crate::state::Loaded;
    use crate::xml::Element;
    use std::sync::Arc;

    fn row(xml: &str) -> Row {
        let el = Element::parse(xml.as_bytes()).expect("xml");
        Row {
            view: Arc::new(DeviceView::from_state(
                "00-90",
                &Loaded::Ok(Arc::new(crate::state::DeviceState::from_root(el))),
                &[],
            )),
            certs: CertState::default(),
            backups: Arc::new(Vec::new()),
        }
    }

    #[test]
    fn quotes_cells_and_defuses_formulas() {
        let rows = [row(
            r#"<state seen="100"><device sn="00-90" type="IP232" realip="1.2.3.4" classes="phone, ip232"/><queries><admin seen="9"><info name="=HYPERLINK(&quot;x&quot;)"/></admin></queries></state>"#,
        )];
        let out = String::from_utf8(csv(&rows, 60, 1000).expect("csv")).expect("utf-8");
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(COLUMNS.join(",").as_str()));
        assert_eq!(
            lines.next(),
            Some(
                "00-90,IP232,\"'=HYPERLINK(\"\"x\"\")\",1.2.3.4,,,\"phone, ip232\",,1970-01-01T00:01:40Z,true,,,,,,,false,false,"
            )
        );
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn writes_one_piece_per_chunk() {
        let one = r#"<state seen="100"><device sn="00-90" type="IP232"/></state>"#;
        let chunks: Vec<Vec<Row>> = [2, 1, 1]
            .iter()
            .map(|&n| (0..n).map(|_| row(one)).collect())
            .collect();
        let mut pieces = Vec::new();
        csv_pieces(&chunks, Extra::default(), 60, 1000, |p| {
            pieces.push(String::from_utf8(p).expect("utf-8"));
            true
        })
        .expect("csv");
        let lines: Vec<usize> = pieces.iter().map(|p| p.lines().count()).collect();
        // the header with the first chunk, then each chunk's rows by themselves
        assert_eq!(lines, [3, 1, 1]);
        assert!(pieces[0].starts_with("sn,type,"));
        assert!(pieces[2].starts_with("00-90,IP232,"));
        // the table is the same as in one piece
        let all: Vec<Row> = (0..4).map(|_| row(one)).collect();
        let whole = String::from_utf8(csv(&all, 60, 1000).expect("csv")).expect("utf-8");
        assert_eq!(pieces.concat(), whole);
        // a reader that goes away stops the writing
        let mut n = 0;
        csv_pieces(&chunks, Extra::default(), 60, 1000, |_| {
            n += 1;
            false
        })
        .expect("csv");
        assert_eq!(n, 1);
    }

    #[test]
    fn an_empty_list_is_the_header_line() {
        let mut out = Vec::new();
        csv_pieces(
            std::iter::empty::<&[Row]>(),
            Extra::default(),
            60,
            1000,
            |p| {
                out.push(p);
                true
            },
        )
        .expect("csv");
        assert_eq!(out.len(), 1);
        let text = String::from_utf8(out.concat()).expect("utf-8");
        assert_eq!(text.lines().collect::<Vec<_>>(), [COLUMNS.join(",")]);
    }
}
