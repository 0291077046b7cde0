//! The generic vendor's templates: text with `{to}`, `{to_digits}`,
//! `{text}`, `{id}`, `{from}`, `{dlt_entity_id}` and `{dlt_template_id}`,
//! split once at start so a value (the message text) can never be read as a
//! placeholder.

use serde_json::Value;

/// What a placeholder stands for in one send.
pub struct Values<'a> {
    pub to: &'a str,
    pub text: &'a str,
    pub id: &'a str,
    pub from: &'a str,
    /// India's DLT ids, from the route; empty where it has none (start-up
    /// refuses templates that name them there).
    pub dlt_entity_id: &'a str,
    pub dlt_template_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    To,
    ToDigits,
    Message,
    Id,
    From,
    DltEntityId,
    DltTemplateId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

pub const PLACEHOLDERS: &str = "{to}, {to_digits}, {text}, {id}, {from}, {dlt_entity_id}, {dlt_template_id}";

impl Template {
    /// # Errors
    /// The reason, for an unknown placeholder or a `{` left open.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| "has a { without a closing }".to_owned())?
                + open;
            parts.push(match &rest[open + 1..close] {
                "to" => Part::To,
                "to_digits" => Part::ToDigits,
                "text" => Part::Message,
                "id" => Part::Id,
                "from" => Part::From,
                "dlt_entity_id" => Part::DltEntityId,
                "dlt_template_id" => Part::DltTemplateId,
                other => {
                    return Err(format!(
                        "has an unknown placeholder {{{other}}}; known: {PLACEHOLDERS}"
                    ))
                }
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    pub fn render(&self, values: &Values, encode: fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(s) => out.push_str(s),
                Part::To => out.push_str(&encode(values.to)),
                Part::ToDigits => out.push_str(&encode(values.to.trim_start_matches('+'))),
                Part::Message => out.push_str(&encode(values.text)),
                Part::Id => out.push_str(&encode(values.id)),
                Part::From => out.push_str(&encode(values.from)),
                Part::DltEntityId => out.push_str(&encode(values.dlt_entity_id)),
                Part::DltTemplateId => out.push_str(&encode(values.dlt_template_id)),
            }
        }
        out
    }

    /// Whether it names the number (`to`), the DLT ids (`dlt`) or the text.
    pub fn names(&self, what: &str) -> bool {
        self.0.iter().any(|p| match what {
            "to" => matches!(p, Part::To | Part::ToDigits),
            "dlt" => matches!(p, Part::DltEntityId | Part::DltTemplateId),
            _ => matches!(p, Part::Message),
        })
    }
}

/// A JSON body: the configured document with every string in it a template.
#[derive(Debug, Clone)]
pub enum JsonTemplate {
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
    Other(Value),
}

impl JsonTemplate {
    /// # Errors
    /// The reason, naming the first string with a bad placeholder.
    pub fn parse(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => Self::Text(Template::parse(s).map_err(|e| format!("`{s}` {e}"))?),
            Value::Array(items) => Self::Array(items.iter().map(Self::parse).collect::<Result<_, _>>()?),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => Self::Other(other.clone()),
        })
    }

    pub fn render(&self, values: &Values) -> Value {
        match self {
            Self::Text(t) => Value::String(t.render(values, str::to_owned)),
            Self::Array(items) => Value::Array(items.iter().map(|i| i.render(values)).collect()),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.render(values)))
                    .collect(),
            ),
            Self::Other(v) => v.clone(),
        }
    }

    pub fn names(&self, what: &str) -> bool {
        match self {
            Self::Text(t) => t.names(what),
            Self::Array(items) => items.iter().any(|i| i.names(what)),
            Self::Object(fields) => fields.iter().any(|(_, v)| v.names(what)),
            Self::Other(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Values = Values {
        to: "+14155552671",
        text: "Code {id} & \"1\"",
        id: "local-1",
        from: "Acme",
        dlt_entity_id: "1101456789012345678",
        dlt_template_id: "1107161234567890123",
    };

    #[test]
    fn values_are_never_placeholders_and_json_escapes_them() {
        let t = Template::parse("{from}:{to_digits}:{text}").unwrap();
        assert_eq!(
            t.render(&VALUES, str::to_owned),
            "Acme:14155552671:Code {id} & \"1\""
        );
        let json = JsonTemplate::parse(&serde_json::json!({"m": [{"t": "{text}", "n": 1}]})).unwrap();
        assert_eq!(
            json.render(&VALUES).to_string(),
            r#"{"m":[{"n":1,"t":"Code {id} & \"1\""}]}"#
        );
        assert!(Template::parse("{phone}")
            .unwrap_err()
            .contains("unknown placeholder {phone}"));
        assert!(Template::parse("{to").is_err());
        let dlt = Template::parse("pe={dlt_entity_id}&t={dlt_template_id}").unwrap();
        assert!(dlt.names("dlt") && !dlt.names("to"));
        assert_eq!(
            dlt.render(&VALUES, str::to_owned),
            "pe=1101456789012345678&t=1107161234567890123"
        );
    }
}
