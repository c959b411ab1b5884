//! One line of an OpenVPN configuration as openvpn (and nm-openvpn's import) splits it into
//! words: `#` or `;` starts a comment at the start of a word; "double quotes" (with `\`
//! escapes) and 'single quotes' group a word; outside quotes `\` escapes the next character.

/// The words of `line` (none for a blank or comment line), or what is wrong with it.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '#' || first == ';' {
            break;
        }
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == first {
                    closed = true;
                    break;
                }
                if c == '\\' && first == '"' {
                    match chars.next() {
                        Some(n) => word.push(n),
                        None => break,
                    }
                } else {
                    word.push(c);
                }
            }
            if !closed {
                let what = if first == '"' {
                    "double quote"
                } else {
                    "single quote"
                };
                return Err(format!("unterminated {what}"));
            }
        } else {
            // Inside an unquoted word quotes are plain characters (openvpn's rule).
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    match chars.next() {
                        Some(n) => word.push(n),
                        None => return Err("trailing escaping backslash".into()),
                    }
                } else {
                    word.push(c);
                }
            }
        }
        out.push(word);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn openvpns_quoting_rules() {
        assert_eq!(words("  # x").unwrap(), Vec::<String>::new());
        assert_eq!(words("remote a 1194 ; c").unwrap(), ["remote", "a", "1194"]);
        assert_eq!(
            words(r#"ca "/my certs/ca.crt""#).unwrap(),
            ["ca", "/my certs/ca.crt"]
        );
        assert_eq!(
            words(r"ca /my\ certs/ca.crt").unwrap(),
            ["ca", "/my certs/ca.crt"]
        );
        assert_eq!(words("a 'b\\c'").unwrap(), ["a", "b\\c"]);
        assert_eq!(words("a b'c'").unwrap(), ["a", "b'c'"]);
        assert_eq!(words("dev tun\r").unwrap(), ["dev", "tun"]);
        assert_eq!(words("a \"b").unwrap_err(), "unterminated double quote");
        assert_eq!(words("a b\\").unwrap_err(), "trailing escaping backslash");
    }
}
