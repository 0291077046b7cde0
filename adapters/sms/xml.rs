//! Text inside the XML that voice vendors read (Twilio's TwiML, Plivo's
//! XML): escaped, so words never become markup.
//! (`'` needs none: attributes here are in double quotes.)

/// `text` with `&`, `<`, `>` and `"` escaped.
pub fn xml_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(xml_escaped("a<b>&\"c"), "a&lt;b&gt;&amp;&quot;c");
    }
}
