//! CSV as a référent's spreadsheet writes it (RFC 4180 quoting; `;` as
//! French Excel separates, or `,`; UTF-8 with or without its byte-order
//! mark, or Windows-1252, Excel's default), and as it reads it back.

/// The text of an uploaded file: UTF-8 if it is, else Windows-1252.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| windows_1252(b)).collect(),
    }
}

/// Windows-1252: Latin-1 but for 0x80–0x9F (€, œ, Œ, quotes, dashes …).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[(b - 0x80) as usize],
        b => b as char,
    }
}

/// The rows of a CSV text, each with the line it starts on; the separator
/// is the header's (`;` if it has one, else `,`). A quote left open is an
/// error at the line it opened.
pub fn rows(text: &str) -> Result<Vec<(usize, Vec<String>)>, usize> {
    let first = text.lines().next().unwrap_or("");
    let sep = if first.contains(';') { ';' } else { ',' };
    let mut out = Vec::new();
    let (mut row, mut cell) = (Vec::new(), String::new());
    let (mut line, mut row_line, mut quoted, mut opened) = (1usize, 1usize, false, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if cell.is_empty() => {
                quoted = true;
                opened = line;
            }
            '\n' if quoted => {
                cell.push('\n');
                line += 1;
            }
            '\r' if !quoted => {}
            '\n' => {
                row.push(std::mem::take(&mut cell));
                if row.iter().any(|c| !c.trim().is_empty()) {
                    out.push((row_line, std::mem::take(&mut row)));
                }
                row.clear();
                line += 1;
                row_line = line;
            }
            c if c == sep && !quoted => row.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    if quoted {
        return Err(opened);
    }
    row.push(cell);
    if row.iter().any(|c| !c.trim().is_empty()) {
        out.push((row_line, row));
    }
    Ok(out)
}

/// A cell read back: the apostrophe [`cell`] puts before what a
/// spreadsheet would compute is not part of the value.
pub fn unguarded(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => value,
    }
}

/// One cell for a spreadsheet: quoted when it must be, and a value a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`) kept as text.
pub fn cell(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    if value.contains([';', '"', '\n', '\r', ',']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quoted_cells_keep_separators_quotes_and_line_breaks() {
        let text = "nom;prenom\r\n\"Le Goff; fils\";\"dit \"\"Jo\"\"\"\n\n\"Martin\nRoux\";Anne\n";
        let r = rows(text).unwrap();
        assert_eq!(r[0], (1, vec!["nom".to_string(), "prenom".to_string()]));
        assert_eq!(r[1], (2, vec!["Le Goff; fils".to_string(), "dit \"Jo\"".to_string()]));
        assert_eq!(r[2], (4, vec!["Martin\nRoux".to_string(), "Anne".to_string()]));
    }

    #[test]
    fn commas_separate_when_the_header_has_no_semicolon() {
        assert_eq!(rows("a,b\n1,2").unwrap()[1].1, vec!["1", "2"]);
    }

    #[test]
    fn a_quote_left_open_is_reported_at_its_line() {
        assert_eq!(rows("a;b\n1;2\n\"3;4\n5;6"), Err(3));
    }

    #[test]
    fn excel_files_in_windows_1252_are_read_as_such() {
        assert_eq!(decode(b"L\xe9a;C\x9cur"), "Léa;Cœur");
        assert_eq!(decode("\u{feff}Léa".as_bytes()), "Léa");
    }

    #[test]
    fn a_cell_that_a_spreadsheet_would_compute_stays_text() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("Dupré"), "Dupré");
        assert_eq!(unguarded("'+33 1 23 45 67 89"), "+33 1 23 45 67 89");
        assert_eq!(unguarded("l'école"), "l'école");
    }
}
