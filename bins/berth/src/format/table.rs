//! Go's text/tabwriter as the docker CLI configures it (minwidth 10, padding 3, spaces):
//! tab-terminated cells align in column blocks; the last cell of a line is not padded.

pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    lines: Vec<Vec<String>>,
    text: String,
}

impl Default for TabWriter {
    fn default() -> Self {
        TabWriter::new(10, 3)
    }
}

impl TabWriter {
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter { minwidth, padding, lines: Vec::new(), text: String::new() }
    }

    /// Adds text; lines split on '\n', cells on '\t' (at `finish`).
    pub fn write(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub fn finish(mut self) -> String {
        let text = std::mem::take(&mut self.text);
        let trailing = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(&text);
        if body.is_empty() && !trailing {
            return String::new();
        }
        self.lines = body.split('\n').map(|l| l.split('\t').map(str::to_owned).collect()).collect();
        let mut out = String::new();
        self.format(&mut out, &mut Vec::new(), 0, self.lines.len());
        if trailing {
            out.push('\n');
        }
        out
    }

    fn format(&self, out: &mut String, widths: &mut Vec<usize>, mut line0: usize, line1: usize) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(out, widths, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(self.lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(out, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(out, widths, line0, line1);
    }

    fn write_lines(&self, out: &mut String, widths: &[usize], line0: usize, line1: usize) {
        for (i, line) in self.lines[line0..line1].iter().enumerate() {
            for (j, c) in line.iter().enumerate() {
                out.push_str(c);
                if j < widths.len() && j + 1 < line.len() {
                    out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(c.chars().count())));
                }
            }
            if line0 + i + 1 < self.lines.len() {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go_tabwriter() {
        let mut w = TabWriter::default();
        w.write("CONTAINER ID\tIMAGE\tNAMES\n");
        w.write("abc\tbusybox\tweb\n");
        assert_eq!(w.finish(), "CONTAINER ID   IMAGE     NAMES\nabc            busybox   web\n");
        let mut w = TabWriter::default();
        w.write("a\tb\nno tabs here\nc\td\n");
        assert_eq!(w.finish(), "a         b\nno tabs here\nc         d\n");
    }
}
