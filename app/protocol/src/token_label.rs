//! Token strings as people read them, the same in the page, its exports and the command line:
//! a leading space as `_`, newlines and tabs escaped, long tokens cut with `...`. Always plain text.

pub fn display(text: &str) -> String {
    let mut s = text.replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r");
    if s.starts_with(' ') {
        s.replace_range(0..1, "_");
    }
    if s.is_empty() {
        s.push('∅');
    }
    s
}

/// `display` cut to at most `max_chars` characters, ending in `...` when cut.
pub fn fit(text: &str, max_chars: usize) -> String {
    let s = display(text);
    if s.chars().count() <= max_chars {
        return s;
    }
    if max_chars <= 3 {
        return s.chars().take(max_chars).collect();
    }
    s.chars().take(max_chars - 3).collect::<String>() + "..."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_spaces_newlines_and_cuts() {
        assert_eq!(display(" Canberra"), "_Canberra");
        assert_eq!(display("\n\n"), "\\n\\n");
        assert_eq!(display(""), "∅");
        assert_eq!(fit(" internationalization", 8), "_inte...");
        assert_eq!(fit("abc", 8), "abc");
    }
}
