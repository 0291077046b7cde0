//! Per-destination vendor chains: a number goes by the longest E.164 prefix
//! a route claims, else by its country's route, else by the default chain.
//! Start-up checks the routes (no prefix or country claimed twice) and
//! builds each route's chain with its own senders.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Phone, SmsReceipt, SmsText};
use crate::ports::{SmsError, SmsSender};

pub struct Routes {
    /// Longest prefix first, so the first match is the most specific one.
    by_prefix: Vec<(String, Arc<dyn SmsSender>)>,
    by_country: HashMap<String, Arc<dyn SmsSender>>,
    default: Arc<dyn SmsSender>,
}

impl Routes {
    /// `prefixes` and `countries` each claimed once (start-up checks so).
    pub fn new(
        prefixes: Vec<(String, Arc<dyn SmsSender>)>,
        countries: HashMap<String, Arc<dyn SmsSender>>,
        default: Arc<dyn SmsSender>,
    ) -> Self {
        let mut by_prefix = prefixes;
        by_prefix.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self {
            by_prefix,
            by_country: countries,
            default,
        }
    }

    /// The chain that carries messages to `to`.
    pub fn chain(&self, to: &Phone) -> &Arc<dyn SmsSender> {
        self.by_prefix
            .iter()
            .find(|(prefix, _)| to.as_str().starts_with(prefix.as_str()))
            .map(|(_, chain)| chain)
            .or_else(|| to.region().and_then(|r| self.by_country.get(r)))
            .unwrap_or(&self.default)
    }
}

#[async_trait]
impl SmsSender for Routes {
    async fn send(&self, to: &Phone, text: &SmsText, local_id: &str) -> Result<SmsReceipt, SmsError> {
        self.chain(to).send(to, text, local_id).await
    }
    // No receipt ahead: which chain (and so whether it is the console's)
    // depends on the number, which `receipt_ahead` is not told.
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait]
    impl SmsSender for Named {
        async fn send(&self, _: &Phone, _: &SmsText, _: &str) -> Result<SmsReceipt, SmsError> {
            Ok(SmsReceipt {
                provider: self.0.into(),
                message_id: "m".into(),
                tracked: false,
            })
        }
    }

    fn named(name: &'static str) -> Arc<dyn SmsSender> {
        Arc::new(Named(name))
    }

    #[tokio::test]
    async fn the_longest_prefix_then_the_country_then_the_default() {
        let routes = Routes::new(
            vec![
                ("+44".into(), named("uk")),
                ("+447400".into(), named("uk-mobile")),
            ],
            HashMap::from([("IN".to_owned(), named("india")), ("GB".to_owned(), named("gb"))]),
            named("default"),
        );
        let via = |raw: &str| {
            let phone = Phone::parse(raw).unwrap();
            let chain = Arc::clone(routes.chain(&phone));
            async move {
                let text = crate::domain::MessageTemplate::parse("{code}", "a", Default::default())
                    .unwrap()
                    .render(
                        &crate::domain::Code::generate(),
                        std::time::Duration::from_secs(60),
                    );
                chain.send(&phone, &text, "l").await.unwrap().provider
            }
        };
        assert_eq!(via("+447400123456").await, "uk-mobile");
        assert_eq!(via("+442079460958").await, "uk");
        assert_eq!(via("+919876543210").await, "india");
        assert_eq!(via("+14155552671").await, "default");
    }
}
