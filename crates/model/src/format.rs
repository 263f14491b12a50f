//! The payload format a subscription chooses for its webhook bodies; `hookline-payload` holds
//! the encoders.

/// The payload format a subscription chose for its webhook bodies.
///
/// Serialises as its lowercase name (`"form"`, `"json"`, `"xml"`), which is
/// also what [`Format::as_str`], [`Display`](std::fmt::Display) and
/// [`FromStr`](std::str::FromStr) use.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `application/x-www-form-urlencoded`, parsed by PHP into `$_POST` (the default).
    #[default]
    Form,
    /// `application/json`, the event map as is.
    Json,
    /// `application/xml; charset=utf-8`, an `<event>` document.
    Xml,
}

impl Format {
    /// All formats, in the order their names are listed in error messages.
    pub const ALL: [Format; 3] = [Format::Form, Format::Json, Format::Xml];

    /// The `Content-Type` header value to send with a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Form => "application/x-www-form-urlencoded",
            Format::Json => "application/json",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }

    /// The format's lowercase name, as stored in subscriptions.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Form => "form",
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a [`Format`] name that is not `form`, `json` or `xml`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown payload format {input:?}: expected one of form, json, xml")]
pub struct UnknownFormat {
    input: String,
}

impl UnknownFormat {
    /// The name that was not recognised.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    /// Parses `form`, `json` or `xml`, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownFormat {
                input: s.to_owned(),
            })
    }
}
