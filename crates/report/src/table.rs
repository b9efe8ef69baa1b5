//! Text for Markdown tables and headings, escaped so that a name is never read
//! as markup.

/// `s` as literal text in Markdown (a table cell, a heading): every ASCII
/// character that CommonMark or GitHub's extensions read as markup (`<` of
/// raw HTML, `[` and `(` of links, emphasis, code, `|` of tables, `&` of
/// entities) escaped with a backslash, line breaks as spaces. A name such
/// as `<script>` or `[x](javascript:…)` then shows as it is, inert.
pub fn markdown_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.' | '!' | '|' | '<'
            | '>' | '&' | '~' | '"' | '\'' | ':' | '=' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

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

    #[test]
    fn markdown_text_is_inert() {
        assert_eq!(markdown_text("<script>alert(1)</script>"), "\\<script\\>alert\\(1\\)\\</script\\>");
        assert_eq!(markdown_text("[x](javascript:y)"), "\\[x\\]\\(javascript\\:y\\)");
        assert_eq!(markdown_text("a|b\nc"), "a\\|b c");
        assert_eq!(markdown_text("<img src=x onerror=alert(1)>"), "\\<img src\\=x onerror\\=alert\\(1\\)\\>");
        assert_eq!(markdown_text("plain words 42"), "plain words 42");
        // No unescaped markup character is left.
        let hostile = "`*_{}[]()#+-.!|<>&~\"':=$\\";
        let e = markdown_text(hostile);
        assert!(e.chars().collect::<Vec<_>>().chunks(2).all(|p| p[0] == '\\'), "{e}");
    }
}
