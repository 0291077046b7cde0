//! The little XML SNS answers with: a flat element's text, entities decoded.
//! Enough for `<MessageId>`, `<Code>` and `<Message>`, which hold plain text;
//! not an XML parser.

/// The text of the first `<name>...</name>`.
pub(super) fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_elements() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code>\
                   <Message>Invalid parameter: PhoneNumber &amp; more</Message></Error></ErrorResponse>";
        assert_eq!(element(xml, "Code").as_deref(), Some("InvalidParameter"));
        assert_eq!(
            element(xml, "Message").as_deref(),
            Some("Invalid parameter: PhoneNumber & more")
        );
        assert_eq!(element(xml, "MessageId"), None);
    }
}
