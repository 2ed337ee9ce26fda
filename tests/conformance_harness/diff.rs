//! Line diffs (LCS based; the answers are short) and the similarity figure.

/// One line of an edit script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<u32>> {
    // table[i][j] = LCS length of a[i..] and b[j..]
    let mut table = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    table
}

/// Length of the longest common subsequence of two line lists.
pub fn lcs_len(a: &[String], b: &[String]) -> usize {
    lcs_table(a, b)[0][0] as usize
}

/// The edit script turning `expected` into `actual`.
pub fn edits<'a>(expected: &'a [String], actual: &'a [String]) -> Vec<Edit<'a>> {
    let table = lcs_table(expected, actual);
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < expected.len() && j < actual.len() {
        if expected[i] == actual[j] {
            out.push(Edit::Same(&expected[i]));
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            out.push(Edit::Removed(&expected[i]));
            i += 1;
        } else {
            out.push(Edit::Added(&actual[j]));
            j += 1;
        }
    }
    out.extend(expected[i..].iter().map(|l| Edit::Removed(l)));
    out.extend(actual[j..].iter().map(|l| Edit::Added(l)));
    out
}

/// A unified-style diff (`-` expected, `+` actual) with `context` unchanged
/// lines around each change; hunks are separated by `...`.
pub fn unified(expected: &[String], actual: &[String], context: usize) -> Vec<String> {
    let script = edits(expected, actual);
    let changed: Vec<bool> = script.iter().map(|e| !matches!(e, Edit::Same(_))).collect();
    let mut out = Vec::new();
    let mut last_shown: Option<usize> = None;
    for (k, edit) in script.iter().enumerate() {
        let lo = k.saturating_sub(context);
        let hi = (k + context + 1).min(script.len());
        if !changed[lo..hi].iter().any(|&c| c) {
            continue;
        }
        if let Some(last) = last_shown {
            if k > last + 1 {
                out.push("...".to_string());
            }
        } else if k > 0 {
            out.push("...".to_string());
        }
        last_shown = Some(k);
        out.push(match edit {
            Edit::Same(l) => format!("  {l}"),
            Edit::Removed(l) => format!("- {l}"),
            Edit::Added(l) => format!("+ {l}"),
        });
    }
    if let Some(last) = last_shown {
        if last + 1 < script.len() {
            out.push("...".to_string());
        }
    }
    out
}

/// Accumulates a similarity figure (Dice coefficient over lines:
/// 2·LCS / (|a| + |b|)) over several pairs of line lists.
#[derive(Debug, Default, Clone, Copy)]
pub struct Similarity {
    common: usize,
    total: usize,
}

impl Similarity {
    pub fn add(&mut self, expected: &[String], actual: &[String]) {
        self.common += 2 * lcs_len(expected, actual);
        self.total += expected.len() + actual.len();
    }

    /// In percent; 100 when there was nothing to compare.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * self.common as f64 / self.total as f64
        }
    }
}
