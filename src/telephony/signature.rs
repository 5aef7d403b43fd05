//! Twilio's request signature (`X-Twilio-Signature`): HMAC-SHA1, keyed with the
//! auth token, over the full URL Twilio requested followed by every POST
//! parameter's name and value, sorted by name; base64.
//!
//! Pure functions, no I/O. Acceptance follows Twilio's official helper library
//! (`twilio-python`'s `RequestValidator.validate`): Twilio's own signing is
//! inconsistent about ports, so a signature is accepted when it matches the URL
//! with its port removed, or with its port present (the scheme's standard one
//! added when the URL names none).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio sends for a POST to exactly `url` with form `params`.
pub fn expected_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature_header` is Twilio's signature of a POST to `url` with
/// form `params`. `url` is what Twilio requested: see [`webhook_url`].
///
/// The comparison is constant-time (the MAC crate's `verify_slice`); a header
/// that is not canonical base64 of the right length is simply rejected.
pub fn validate(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature_header: &str,
) -> bool {
    let Ok(given) = STANDARD.decode(signature_header.as_bytes()) else {
        return false;
    };
    let (without_port, with_port) = port_variants(url);
    let ok_without = mac(auth_token, &without_port, params)
        .verify_slice(&given)
        .is_ok();
    let ok_with = mac(auth_token, &with_port, params)
        .verify_slice(&given)
        .is_ok();
    ok_without | ok_with
}

/// The URL Twilio requested: `server.public_url` (the base the provider reaches
/// us at, perhaps behind a proxy that adds a path prefix) joined with the path
/// and query our server received, byte for byte as received.
pub fn webhook_url(public_url: &str, path_and_query: &str) -> String {
    let base = public_url.trim_end_matches('/');
    if path_and_query.starts_with('/') {
        format!("{base}{path_and_query}")
    } else {
        format!("{base}/{path_and_query}")
    }
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key");
    mac.update(url.as_bytes());
    // By name, then by value for a repeated name (as the official library does
    // with multi-valued forms). Byte order of UTF-8 is code point order, which
    // is how Twilio sorts.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `(url without its port, url with its port)`, as the official library
/// forms them: any port is removed; the scheme's standard one (443 for
/// `https`, else 80) is added only when the URL names none. A URL that does not
/// parse as `scheme://authority…` is returned unchanged twice.
fn port_variants(url: &str) -> (String, String) {
    let Some(parts) = UrlParts::split(url) else {
        return (url.to_string(), url.to_string());
    };
    let UrlParts {
        head,
        host,
        port,
        tail,
    } = parts;
    let without = format!("{head}{host}{tail}");
    let with = match port {
        Some(p) => format!("{head}{host}:{p}{tail}"),
        None => {
            let scheme = head.split("://").next().unwrap_or("");
            let default = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{head}{host}:{default}{tail}")
        }
    };
    (without, with)
}

/// A URL cut around its host and port: `head` is the scheme, `://` and any
/// user information; `tail` is the path, query and fragment.
struct UrlParts<'a> {
    head: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    tail: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let scheme_end = url.find("://")? + 3;
        let scheme = &url[..scheme_end - 3];
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let rest = &url[scheme_end..];
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let tail = &rest[authority_len..];
        let host_start = authority.rfind('@').map_or(0, |i| i + 1);
        let head = &url[..scheme_end + host_start];
        let host_port = &authority[host_start..];
        // An IPv6 literal's colons are not a port separator.
        let search_from = if host_port.starts_with('[') {
            host_port.find(']')?
        } else {
            0
        };
        let (host, port) = match host_port[search_from..].rfind(':') {
            Some(i) => {
                let i = search_from + i;
                let port = &host_port[i + 1..];
                // A port is digits; anything else (or nothing) leaves the URL as it is.
                if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                    (host_port, None)
                } else {
                    (&host_port[..i], Some(port))
                }
            }
            None => (host_port, None),
        };
        Some(UrlParts {
            head,
            host,
            port,
            tail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    const CASES_JSON: &str = include_str!("../../../shared/testdata/twilio-signatures.json");

    #[derive(Debug, Clone, Deserialize)]
    struct Case {
        name: String,
        auth_token: String,
        url: String,
        params: serde_json::Map<String, serde_json::Value>,
        signature: String,
    }

    impl Case {
        fn params(&self) -> Vec<(String, String)> {
            self.params
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string values").to_string()))
                .collect()
        }

        fn accepts(&self, token: &str, url: &str, params: &[(String, String)], sig: &str) -> bool {
            validate(token, url, params, sig)
        }
    }

    fn cases() -> Vec<Case> {
        let cases: Vec<Case> = serde_json::from_str(CASES_JSON).expect("testdata parses");
        assert!(cases.len() >= 6, "the testdata lost cases");
        cases
    }

    /// Every string made from `s` by replacing one character with another.
    /// Characters rather than bytes, so the result stays UTF-8, as any
    /// `&str` reaching `validate` must.
    fn one_char_changes(s: &str) -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        let mut out = Vec::new();
        for i in 0..chars.len() {
            for replacement in replacements(chars[i]) {
                let mut changed = chars.clone();
                changed[i] = replacement;
                out.push(changed.into_iter().collect());
            }
        }
        out
    }

    /// A few different characters: a neighbour, the other case, and a non-ASCII one.
    fn replacements(c: char) -> Vec<char> {
        let mut r = vec![char::from_u32(c as u32 ^ 1).unwrap_or('x')];
        if c.is_ascii_alphabetic() {
            r.push(if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
        }
        r.push(if c == 'é' { 'è' } else { 'é' });
        r.retain(|&x| x != c);
        r
    }

    #[test]
    fn every_official_signature_is_accepted_for_the_url_as_given() {
        for case in cases() {
            let params = case.params();
            assert!(
                case.accepts(&case.auth_token, &case.url, &params, &case.signature),
                "{} rejected",
                case.name
            );
            assert_eq!(
                expected_signature(&case.auth_token, &case.url, &params),
                case.signature,
                "{}: computed signature differs",
                case.name
            );
        }
    }

    #[test]
    fn parameter_order_as_received_does_not_matter() {
        for case in cases() {
            let mut params = case.params();
            params.reverse();
            assert!(
                case.accepts(&case.auth_token, &case.url, &params, &case.signature),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn a_changed_character_anywhere_in_the_url_is_rejected() {
        for case in cases() {
            let params = case.params();
            for url in one_char_changes(&case.url) {
                assert!(
                    !case.accepts(&case.auth_token, &url, &params, &case.signature),
                    "{}: accepted {url}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn a_changed_character_in_any_parameter_name_or_value_is_rejected() {
        for case in cases() {
            let params = case.params();
            for i in 0..params.len() {
                let (name, value) = &params[i];
                let changed_names = one_char_changes(name)
                    .into_iter()
                    .map(|n| (n, value.clone()));
                let changed_values = one_char_changes(value)
                    .into_iter()
                    .map(|v| (name.clone(), v));
                for pair in changed_names.chain(changed_values) {
                    let mut changed = params.clone();
                    changed[i] = pair.clone();
                    assert!(
                        !case.accepts(&case.auth_token, &case.url, &changed, &case.signature),
                        "{}: accepted {pair:?}",
                        case.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_missing_an_extra_or_an_emptied_parameter_is_rejected() {
        for case in cases() {
            let params = case.params();
            for i in 0..params.len() {
                let mut fewer = params.clone();
                fewer.remove(i);
                assert!(!case.accepts(&case.auth_token, &case.url, &fewer, &case.signature));
                let mut emptied = params.clone();
                emptied[i].1.clear();
                assert!(!case.accepts(&case.auth_token, &case.url, &emptied, &case.signature));
            }
            let mut more = params.clone();
            more.push(("Extra".into(), "1".into()));
            assert!(!case.accepts(&case.auth_token, &case.url, &more, &case.signature));
            let mut empty_extra = params.clone();
            empty_extra.push(("Extra".into(), String::new()));
            assert!(
                !case.accepts(&case.auth_token, &case.url, &empty_extra, &case.signature),
                "{}: a parameter adds its name even when its value is empty",
                case.name
            );
        }
    }

    #[test]
    fn a_changed_character_in_the_token_is_rejected() {
        for case in cases() {
            let params = case.params();
            for token in one_char_changes(&case.auth_token) {
                assert!(!case.accepts(&token, &case.url, &params, &case.signature));
            }
            assert!(!case.accepts("", &case.url, &params, &case.signature));
            let longer = format!("{}0", case.auth_token);
            assert!(!case.accepts(&longer, &case.url, &params, &case.signature));
        }
    }

    #[test]
    fn a_changed_character_in_the_signature_is_rejected() {
        for case in cases() {
            let params = case.params();
            for sig in one_char_changes(&case.signature) {
                assert!(
                    !case.accepts(&case.auth_token, &case.url, &params, &sig),
                    "{}: accepted {sig}",
                    case.name
                );
            }
            for sig in [
                String::new(),
                case.signature.trim_end_matches('=').to_string(),
                format!("{}=", case.signature),
                format!(" {}", case.signature),
                format!("{} ", case.signature),
                case.signature[..case.signature.len() - 4].to_string(),
                "not base64 at all".to_string(),
            ] {
                assert!(
                    !case.accepts(&case.auth_token, &case.url, &params, &sig),
                    "{}: accepted {sig:?}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn the_standard_port_may_be_present_or_absent() {
        for case in cases()
            .into_iter()
            .filter(|c| c.url.starts_with("https://"))
        {
            let params = case.params();
            let (_, with_port) = port_variants(&case.url);
            assert!(with_port.contains(":443/"), "{with_port}");
            // Signed without the port, received with it.
            assert!(
                case.accepts(&case.auth_token, &with_port, &params, &case.signature),
                "{}",
                case.name
            );
            // Signed with the port, received without it.
            let signed_with = expected_signature(&case.auth_token, &with_port, &params);
            assert!(case.accepts(&case.auth_token, &case.url, &params, &signed_with));
            // Signed over another port, received without one: only 443 is added.
            let rest = case.url.strip_prefix("https://").unwrap();
            let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
            let port_80 = format!("https://{}:80{}", &rest[..host_end], &rest[host_end..]);
            let signed_80 = expected_signature(&case.auth_token, &port_80, &params);
            assert!(!case.accepts(&case.auth_token, &case.url, &params, &signed_80));
        }
    }

    #[test]
    fn a_url_with_its_own_port_must_keep_it() {
        let case = cases()
            .into_iter()
            .find(|c| c.name == "with_port")
            .expect("the with_port case");
        let params = case.params();
        assert_eq!(case.url, "http://127.0.0.1:8580/twilio/voice");
        for url in [
            "http://127.0.0.1/twilio/voice",
            "http://127.0.0.1:80/twilio/voice",
            "http://127.0.0.1:8581/twilio/voice",
            "http://127.0.0.1:08580/twilio/voice",
        ] {
            assert!(
                !case.accepts(&case.auth_token, url, &params, &case.signature),
                "{url}"
            );
        }
        // As the official library does, any port may be dropped by the signer:
        // a signature over the URL without it is accepted.
        let without = "http://127.0.0.1/twilio/voice";
        let signed_without = expected_signature(&case.auth_token, without, &params);
        assert!(case.accepts(&case.auth_token, &case.url, &params, &signed_without));
    }

    #[test]
    fn the_query_string_is_part_of_what_is_signed() {
        let case = cases()
            .into_iter()
            .find(|c| c.name == "query_and_unicode")
            .expect("the query case");
        let params = case.params();
        let (path, query) = case.url.split_once('?').expect("a query");
        for url in [
            path.to_string(),
            format!("{path}?"),
            format!("{path}?lang=zh&step=menu"),
            format!("{path}?{query}&x=1"),
            format!("{}:443/twilio/ivr", "https://hotline.example.org"),
        ] {
            assert!(
                !case.accepts(&case.auth_token, &url, &params, &case.signature),
                "{url}"
            );
        }
        // The port rule still applies with a query.
        let with_port = case.url.replacen(".org/", ".org:443/", 1);
        assert!(case.accepts(&case.auth_token, &with_port, &params, &case.signature));
    }

    #[test]
    fn repeated_parameters_are_sorted_by_value_within_their_name() {
        let params = vec![
            ("B".to_string(), "2".to_string()),
            ("A".to_string(), "z".to_string()),
            ("A".to_string(), "y".to_string()),
        ];
        let by_hand = {
            let mut m = HmacSha1::new_from_slice(b"tok").unwrap();
            m.update(b"https://x.org/pAyAzB2");
            STANDARD.encode(m.finalize().into_bytes())
        };
        assert_eq!(
            expected_signature("tok", "https://x.org/p", &params),
            by_hand
        );
    }

    #[test]
    fn port_variants_follow_the_official_library() {
        let v = |u: &str| port_variants(u);
        assert_eq!(
            v("https://h.org/a?b=1"),
            (
                "https://h.org/a?b=1".into(),
                "https://h.org:443/a?b=1".into()
            )
        );
        assert_eq!(
            v("http://h.org/a"),
            ("http://h.org/a".into(), "http://h.org:80/a".into())
        );
        assert_eq!(
            v("http://h.org:8580/a"),
            ("http://h.org/a".into(), "http://h.org:8580/a".into())
        );
        assert_eq!(
            v("https://h.org"),
            ("https://h.org".into(), "https://h.org:443".into())
        );
        assert_eq!(
            v("https://u:p@h.org:444/a"),
            (
                "https://u:p@h.org/a".into(),
                "https://u:p@h.org:444/a".into()
            )
        );
        assert_eq!(
            v("http://[::1]:8580/a"),
            ("http://[::1]/a".into(), "http://[::1]:8580/a".into())
        );
        assert_eq!(
            v("http://[::1]/a"),
            ("http://[::1]/a".into(), "http://[::1]:80/a".into())
        );
        assert_eq!(v("not a url"), ("not a url".into(), "not a url".into()));
    }

    #[test]
    fn webhook_urls_join_the_public_url_and_the_request_path() {
        assert_eq!(
            webhook_url("https://hotline.example.org", "/twilio/voice"),
            "https://hotline.example.org/twilio/voice"
        );
        assert_eq!(
            webhook_url(
                "https://hotline.example.org/",
                "/twilio/ivr?step=menu&lang=zh"
            ),
            "https://hotline.example.org/twilio/ivr?step=menu&lang=zh"
        );
        assert_eq!(
            webhook_url("https://example.org/hotline/", "/twilio/sms"),
            "https://example.org/hotline/twilio/sms"
        );
        assert_eq!(
            webhook_url("https://example.org/hotline", "twilio/sms"),
            "https://example.org/hotline/twilio/sms"
        );
        assert_eq!(
            webhook_url("http://127.0.0.1:8580", "/twilio/voice"),
            "http://127.0.0.1:8580/twilio/voice"
        );
        // The query is kept byte for byte, percent-escapes and all.
        assert_eq!(
            webhook_url("http://h", "/twilio/ivr?q=a%20b+c"),
            "http://h/twilio/ivr?q=a%20b+c"
        );
    }

    #[test]
    fn webhook_url_rebuilds_each_official_case() {
        for case in cases() {
            let rest = case.url.split_once("://").unwrap().1;
            let path_start = rest.find('/').unwrap();
            let base = &case.url[..case.url.len() - (rest.len() - path_start)];
            let url = webhook_url(&format!("{base}/"), &rest[path_start..]);
            assert!(validate(
                &case.auth_token,
                &url,
                &case.params(),
                &case.signature
            ));
        }
    }

    fn case_strategy() -> impl Strategy<Value = Case> {
        prop::sample::select(cases())
    }

    /// Flips one bit of one byte of `s`; `None` when that is not UTF-8.
    fn flip(s: &str, index: usize, bit: u8) -> Option<String> {
        if s.is_empty() {
            return None;
        }
        let mut bytes = s.as_bytes().to_vec();
        let i = index % bytes.len();
        bytes[i] ^= 1 << (bit % 8);
        String::from_utf8(bytes).ok()
    }

    proptest! {
        #[test]
        fn flipping_any_bit_of_url_token_signature_or_parameter_rejects(
            case in case_strategy(),
            target in 0usize..4,
            index in any::<usize>(),
            bit in any::<u8>(),
            which in any::<usize>(),
            name_not_value in any::<bool>(),
        ) {
            let mut token = case.auth_token.clone();
            let mut url = case.url.clone();
            let mut params = case.params();
            let mut sig = case.signature.clone();
            let flipped = match target {
                0 => flip(&token, index, bit).map(|t| token = t),
                1 => flip(&url, index, bit).map(|u| url = u),
                2 => flip(&sig, index, bit).map(|s| sig = s),
                _ if params.is_empty() => None,
                _ => {
                    let i = which % params.len();
                    let field = if name_not_value { &mut params[i].0 } else { &mut params[i].1 };
                    flip(field, index, bit).map(|f| *field = f)
                }
            };
            prop_assume!(flipped.is_some());
            prop_assert!(!validate(&token, &url, &params, &sig),
                "accepted token={token:?} url={url:?} params={params:?} sig={sig:?}");
        }

        #[test]
        fn a_signature_made_here_is_accepted_and_only_for_its_own_inputs(
            token in "[ -~]{0,40}",
            path in "/[a-zA-Z0-9/_.-]{0,30}",
            query in proptest::option::of("[a-z0-9=&%+]{0,20}"),
            params in proptest::collection::vec(("[A-Za-z]{1,10}", "\\PC{0,20}"), 0..6),
            port in proptest::option::of(1u16..),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            let url = format!("https://h.example{port}{path}{query}");
            let sig = expected_signature(&token, &url, &params);
            prop_assert!(validate(&token, &url, &params, &sig));
            let other = format!("{url}x");
            prop_assert!(!validate(&token, &other, &params, &sig));
        }
    }
}
