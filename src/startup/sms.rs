//! From settings to the SMS sender chain (console, vendors, failover) and to
//! the keys the vendors' delivery reports are checked with.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::http::handlers::webhooks::{report_url, WebhookKeys};
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::http::HttpVendor;
use crate::adapters::sms::infobip::Infobip;
use crate::adapters::sms::plivo::Plivo;
use crate::adapters::sms::sinch::Sinch;
use crate::adapters::sms::sns::Sns;
use crate::adapters::sms::telnyx::Telnyx;
use crate::adapters::sms::twilio::Twilio;
use crate::adapters::sms::vonage::Vonage;
use crate::adapters::sms::{
    ConsoleOut, ConsoleSender, Dlt, Failover, Inbox, ReportKey, RetryPolicy, Vendor, VendorSender,
};
use crate::config::{Config, ConfigError, SmsConfig, SmsProvider, VonageSignatureMethod};
use crate::ports::SmsSender;

/// The vendors, by the setting that names them: the one list of them.
/// `None` for the console, which is no vendor.
pub(super) fn vendor(kind: SmsProvider, sms: &SmsConfig) -> Option<Box<dyn Chosen + '_>> {
    Some(match kind {
        SmsProvider::Console => return None,
        SmsProvider::Plivo => chosen::<Plivo>(&sms.plivo),
        SmsProvider::Twilio => chosen::<Twilio>(&sms.twilio),
        SmsProvider::Vonage => chosen::<Vonage>(&sms.vonage),
        SmsProvider::Telnyx => chosen::<Telnyx>(&sms.telnyx),
        SmsProvider::Sinch => chosen::<Sinch>(&sms.sinch),
        SmsProvider::Infobip => chosen::<Infobip>(&sms.infobip),
        SmsProvider::Sns => chosen::<Sns>(&sms.sns),
        SmsProvider::Http => chosen::<HttpVendor>(&sms.http),
    })
}

fn chosen<V: Vendor>(settings: &V::Settings) -> Box<dyn Chosen + '_> {
    Box::new(With::<V>(settings, PhantomData))
}

/// A vendor with its settings, its type forgotten so that one list holds them.
pub(super) trait Chosen {
    /// Its name, as in `sms.<name>`.
    fn name(&self) -> &'static str;

    /// Its sender, with `sender` instead of its settings' own when given,
    /// and a route's DLT ids.
    ///
    /// # Errors
    /// A missing setting, or settings that need DLT ids where none are given.
    fn sender(&self, shared: &Shared, sender: Option<&str>, dlt: Option<&Dlt>) -> Result<Built, ConfigError>;

    /// Its name and the key its reports are signed with, when it has one.
    ///
    /// # Errors
    /// Reports are asked for (`public_url`) and it has no key.
    fn report_key(&self, public_url: Option<&str>) -> Result<Option<(&'static str, ReportKey)>, ConfigError>;
}

/// A vendor's sender, and whether its requests carry the DLT ids it was
/// given (its API may have no place for them).
pub(super) struct Built {
    pub sender: Arc<dyn SmsSender>,
    pub carries_dlt: bool,
}

/// What every vendor's sender is built with.
pub(super) struct Shared<'a> {
    http: reqwest::Client,
    policy: RetryPolicy,
    public_url: Option<&'a str>,
    metrics: &'a Arc<Metrics>,
}

struct With<'a, V: Vendor>(&'a V::Settings, PhantomData<V>);

impl<V: Vendor> Chosen for With<'_, V> {
    fn name(&self) -> &'static str {
        V::NAME
    }

    fn sender(&self, shared: &Shared, sender: Option<&str>, dlt: Option<&Dlt>) -> Result<Built, ConfigError> {
        V::check(self.0)?;
        if let (None, Some(setting)) = (dlt, V::wants_dlt(self.0)) {
            return Err(ConfigError::new(
                setting,
                "names {dlt_entity_id} or {dlt_template_id}, which only a route's `dlt` gives: \
                 use this vendor only in routes that set it",
            ));
        }
        let mut settings = self.0.clone();
        if let Some(sender) = sender {
            V::set_sender(&mut settings, sender);
        }
        let callback = V::report_key(self.0)
            .and(shared.public_url)
            .map(|base| report_url(base, V::NAME));
        let mut vendor = VendorSender::<V>::new(
            &settings,
            shared.http.clone(),
            shared.policy,
            callback,
            Arc::clone(shared.metrics),
        );
        let carries_dlt = dlt.is_some_and(|dlt| vendor.set_dlt(dlt));
        Ok(Built {
            sender: Arc::new(vendor),
            carries_dlt,
        })
    }

    fn report_key(&self, public_url: Option<&str>) -> Result<Option<(&'static str, ReportKey)>, ConfigError> {
        let Some((setting, key)) = V::report_key(self.0) else {
            return Ok(None);
        };
        if !key.secret.is_empty() {
            return Ok(Some((V::NAME, key)));
        }
        if public_url.is_some() {
            return Err(ConfigError::new(
                setting,
                format!(
                    "is required to check {}'s delivery reports when http.public_url is set",
                    V::TITLE
                ),
            ));
        }
        Ok(None)
    }
}

pub(super) fn build_sms(
    config: &Config,
    console: ConsoleOut,
    inbox: Option<Arc<Inbox>>,
    metrics: &Arc<Metrics>,
) -> Result<SmsSenders, ConfigError> {
    let sms = &config.sms;
    if sms.fallback == Some(sms.provider) {
        return Err(ConfigError::new(
            "sms.fallback",
            "must name another provider than sms.provider",
        ));
    }
    for (key, url) in sms.providers().filter_map(|kind| sms.base_url(kind)) {
        in_the_clear_only_here(key, url)?;
    }
    let (http, policy) = vendor_http(config, "sms")?;
    let shared = Shared {
        http,
        policy,
        public_url: public_url(config)?,
        metrics,
    };
    let mut console = Some(console);
    let mut printer: Option<Arc<ConsoleSender>> = None;
    let mut build = |kind: SmsProvider| -> Result<Arc<dyn SmsSender>, ConfigError> {
        match vendor(kind, sms) {
            Some(vendor) => Ok(vendor.sender(&shared, None, None)?.sender),
            None => {
                let sender = Arc::new(
                    ConsoleSender::new(console.take().unwrap_or(ConsoleOut::Stdout))
                        .with_inbox(inbox.clone()),
                );
                printer = Some(Arc::clone(&sender));
                Ok(sender)
            }
        }
    };
    let primary = build(sms.provider)?;
    let default = match sms.fallback {
        Some(kind) => Arc::new(Failover::new(primary, build(kind)?)),
        None => primary,
    };
    if sms.routes.is_empty() {
        return Ok(SmsSenders {
            sms: default,
            console: printer,
        });
    }
    Ok(SmsSenders {
        sms: Arc::new(super::routes::build(sms, &shared, default)?),
        console: printer,
    })
}

/// Refuses a vendor's `url` (setting `key`) that would carry credentials
/// and codes in the clear off this machine.
///
/// # Errors
/// `url` is `http://` to another host.
pub(super) fn in_the_clear_only_here(key: &str, url: &str) -> Result<(), ConfigError> {
    if super::exposure::in_clear_off_this_machine(url) {
        return Err(ConfigError::new(
            key,
            "must be https:// (http:// only on this machine): a vendor call carries its \
             credentials and the code",
        ));
    }
    Ok(())
}

/// The HTTP client and failure policy of every vendor call, by
/// `sms.timeout_ms` and `sms.retries`; `section` names the settings an
/// error is about.
///
/// # Errors
/// The client can't be built (no TLS roots).
pub(super) fn vendor_http(
    config: &Config,
    section: &str,
) -> Result<(reqwest::Client, RetryPolicy), ConfigError> {
    let timeout = Duration::from_millis(config.sms.timeout_ms.max(1));
    // No redirects: a vendor call carries credentials and the code, and a
    // redirect would re-send both to wherever the answer points.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| ConfigError::new(section, e))?;
    Ok((http, RetryPolicy::new(config.sms.retries, timeout)))
}

/// The SMS sender chain, and its console if it has one (WhatsApp messages
/// print beside its SMS).
pub(super) struct SmsSenders {
    pub sms: Arc<dyn SmsSender>,
    pub console: Option<Arc<ConsoleSender>>,
}

/// The keys of the vendors in use, whose reports are taken when
/// `http.public_url` is set.
pub(super) fn webhook_keys(config: &Config) -> Result<WebhookKeys, ConfigError> {
    let sms = &config.sms;
    let public_url = public_url(config)?;
    let mut tokens = std::collections::BTreeMap::new();
    let routed = sms.routes.iter().flat_map(|r| r.vendors.iter().copied());
    for kind in [Some(sms.provider), sms.fallback]
        .into_iter()
        .flatten()
        .chain(routed)
    {
        if let Some((name, key)) = vendor(kind, sms)
            .map(|v| v.report_key(public_url))
            .transpose()?
            .flatten()
        {
            if matches!(
                key.method,
                VonageSignatureMethod::Md5hash | VonageSignatureMethod::Md5
            ) {
                tracing::warn!(
                    setting = "sms.vonage.signature_method",
                    "Vonage's receipts are checked with MD5 (md5hash: MD5 of the parameters and \
                     the secret; md5: HMAC-MD5), the weakest methods Vonage offers; choose sha256 \
                     or sha512 in the Vonage dashboard and here"
                );
            }
            tokens.insert(name, key);
        }
    }
    Ok(WebhookKeys {
        public_url: public_url.map(str::to_owned),
        tokens,
        meta: None,
    })
}

/// `vendor`'s reports' key (`key`: its setting and value, if it has one),
/// when `http.public_url` asks for reports.
///
/// # Errors
/// Reports are asked for and the key is empty: they could not be checked.
pub(super) fn reports_checked_by(
    config: &Config,
    vendor: &'static str,
    key: Option<(&'static str, ReportKey)>,
) -> Result<Option<(&'static str, ReportKey)>, ConfigError> {
    if public_url(config)?.is_none() {
        return Ok(None);
    }
    match key {
        Some((setting, key)) if key.secret.expose().is_empty() => Err(ConfigError::new(
            setting,
            "is required while http.public_url is set: it checks the vendor's status reports",
        )),
        Some((_, key)) => Ok(Some((vendor, key))),
        None => Ok(None),
    }
}

/// `http.public_url` without a trailing slash, if set.
pub(super) fn public_url(config: &Config) -> Result<Option<&str>, ConfigError> {
    match config.http.public_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(Some(url.trim_end_matches('/')))
        }
        Some(_) => Err(ConfigError::new(
            "http.public_url",
            "must start with https:// or http://",
        )),
        None => Ok(None),
    }
}
