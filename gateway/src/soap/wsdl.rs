//! The contracts the SOAP front door serves: ШЭП's WSDL for each channel,
//! the push interface a participant implements, and their schemas.

use super::channel::ASYNC_INTERFACES;
use super::sync::SYNC_TYPES;

/// A ШЭП channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Sync,
    Async,
}

impl Channel {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }

    /// The path the channel answers at.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Sync => "/bip-sync/",
            Self::Async => "/bip-async/",
        }
    }

    /// The element a fault's `detail` carries, and its namespace.
    pub(crate) fn fault_element(self) -> (&'static str, &'static str) {
        match self {
            Self::Sync => ("SendMessageFault1_SendMessageFault", SYNC_TYPES),
            Self::Async => ("AsyncChannelFault", ASYNC_INTERFACES),
        }
    }
}

/// The schemas served at `?xsd=NAME`.
pub(crate) const XSD_NAMES: &[&str] = &["common.xsd", "sync.xsd", "async.xsd"];

const SYNC_WSDL: &str = include_str!("schemas/sync.wsdl");
const ASYNC_WSDL: &str = include_str!("schemas/async.wsdl");
const CLIENT_WSDL: &str = include_str!("schemas/client.wsdl");

/// The WSDL of `channel` (`which` empty) or of the push interface
/// (`which = "client"`), its address `base` + the channel's path.
pub(crate) fn wsdl(channel: Channel, which: &str, base: &str) -> Option<String> {
    let template = match (channel, which) {
        (Channel::Sync, "") => SYNC_WSDL,
        (Channel::Async, "") => ASYNC_WSDL,
        (Channel::Async, "client") => CLIENT_WSDL,
        _ => return None,
    };
    let address = if which == "client" {
        "http://participant.invalid/your-endpoint".to_owned()
    } else {
        format!("{base}{}", channel.path())
    };
    Some(template.replace("{ADDRESS}", &crate::xmldata::escape(&address)))
}

/// A schema by name.
pub(crate) fn xsd(name: &str) -> Option<&'static str> {
    match name {
        "common.xsd" => Some(include_str!("schemas/common.xsd")),
        "sync.xsd" => Some(include_str!("schemas/sync.xsd")),
        "async.xsd" => Some(include_str!("schemas/async.xsd")),
        _ => None,
    }
}
