//! TwiML: the verbs the engine asks for, and their rendering with the quick-xml writer,
//! which escapes every text and attribute.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde::{Deserialize, Serialize};
use std::io;

/// Something said or played, alone or inside a `<Gather>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Speak {
    Say {
        text: String,
        /// Twilio's language code, e.g. `zh-CN`.
        language: String,
        voice: Option<String>,
        /// SSML prosody rate in percent; `None` speaks at the voice's own pace.
        rate: Option<u32>,
    },
    Play {
        url: String,
    },
}

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Speak(Speak),
    /// Waits for one key or for speech, saying `prompt` meanwhile.
    Gather {
        prompt: Vec<Speak>,
        language: String,
        timeout_secs: u32,
        action: String,
        /// Speech recognition hints (words the node understands).
        hints: Option<String>,
    },
    Record {
        action: String,
        max_secs: u32,
        /// Silence that ends the recording.
        timeout_secs: u32,
        finish_on_key: String,
        transcribe_callback: Option<String>,
    },
    Dial {
        number: String,
        action: String,
        timeout_secs: u32,
    },
    Redirect {
        url: String,
    },
    Hangup,
}

impl Action {
    /// Whether the verb ends what Twilio does with this document (or hands the call on).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Action::Gather { .. }
                | Action::Record { .. }
                | Action::Dial { .. }
                | Action::Redirect { .. }
                | Action::Hangup
        )
    }
}

/// Characters XML 1.0 cannot carry at all (escaping does not help): dropped.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| {
            matches!(*c, '\t' | '\n' | '\r')
                || (!c.is_control() && *c != '\u{FFFE}' && *c != '\u{FFFF}')
        })
        .collect()
}

/// Attribute values: as [`clean`], with line breaks and tabs as spaces (a parser would
/// normalise them so anyway).
fn clean_attr(s: &str) -> String {
    clean(s).replace(['\t', '\n', '\r'], " ")
}

type W = Writer<Vec<u8>>;

fn start(w: &mut W, name: &str, attrs: &[(&str, String)]) -> io::Result<()> {
    let mut el = BytesStart::new(name);
    for (k, v) in attrs {
        el.push_attribute((*k, clean_attr(v).as_str()));
    }
    w.write_event(Event::Start(el))
}

fn end(w: &mut W, name: &str) -> io::Result<()> {
    w.write_event(Event::End(BytesEnd::new(name)))
}

fn text(w: &mut W, s: &str) -> io::Result<()> {
    w.write_event(Event::Text(BytesText::new(&clean(s))))
}

fn element(w: &mut W, name: &str, attrs: &[(&str, String)], body: &str) -> io::Result<()> {
    start(w, name, attrs)?;
    text(w, body)?;
    end(w, name)
}

fn speak(w: &mut W, s: &Speak) -> io::Result<()> {
    match s {
        Speak::Say {
            text: t,
            language,
            voice,
            rate,
        } => {
            let mut attrs = vec![("language", language.clone())];
            if let Some(v) = voice {
                attrs.push(("voice", v.clone()));
            }
            start(w, "Say", &attrs)?;
            match rate {
                Some(r) => element(w, "prosody", &[("rate", format!("{r}%"))], t)?,
                None => text(w, t)?,
            }
            end(w, "Say")
        }
        Speak::Play { url } => element(w, "Play", &[], url),
    }
}

fn write_all(actions: &[Action]) -> io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    start(&mut w, "Response", &[])?;
    for a in actions {
        match a {
            Action::Speak(s) => speak(&mut w, s)?,
            Action::Gather {
                prompt,
                language,
                timeout_secs,
                action,
                hints,
            } => {
                let mut attrs = vec![
                    ("input", "dtmf speech".to_string()),
                    ("numDigits", "1".to_string()),
                    ("timeout", timeout_secs.to_string()),
                    ("language", language.clone()),
                    ("speechTimeout", "auto".to_string()),
                    ("action", action.clone()),
                    ("method", "POST".to_string()),
                ];
                if let Some(h) = hints {
                    attrs.push(("hints", h.clone()));
                }
                start(&mut w, "Gather", &attrs)?;
                for s in prompt {
                    speak(&mut w, s)?;
                }
                end(&mut w, "Gather")?;
            }
            Action::Record {
                action,
                max_secs,
                timeout_secs,
                finish_on_key,
                transcribe_callback,
            } => {
                let mut attrs = vec![
                    ("action", action.clone()),
                    ("method", "POST".to_string()),
                    ("maxLength", max_secs.to_string()),
                    ("timeout", timeout_secs.to_string()),
                    ("finishOnKey", finish_on_key.clone()),
                    ("playBeep", "true".to_string()),
                ];
                if let Some(cb) = transcribe_callback {
                    attrs.push(("transcribe", "true".to_string()));
                    attrs.push(("transcribeCallback", cb.clone()));
                }
                let mut el = BytesStart::new("Record");
                for (k, v) in &attrs {
                    el.push_attribute((*k, clean_attr(v).as_str()));
                }
                w.write_event(Event::Empty(el))?;
            }
            Action::Dial {
                number,
                action,
                timeout_secs,
            } => element(
                &mut w,
                "Dial",
                &[
                    ("action", action.clone()),
                    ("method", "POST".to_string()),
                    ("timeout", timeout_secs.to_string()),
                ],
                number,
            )?,
            Action::Redirect { url } => {
                element(&mut w, "Redirect", &[("method", "POST".to_string())], url)?
            }
            Action::Hangup => {
                w.write_event(Event::Empty(BytesStart::new("Hangup")))?;
            }
        }
    }
    end(&mut w, "Response")?;
    Ok(w.into_inner())
}

/// The TwiML document for these verbs. An empty list still gives a document that ends
/// the call politely rather than an empty `<Response/>`.
pub fn render(actions: &[Action]) -> String {
    let fallback = [Action::Hangup];
    let actions = if actions.is_empty() {
        &fallback[..]
    } else {
        actions
    };
    match write_all(actions).map(String::from_utf8) {
        Ok(Ok(s)) => s,
        // Writing to a Vec cannot fail and every input is a &str; kept total anyway.
        _ => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;

    /// Parses a document back: element names in order and all text, unescaped.
    pub(crate) fn parse_back(xml: &str) -> (Vec<String>, String, Vec<(String, String)>) {
        let mut reader = Reader::from_str(xml);
        let mut names = Vec::new();
        let mut all_text = String::new();
        let mut attrs = Vec::new();
        loop {
            match reader.read_event().expect("well-formed TwiML") {
                Event::Start(e) | Event::Empty(e) => {
                    names.push(e.name().as_ref().to_string());
                    for a in e.attributes() {
                        let a = a.expect("well-formed attribute");
                        attrs.push((
                            a.key.as_ref().to_string(),
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .expect("unescapes")
                                .into_owned(),
                        ));
                    }
                }
                Event::Text(t) => all_text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    if let Some(ch) = r.resolve_char_ref().expect("valid reference") {
                        all_text.push(ch);
                        continue;
                    }
                    let name = r.to_string();
                    let ch = match name.as_str() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unexpected entity {other}"),
                    };
                    all_text.push_str(ch);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        (names, all_text, attrs)
    }

    #[test]
    fn a_name_with_markup_stays_well_formed_and_intact() {
        let name = "李 & <王> \"老\" '伯'\u{0}";
        let xml = render(&[
            Action::Speak(Speak::Say {
                text: format!("{name}，您好"),
                language: "zh-CN".into(),
                voice: Some("Polly.Zhiyu".into()),
                rate: Some(90),
            }),
            Action::Gather {
                prompt: vec![Speak::Play {
                    url: "https://x/a.mp3?a=1&b=2".into(),
                }],
                language: "zh-CN".into(),
                timeout_secs: 6,
                action: "/twilio/voice/step?seq=3&x=<y>".into(),
                hints: Some("水管, leak & drip".into()),
            },
            Action::Redirect {
                url: "/s?seq=3&a=1".into(),
            },
        ]);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"));
        assert!(xml.ends_with("</Response>"));
        let (names, text, attrs) = parse_back(&xml);
        assert_eq!(
            names,
            ["Response", "Say", "prosody", "Gather", "Play", "Redirect"]
        );
        assert!(text.contains("李 & <王> \"老\" '伯'，您好"), "{text}");
        assert!(text.contains("https://x/a.mp3?a=1&b=2"));
        assert!(text.contains("/s?seq=3&a=1"));
        assert!(attrs.contains(&("action".into(), "/twilio/voice/step?seq=3&x=<y>".into())));
        assert!(attrs.contains(&("hints".into(), "水管, leak & drip".into())));
        assert!(attrs.contains(&("rate".into(), "90%".into())));
    }

    #[test]
    fn every_verb_renders_with_its_attributes() {
        let xml = render(&[
            Action::Record {
                action: "/a?seq=1".into(),
                max_secs: 60,
                timeout_secs: 5,
                finish_on_key: "#0*".into(),
                transcribe_callback: Some("/a/transcription?seq=1&what=description".into()),
            },
            Action::Dial {
                number: "+8613800138000".into(),
                action: "/a?seq=2".into(),
                timeout_secs: 30,
            },
            Action::Hangup,
        ]);
        let (names, text, attrs) = parse_back(&xml);
        assert_eq!(names, ["Response", "Record", "Dial", "Hangup"]);
        assert_eq!(text, "+8613800138000");
        for (k, v) in [
            ("maxLength", "60"),
            ("playBeep", "true"),
            ("transcribe", "true"),
            (
                "transcribeCallback",
                "/a/transcription?seq=1&what=description",
            ),
            ("timeout", "30"),
        ] {
            assert!(attrs.contains(&(k.into(), v.into())), "{k}: {attrs:?}");
        }
    }

    #[test]
    fn nothing_to_render_still_hangs_up_politely() {
        assert_eq!(
            render(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>"
        );
    }
}
