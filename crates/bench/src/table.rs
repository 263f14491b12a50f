//! The result table: one [`Row`] per measured number, printed as aligned plain text so the
//! output of `make bench` can be pasted into `docs/benchmarks.md` as it is.

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub what: String,
    pub value: String,
    pub unit: String,
    /// How the value compares with a ceiling measured earlier; empty when nothing applies.
    pub vs: String,
}

impl Row {
    /// A measured number, formatted for reading (thousands separators, few decimals).
    pub fn num(section: &'static str, what: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            section,
            what: what.into(),
            value: fmt_num(value),
            unit: unit.to_owned(),
            vs: String::new(),
        }
    }

    /// A row whose measurement did not run, with the reason in the comparison column.
    pub fn skipped(section: &'static str, what: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            section,
            what: what.into(),
            value: "skipped".into(),
            unit: String::new(),
            vs: why.into(),
        }
    }

    /// A row whose measurement failed; the error goes in the comparison column.
    pub fn failed(
        section: &'static str,
        what: impl Into<String>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            value: "failed".into(),
            ..Self::skipped(section, what, error)
        }
    }

    /// Sets the "vs ceiling" column.
    pub fn vs(mut self, text: impl Into<String>) -> Self {
        self.vs = text.into();
        self
    }
}

/// `12,345` for large values, `12.3` / `1.23` / `0.123` below 100, so every row keeps about
/// three significant digits without scientific notation.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::with_capacity(s.len() + s.len() / 3);
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `part` as a percentage of `whole`, with a precision that suits small shares.
pub fn pct(part: f64, whole: f64) -> String {
    let p = 100.0 * part / whole;
    if p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// Renders the rows under a header, columns padded to their widest cell, numbers right-aligned.
pub fn render(rows: &[Row]) -> String {
    let header = ["section", "what", "value", "unit", "vs ceiling"];
    let cells = |r: &Row| -> [String; 5] {
        [
            r.section.to_owned(),
            r.what.clone(),
            r.value.clone(),
            r.unit.clone(),
            r.vs.clone(),
        ]
    };
    let mut width = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in width.iter_mut().zip(cells(r)) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |c: [String; 5]| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in c.iter().zip(width).enumerate() {
            let pad = w - cell.chars().count();
            if i == 2 {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i < 4 {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if i < 4 {
                s.push_str("  ");
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(header.map(str::to_owned));
    out.push('\n');
    out.push_str(&line(width.map(|w| "-".repeat(w))));
    out.push('\n');
    let mut last_section = "";
    for r in rows {
        // Blank section cells after the first row of a section keep the table easy to scan.
        let mut c = cells(r);
        if r.section == last_section {
            c[0] = String::new();
        }
        last_section = r.section;
        out.push_str(&line(c));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(0.1234), "0.123");
        assert_eq!(pct(1.0, 3.0), "33%");
        assert_eq!(pct(1.0, 300.0), "0.33%");
    }

    #[test]
    fn columns_align() {
        let rows = vec![
            Row::num("a", "x", 1000.0, "op/s"),
            Row::num("a", "longer", 2.0, "ms").vs("50%"),
            Row::skipped("bb", "y", "why"),
        ];
        let t = render(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        let value_end = lines[0].find("value").unwrap() + "value".len();
        for l in &lines[2..] {
            let before: String = l.chars().take(value_end).collect();
            assert!(!before.ends_with(' '), "value column right-aligned: {l:?}");
        }
        assert!(lines[3].starts_with("  "), "repeated section is blank");
    }
}
