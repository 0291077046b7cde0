//! India's DLT ids: TRAI's Distributed Ledger Technology platform gives a
//! business a principal entity id and each registered message template a
//! content template id, and Indian networks drop an SMS that doesn't carry
//! both. Each vendor whose API takes them sends them as it names them.

/// A route's DLT ids, checked: digits only, as the DLT platform issues
/// them, so nothing else can reach a vendor's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dlt {
    entity_id: String,
    template_id: String,
    category: Option<DltCategory>,
}

/// What the template was registered as (Plivo's `dlt_template_category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DltCategory {
    Transactional,
    Promotional,
    ServiceImplicit,
    ServiceExplicit,
}

/// Which id is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DltError {
    #[error("must be the {0} the DLT platform gave: 1 to 20 digits")]
    Id(&'static str, DltField),
    #[error("must be transactional, promotional, service_implicit or service_explicit")]
    Category,
}

/// The field of `sms.routes[].dlt` a [`DltError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DltField {
    EntityId,
    TemplateId,
    TemplateCategory,
}

impl DltField {
    pub fn name(self) -> &'static str {
        match self {
            Self::EntityId => "entity_id",
            Self::TemplateId => "template_id",
            Self::TemplateCategory => "template_category",
        }
    }
}

impl DltError {
    pub fn field(&self) -> DltField {
        match self {
            Self::Id(_, field) => *field,
            Self::Category => DltField::TemplateCategory,
        }
    }
}

/// The longest id taken. DLT ids are 19 digits; Vonage's Verify API checks
/// its `entity_id` and `content_id` as 1 to 20 digits.
const MAX_DIGITS: usize = 20;

fn digits(raw: &str, what: &'static str, field: DltField) -> Result<String, DltError> {
    if (1..=MAX_DIGITS).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err(DltError::Id(what, field))
    }
}

impl Dlt {
    /// Both ids are required (networks check both); an empty category
    /// sends none.
    ///
    /// # Errors
    /// A [`DltError`] naming the first field that is not what DLT issues.
    pub fn new(entity_id: &str, template_id: &str, category: &str) -> Result<Self, DltError> {
        let entity_id = digits(entity_id, "principal entity id", DltField::EntityId)?;
        let template_id = digits(template_id, "content template id", DltField::TemplateId)?;
        let category = match category {
            "" => None,
            "transactional" => Some(DltCategory::Transactional),
            "promotional" => Some(DltCategory::Promotional),
            "service_implicit" => Some(DltCategory::ServiceImplicit),
            "service_explicit" => Some(DltCategory::ServiceExplicit),
            _ => return Err(DltError::Category),
        };
        Ok(Self {
            entity_id,
            template_id,
            category,
        })
    }

    /// The principal entity (PE) id.
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// The content template id.
    pub fn template_id(&self) -> &str {
        &self.template_id
    }

    pub fn category(&self) -> Option<DltCategory> {
        self.category
    }
}

impl DltCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transactional => "transactional",
            Self::Promotional => "promotional",
            Self::ServiceImplicit => "service_implicit",
            Self::ServiceExplicit => "service_explicit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digit_strings_of_sane_length() {
        let dlt = Dlt::new("1101456789012345678", "1107161234567890123", "service_implicit").unwrap();
        assert_eq!(dlt.entity_id(), "1101456789012345678");
        assert_eq!(dlt.template_id(), "1107161234567890123");
        assert_eq!(dlt.category(), Some(DltCategory::ServiceImplicit));
        assert_eq!(Dlt::new("1", "2", "").unwrap().category(), None);

        let field = |e: &str, t: &str, c: &str| Dlt::new(e, t, c).unwrap_err().field();
        for hostile in [
            "",
            "12a4",
            "１２３",
            "123 456",
            "1\r\nX-Injected: 1",
            "-1",
            &"9".repeat(21),
        ] {
            assert_eq!(field(hostile, "1", ""), DltField::EntityId, "{hostile:?}");
            assert_eq!(field("1", hostile, ""), DltField::TemplateId, "{hostile:?}");
        }
        assert_eq!(field("1", "2", "otp"), DltField::TemplateCategory);
        assert_eq!(field("1", "2", "Transactional"), DltField::TemplateCategory);
    }
}
