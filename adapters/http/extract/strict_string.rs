//! A JSON string and nothing else. poem-openapi's `String` also takes numbers
//! and booleans, which would let `"code": 123456` through and silently drop
//! the leading zeros of a code like 012345.
//!
//! Each field says in the schema what the service accepts (a phone's length,
//! a code's digits), so generated clients can check input before sending;
//! the domain's parsers enforce it, with their own problem codes.

use std::borrow::Cow;
use std::marker::PhantomData;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

/// What a field's schema says of its string.
pub trait Shape: Send + Sync + 'static {
    const NAME: &'static str;
    fn describe(schema: &mut MetaSchema);
}

/// A string field shaped by `S`.
pub struct StrictString<S>(pub String, PhantomData<S>);

/// A phone as written: at most 32 characters (`domain::Phone`'s limit).
pub struct PhoneShape;

impl Shape for PhoneShape {
    const NAME: &'static str = "string(phone)";
    fn describe(schema: &mut MetaSchema) {
        schema.min_length = Some(1);
        schema.max_length = Some(32);
    }
}

/// A code: six ASCII digits (`domain::Code`).
pub struct CodeShape;

impl Shape for CodeShape {
    const NAME: &'static str = "string(code)";
    fn describe(schema: &mut MetaSchema) {
        schema.pattern = Some("^[0-9]{6}$".into());
    }
}

/// A verification's id: `VE` and 32 hex digits (`domain::VerificationId`).
pub struct VerificationIdShape;

impl Shape for VerificationIdShape {
    const NAME: &'static str = "string(verification_id)";
    fn describe(schema: &mut MetaSchema) {
        schema.pattern = Some("^VE[0-9a-fA-F]{32}$".into());
    }
}

pub type PhoneText = StrictString<PhoneShape>;
pub type VerificationIdText = StrictString<VerificationIdShape>;
pub type CodeText = StrictString<CodeShape>;

impl<S> std::fmt::Debug for StrictString<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A code must never reach a log through `Debug`.
        f.write_str("StrictString(..)")
    }
}

impl<S: Shape> Type for StrictString<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        S::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        S::describe(&mut schema);
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<S: Shape> ParseFromJSON for StrictString<S> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Ok(Self(s, PhantomData)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<S: Shape> ToJSON for StrictString<S> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}
