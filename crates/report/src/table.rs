/// A GitHub-flavoured Markdown table.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

/// RFC 4180 CSV: fields with commas, quotes or newlines are quoted.
pub fn csv_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let field = |f: &str| {
        if f.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.to_string()
        }
    };
    let mut out = header.iter().map(|h| field(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_and_quote() {
        let rows = vec![vec!["a,b".to_string(), "1".to_string()]];
        assert_eq!(csv_table(&["x", "y"], &rows), "x,y\n\"a,b\",1\n");
        assert_eq!(markdown_table(&["x", "y"], &rows), "| x | y |\n|---|---|\n| a,b | 1 |\n");
    }
}
