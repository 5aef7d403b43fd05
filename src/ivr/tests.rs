//! Tests of the whole module: the shipped script, each validation error with its line,
//! each engine rule, rendering round trips, and property tests over any input sequence.

use super::*;
use crate::domain::{Category, Grade, Language};
use proptest::prelude::*;
use quick_xml::Reader;
use quick_xml::events::Event;

fn script() -> Script {
    match default_script() {
        Ok(s) => s,
        Err(e) => panic!(
            "{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn ctx(staffed: bool) -> StepContext {
    StepContext {
        staffed,
        operators_phone: Some("+862363000000".into()),
        emergency_number: "120".into(),
        action_base: "/twilio/voice/step".into(),
    }
}

fn known(name: &str, lang: Language) -> Option<KnownCaller> {
    Some(KnownCaller {
        name: name.into(),
        language: lang,
        address: Some("幸福路 5 号 3 楼".into()),
    })
}

/// Plays inputs from the start; returns every step's result.
fn play(
    s: &Script,
    c: &StepContext,
    caller: Option<KnownCaller>,
    inputs: &[Input],
) -> Vec<StepResult> {
    let mut out = vec![step(
        s,
        &CallState::default(),
        &Input::Start { known: caller },
        c,
    )];
    for i in inputs {
        let last = out.last().unwrap().state.clone();
        out.push(step(s, &last, i, c));
    }
    out
}

fn digits(d: &str) -> Input {
    Input::Digits(d.into())
}

fn speech(t: &str) -> Input {
    Input::Speech(t.into())
}

fn rec(url: &str) -> Input {
    Input::Recording {
        url: url.into(),
        transcription: None,
    }
}

fn all_effects(steps: &[StepResult]) -> Vec<Effect> {
    steps.iter().flat_map(|s| s.effects.clone()).collect()
}

fn said(r: &StepResult) -> String {
    let mut out = String::new();
    let mut push = |s: &Speak| {
        if let Speak::Say { text, .. } = s {
            out.push_str(text);
            out.push('|');
        }
    };
    for a in &r.actions {
        match a {
            Action::Speak(s) => push(s),
            Action::Gather { prompt, .. } => prompt.iter().for_each(&mut push),
            _ => {}
        }
    }
    out
}

fn rates(r: &StepResult) -> Vec<u32> {
    let mut out = Vec::new();
    for a in &r.actions {
        if let Action::Gather { prompt, .. } = a {
            for p in prompt {
                if let Speak::Say { rate: Some(x), .. } = p {
                    out.push(*x);
                }
            }
        }
    }
    out
}

fn dialed(r: &StepResult) -> Option<String> {
    r.actions.iter().find_map(|a| match a {
        Action::Dial { number, .. } => Some(number.clone()),
        _ => None,
    })
}

fn is_hangup(r: &StepResult) -> bool {
    r.actions.last() == Some(&Action::Hangup)
}

/// Element names and unescaped text of a rendered document; panics unless well-formed.
fn parse_back(xml: &str) -> (Vec<String>, String) {
    let mut reader = Reader::from_str(xml);
    let mut names = Vec::new();
    let mut text = String::new();
    let mut depth = 0i32;
    loop {
        match reader.read_event().expect("well-formed TwiML") {
            Event::Start(e) => {
                depth += 1;
                names.push(e.name().as_ref().to_string());
                for a in e.attributes() {
                    a.expect("attribute")
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("unescapes");
                }
            }
            Event::Empty(e) => {
                names.push(e.name().as_ref().to_string());
                for a in e.attributes() {
                    a.expect("attribute")
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("unescapes");
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                if let Some(ch) = r.resolve_char_ref().expect("valid reference") {
                    text.push(ch);
                } else {
                    text.push(match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity {other:?}"),
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced: {xml}");
    (names, text)
}

// ------------------------------------------------------------------ the shipped script

#[test]
fn the_shipped_script_passes_its_check() {
    let s = script();
    assert_eq!(s.languages, [Language::Zh, Language::En]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr-scripts");
    assert_eq!(check_command(&dir), (1, vec![]));
}

#[test]
fn the_shipped_menu_keeps_the_card_keys_and_grades() {
    let s = script();
    let Some(NodeKind::Menu { choices, .. }) = s.node("menu").map(|n| &n.kind) else {
        panic!("no menu node");
    };
    let expect = [
        ("1", Category::Repair, Grade::Yellow),
        ("2", Category::Errands, Grade::Blue),
        ("3", Category::Escort, Grade::Yellow),
        ("4", Category::Companion, Grade::Blue),
        ("5", Category::Other, Grade::Blue),
    ];
    for (key, cat, grade) in expect {
        let c = choices
            .iter()
            .find(|c| c.key == key)
            .expect("key on the card");
        let Some(NodeKind::Classify {
            category,
            grade: g,
            next,
            ..
        }) = s.node(&c.goto).map(|n| &n.kind)
        else {
            panic!("key {key} does not classify");
        };
        assert_eq!((*category, *g), (cat, grade));
        assert_eq!(*g, category.default_grade());
        assert_eq!(next, "describe");
    }
    assert_eq!(
        (
            s.keys.operator.as_str(),
            s.keys.repeat.as_str(),
            s.keys.emergency.as_str()
        ),
        ("0", "*", "9")
    );
}

#[test]
fn a_missing_folder_loads_the_built_in_script() {
    let s = load(std::path::Path::new("/nonexistent/ivr-scripts"), "default").unwrap();
    assert_eq!(s, script());
}

#[test]
fn a_folder_is_loaded_by_its_entry_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("night.toml"), DEFAULT_SCRIPT).unwrap();
    let s = load(dir.path(), "night").unwrap();
    assert!(s.file.ends_with("night.toml"));
    let err = load(dir.path(), "day").unwrap_err();
    assert!(err[0].to_string().contains("day.toml"), "{}", err[0]);
}

#[test]
fn check_dir_names_every_bad_file_and_counts_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), DEFAULT_SCRIPT).unwrap();
    std::fs::write(dir.path().join("b.toml"), "[script\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let (ok, errors) = check_command(dir.path());
    assert_eq!(ok, 1);
    assert_eq!(errors.len(), 1);
    let shown = errors[0].to_string();
    assert!(shown.contains("b.toml:1: TOML"), "{shown}");
    assert_eq!(check_dir(dir.path()), errors);
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(check_command(empty.path()).1.len(), 1);
    assert_eq!(check_command(&empty.path().join("missing")).1.len(), 1);
}

// ------------------------------------------------------------------ validation errors

/// The default script with `from` replaced by `to` (which must occur once).
fn edited(from: &str, to: &str) -> String {
    assert_eq!(DEFAULT_SCRIPT.matches(from).count(), 1, "{from}");
    DEFAULT_SCRIPT.replace(from, to)
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    text[..at].matches('\n').count() + 1
}

fn errors_of(text: &str) -> Vec<String> {
    parse_script("x.toml", text)
        .expect_err("script should fail")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn assert_error(text: &str, line: usize, words: &str) {
    let errors = errors_of(text);
    let want = format!("x.toml:{line}: ");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&want) && e.contains(words)),
        "wanted `{want}…{words}…` in {errors:#?}"
    );
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let text = edited("[nodes.thanks]", "[nodes.thanks");
    assert_error(&text, line_of(&text, "[nodes.thanks"), "TOML");
}

#[test]
fn an_unknown_field_names_its_line() {
    let text = edited("ring_secs = 25", "ring_seconds = 25");
    assert_error(&text, line_of(&text, "ring_seconds"), "ring_seconds");
}

#[test]
fn an_unknown_node_names_the_line_that_refers_to_it() {
    let text = edited("next = \"thanks\"", "next = \"thank_you\"");
    assert_error(
        &text,
        line_of(&text, "thank_you"),
        "unknown node `thank_you`",
    );
}

#[test]
fn an_unreachable_node_names_its_own_line() {
    let text = format!(
        "{DEFAULT_SCRIPT}\n[nodes.lost]\nkind = \"hangup\"\nprompt = {{ zh = \"再见\", en = \"Bye\" }}\n"
    );
    assert_error(
        &text,
        line_of(&text, "kind = \"hangup\"\nprompt = { zh = \"再见\""),
        "unreachable",
    );
}

#[test]
fn a_node_with_no_way_out_is_named() {
    // A menu whose only choice leads back to itself never reaches a transfer or hang-up.
    let text = edited(
        "choices = [\n  { key = \"1\", goto = \"ask_name\"",
        "choices = [\n  { key = \"1\", goto = \"welcome\"",
    );
    assert_error(&text, line_of(&text, "[nodes.welcome]") + 1, "no way out");
    // A record node without `next`.
    let text = edited("next = \"goodbye\"\n", "");
    assert_error(&text, line_of(&text, "[nodes.voicemail]") + 1, "no way out");
}

#[test]
fn a_missing_language_names_the_prompt() {
    let text = edited(
        "prompt.en = \"After the beep, please say your name. Then press the pound key.\"\n",
        "",
    );
    assert_error(
        &text,
        line_of(&text, "prompt.zh = \"请在嘀声后，说出您的姓名"),
        "no `en` text",
    );
    let text = edited(
        "prompt = { zh = \"好的，修理。\", en = \"A repair. Thank you.\" }",
        "prompt = { zh = \"好的，修理。\" }",
    );
    assert_error(
        &text,
        line_of(&text, "prompt = { zh = \"好的，修理。\" }"),
        "no `en` text",
    );
}

#[test]
fn a_key_used_twice_in_a_node_is_named() {
    let text = edited(
        "{ key = \"5\", goto = \"other\"",
        "{ key = \"4\", goto = \"other\"",
    );
    assert_error(
        &text,
        line_of(&text, "{ key = \"4\", goto = \"other\""),
        "key `4` is used twice",
    );
}

#[test]
fn a_global_key_cannot_be_a_choice() {
    let text = edited(
        "{ key = \"5\", goto = \"other\"",
        "{ key = \"9\", goto = \"other\"",
    );
    assert_error(
        &text,
        line_of(&text, "{ key = \"9\""),
        "emergency at every step",
    );
}

#[test]
fn an_unknown_category_or_grade_is_named() {
    let text = edited("category = \"companion\"", "category = \"chat\"");
    assert_error(
        &text,
        line_of(&text, "category = \"chat\""),
        "unknown category `chat`",
    );
    let text = edited(
        "category = \"errands\"\ngrade = \"blue\"",
        "category = \"errands\"\ngrade = \"green\"",
    );
    assert_error(
        &text,
        line_of(&text, "grade = \"green\""),
        "unknown grade `green`",
    );
}

#[test]
fn an_undeclared_language_is_named() {
    let text = edited(
        "prompt.zh = \"谢谢您的来电。",
        "prompt.fr = \"Merci\"\nprompt.zh = \"谢谢您的来电。",
    );
    assert_error(&text, line_of(&text, "prompt.fr"), "unknown language `fr`");
}

#[test]
fn header_references_must_have_the_right_kind() {
    let text = edited("goodbye = \"goodbye\"", "goodbye = \"menu\"");
    assert_error(&text, line_of(&text, "goodbye = \"menu\""), "hangup");
}

// ------------------------------------------------------------------ the flow

#[test]
fn a_known_caller_is_greeted_by_name_in_their_language_and_confirms_the_address() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        known("张阿姨", Language::Zh),
        &[digits("1")],
    );
    let greeting = said(&steps[0]);
    assert!(greeting.contains("张阿姨，您好"), "{greeting}");
    assert!(greeting.contains("幸福路 5 号 3 楼"), "{greeting}");
    assert!(matches!(&steps[0].actions[0], Action::Gather { language, .. } if language == "zh-CN"));
    assert_eq!(steps[1].effects, [Effect::AddressConfirmed]);
    assert_eq!(steps[1].state.node, "menu");

    let steps = play(&s, &ctx(true), known("Mary", Language::En), &[]);
    assert!(said(&steps[0]).contains("Hello, Mary."));
    assert!(matches!(&steps[0].actions[0], Action::Gather { language, .. } if language == "en-US"));
}

#[test]
fn a_whole_call_from_a_known_caller_classifies_describes_and_finishes() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        known("王伯", Language::Zh),
        &[
            digits("2"),
            rec("https://r/address"),
            digits("1"),
            Input::Recording {
                url: "https://r/desc".into(),
                transcription: Some("kitchen tap".into()),
            },
        ],
    );
    assert_eq!(
        all_effects(&steps),
        [
            Effect::NewAddressRecording {
                url: "https://r/address".into()
            },
            Effect::Classified {
                category: Category::Repair,
                grade: Grade::Yellow
            },
            Effect::Description {
                recording_url: "https://r/desc".into(),
                transcription: Some("kitchen tap".into())
            },
            Effect::Finished,
        ]
    );
    let last = steps.last().unwrap();
    assert!(is_hangup(last));
    assert!(said(last).contains("志愿者"));
    assert!(last.state.ended);
    // The description is a recording with a transcription requested.
    let describe = &steps[3];
    assert!(describe.actions.iter().any(|a| matches!(a,
        Action::Record { max_secs: 60, transcribe_callback: Some(cb), .. }
            if cb == "/twilio/voice/step/transcription?seq=4&what=description")));
}

#[test]
fn an_unknown_caller_records_name_then_address_then_chooses() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        None,
        &[
            digits("1"),
            rec("https://r/name"),
            rec("https://r/addr"),
            digits("4"),
            rec("https://r/desc"),
        ],
    );
    assert_eq!(
        all_effects(&steps),
        [
            Effect::NameRecording {
                url: "https://r/name".into()
            },
            Effect::NewAddressRecording {
                url: "https://r/addr".into()
            },
            Effect::Classified {
                category: Category::Companion,
                grade: Grade::Blue
            },
            Effect::Description {
                recording_url: "https://r/desc".into(),
                transcription: None
            },
            Effect::Finished,
        ]
    );
    assert_eq!(steps[0].state.language, Language::Zh);
}

#[test]
fn a_known_caller_without_an_address_records_one() {
    let s = script();
    let caller = Some(KnownCaller {
        name: "李".into(),
        language: Language::Zh,
        address: Some("  ".into()),
    });
    let steps = play(&s, &ctx(true), caller, &[rec("https://r/a")]);
    assert_eq!(steps[0].state.node, "welcome_back_no_address");
    assert_eq!(steps[1].state.node, "menu");
}

#[test]
fn speech_chooses_a_category_in_either_language() {
    let s = script();
    for (text, cat) in [
        ("我家水管漏水了", Category::Repair),
        ("my tap is leaking", Category::Repair),
        ("帮我买点菜", Category::Errands),
        ("I need someone to pick up my medicine", Category::Errands),
        ("陪我去医院看病", Category::Escort),
        ("I have a doctor appointment", Category::Escort),
        ("一个人在家很寂寞", Category::Companion),
        ("其他事情", Category::Other),
        ("五", Category::Other),
    ] {
        let steps = play(
            &s,
            &ctx(true),
            known("A", Language::Zh),
            &[digits("1"), speech(text)],
        );
        assert!(
            steps[2].effects.contains(&Effect::Classified {
                category: cat,
                grade: cat.default_grade()
            }),
            "{text}: {:?}",
            steps[2].effects
        );
    }
}

#[test]
fn emergency_words_or_nine_dial_the_emergency_number_at_once_from_any_step() {
    let s = script();
    for (pre, input) in [
        (vec![], digits("9")),
        (vec![], speech("救命")),
        (vec![], speech("急救")),
        (vec![digits("1")], speech("I have chest pain")),
        (vec![digits("1")], speech("I can’t breathe")),
        (vec![digits("1")], digits("9")),
    ] {
        let mut inputs = pre.clone();
        inputs.push(input.clone());
        let steps = play(&s, &ctx(false), known("A", Language::Zh), &inputs);
        let last = steps.last().unwrap();
        assert_eq!(dialed(last).as_deref(), Some("120"), "{input:?}");
        assert!(last.effects.contains(&Effect::Emergency), "{input:?}");
    }
    // From a recording step too (the key ends the recording; the engine sees the key).
    let steps = play(&s, &ctx(false), None, &[digits("1"), speech("救命")]);
    assert_eq!(dialed(steps.last().unwrap()).as_deref(), Some("120"));
}

#[test]
fn an_unanswered_emergency_call_goes_to_the_operator() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        None,
        &[digits("9"), Input::DialResult { answered: false }],
    );
    assert_eq!(dialed(&steps[2]).as_deref(), Some("+862363000000"));
    assert!(steps[2].effects.contains(&Effect::OperatorRequested));
    let answered = play(
        &s,
        &ctx(true),
        None,
        &[digits("9"), Input::DialResult { answered: true }],
    );
    assert!(is_hangup(&answered[2]) && answered[2].state.ended);
}

#[test]
fn zero_dials_the_operator_when_staffed_with_an_action_for_no_answer() {
    let s = script();
    let steps = play(&s, &ctx(true), known("A", Language::Zh), &[digits("0")]);
    assert_eq!(steps[1].effects, [Effect::OperatorRequested]);
    assert!(steps[1].actions.iter().any(|a| matches!(a,
        Action::Dial { number, action, .. }
            if number == "+862363000000" && action == "/twilio/voice/step?seq=2")));
    // Nobody answers: voicemail, which becomes a call-back request.
    let steps = play(
        &s,
        &ctx(true),
        known("A", Language::Zh),
        &[
            digits("0"),
            Input::DialResult { answered: false },
            rec("https://r/vm"),
        ],
    );
    assert!(
        steps[2]
            .actions
            .iter()
            .any(|a| matches!(a, Action::Record { .. }))
    );
    assert_eq!(
        steps[3].effects,
        [
            Effect::Voicemail {
                recording_url: "https://r/vm".into()
            },
            Effect::Finished
        ]
    );
    assert!(is_hangup(&steps[3]));
}

#[test]
fn zero_goes_straight_to_voicemail_when_nobody_is_on_duty() {
    let s = script();
    let mut unconfigured = ctx(true);
    unconfigured.operators_phone = None;
    for c in [ctx(false), unconfigured] {
        let steps = play(&s, &c, None, &[digits("1"), digits("0")]);
        let last = steps.last().unwrap();
        assert_eq!(dialed(last), None);
        assert_eq!(last.state.node, "voicemail");
        assert!(
            last.actions
                .iter()
                .any(|a| matches!(a, Action::Record { .. }))
        );
    }
}

#[test]
fn star_repeats_the_last_prompt_without_counting_a_miss() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        known("A", Language::Zh),
        &[digits("1"), digits("*"), speech("再说一遍")],
    );
    assert_eq!(said(&steps[2]), said(&steps[1]));
    assert_eq!(said(&steps[3]), said(&steps[1]));
    assert_eq!(steps[3].state.misses, 0);
    assert_eq!(steps[3].state.node, "menu");
}

#[test]
fn a_miss_repeats_slower_each_time_then_goes_to_the_operator() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        known("A", Language::Zh),
        &[
            digits("1"),
            Input::NoInput,
            digits("7"),
            speech("嗯嗯啊啊啊"),
        ],
    );
    assert!(rates(&steps[1]).iter().all(|r| *r == 90));
    assert!(rates(&steps[2]).iter().all(|r| *r == 75));
    assert!(said(&steps[2]).starts_with("对不起"));
    assert!(rates(&steps[3]).iter().all(|r| *r == 60));
    assert_eq!(steps[3].state.misses, 2);
    assert_eq!(dialed(&steps[4]).as_deref(), Some("+862363000000"));
    assert!(steps[4].effects.contains(&Effect::OperatorRequested));

    // Unstaffed: three misses lead to the voicemail, never a dead end.
    let steps = play(
        &s,
        &ctx(false),
        None,
        &[Input::NoInput, Input::NoInput, Input::NoInput],
    );
    assert_eq!(steps[3].state.node, "voicemail");
    assert!(!is_hangup(&steps[3]));
}

#[test]
fn silence_at_the_voicemail_ends_politely() {
    let s = script();
    let steps = play(
        &s,
        &ctx(false),
        None,
        &[digits("0"), Input::NoInput, Input::NoInput, Input::NoInput],
    );
    let last = steps.last().unwrap();
    assert!(is_hangup(last));
    assert!(said(last).contains("再见"));
}

#[test]
fn eight_or_a_spoken_cue_switches_to_english_and_back() {
    let s = script();
    let steps = play(&s, &ctx(true), None, &[digits("8")]);
    assert_eq!(steps[1].state.language, Language::En);
    assert!(said(&steps[1]).contains("Hello. This is"));
    assert_eq!(
        steps[1].effects,
        [Effect::LanguageChosen {
            language: Language::En
        }]
    );
    assert!(matches!(&steps[1].actions[0], Action::Gather { language, .. } if language == "en-US"));
    let steps = play(
        &s,
        &ctx(true),
        None,
        &[speech("English please"), digits("8")],
    );
    assert_eq!(steps[1].state.language, Language::En);
    assert_eq!(steps[2].state.language, Language::Zh);
}

#[test]
fn the_other_language_hint_is_spoken_in_its_own_language() {
    let s = script();
    let steps = play(&s, &ctx(true), None, &[]);
    let Action::Gather { prompt, .. } = &steps[0].actions[0] else {
        panic!()
    };
    assert!(prompt.iter().any(|p| matches!(p,
        Speak::Say { text, language, voice: Some(v), .. }
            if text.contains("For English") && language == "en-US" && v == "Polly.Joanna")));
}

#[test]
fn yes_and_no_are_understood_in_words() {
    let s = script();
    for (text, node) in [
        ("对", "menu"),
        ("是的", "menu"),
        ("yes that's right", "menu"),
        ("不对", "new_address"),
        ("我搬家了", "new_address"),
        ("no", "new_address"),
        ("二", "new_address"),
    ] {
        let steps = play(&s, &ctx(true), known("A", Language::Zh), &[speech(text)]);
        assert_eq!(steps[1].state.node, node, "{text}");
    }
}

#[test]
fn every_action_url_carries_the_new_seq() {
    let s = script();
    let steps = play(
        &s,
        &ctx(true),
        None,
        &[digits("1"), rec("u"), Input::NoInput, rec("a")],
    );
    for (i, r) in steps.iter().enumerate() {
        assert_eq!(r.state.seq, i as u64 + 1);
        for a in &r.actions {
            let url = match a {
                Action::Gather { action, .. }
                | Action::Record { action, .. }
                | Action::Dial { action, .. } => action,
                Action::Redirect { url } => url,
                _ => continue,
            };
            assert_eq!(url, &format!("/twilio/voice/step?seq={}", r.state.seq));
        }
    }
    let mut c = ctx(true);
    c.action_base = "/twilio/voice/step?v=2".into();
    let r = step(&s, &CallState::default(), &Input::Start { known: None }, &c);
    assert!(
        matches!(&r.actions[0], Action::Gather { action, .. } if action == "/twilio/voice/step?v=2&seq=1")
    );
}

#[test]
fn a_state_survives_json_and_a_stale_node_restarts_the_call() {
    let s = script();
    let steps = play(&s, &ctx(true), known("A", Language::En), &[digits("1")]);
    let json = serde_json::to_string(&steps[1].state).unwrap();
    let back: CallState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, steps[1].state);
    let mut stale = back.clone();
    stale.node = "a node from last year".into();
    let r = step(&s, &stale, &digits("1"), &ctx(true));
    assert_eq!(r.state.node, "welcome_back");
    let empty: CallState = serde_json::from_str("{}").unwrap();
    let r = step(&s, &empty, &digits("1"), &ctx(true));
    assert!(!r.actions.is_empty());
}

#[test]
fn after_the_end_every_webhook_hangs_up() {
    let s = script();
    let steps = play(&s, &ctx(false), None, &[digits("0"), rec("v"), digits("1")]);
    assert!(steps[2].state.ended);
    assert_eq!(steps[3].actions, [Action::Hangup]);
    assert!(steps[3].effects.is_empty());
}

#[test]
fn twilio_form_fields_map_to_inputs() {
    let form = |pairs: &'static [(&'static str, &'static str)]| {
        Input::from_twilio(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v))
    };
    assert_eq!(form(&[("Digits", "1")]), digits("1"));
    assert_eq!(
        form(&[("SpeechResult", "救命"), ("Confidence", "0.9")]),
        speech("救命")
    );
    assert_eq!(
        form(&[("Digits", ""), ("SpeechResult", "")]),
        Input::NoInput
    );
    assert_eq!(
        form(&[("RecordingUrl", "https://r/1"), ("Digits", "#")]),
        rec("https://r/1")
    );
    assert_eq!(
        form(&[("RecordingUrl", "https://r/1"), ("Digits", "hangup")]),
        rec("https://r/1")
    );
    assert_eq!(
        form(&[("RecordingUrl", "https://r/1"), ("Digits", "0")]),
        digits("0")
    );
    assert_eq!(
        form(&[
            ("RecordingUrl", "https://r/1"),
            ("TranscriptionText", "hello")
        ]),
        Input::Recording {
            url: "https://r/1".into(),
            transcription: Some("hello".into())
        }
    );
    assert_eq!(
        form(&[("DialCallStatus", "completed")]),
        Input::DialResult { answered: true }
    );
    assert_eq!(
        form(&[("DialCallStatus", "no-answer")]),
        Input::DialResult { answered: false }
    );
}

#[test]
fn a_name_with_markup_renders_well_formed_with_the_text_intact() {
    let s = script();
    let name = "Tom & <Jerry> \"Q\"";
    let steps = play(&s, &ctx(true), known(name, Language::En), &[]);
    let xml = render(&steps[0].actions);
    let (names, text) = parse_back(&xml);
    assert_eq!(&names[..3], ["Response", "Gather", "Say"]);
    assert!(text.contains("Hello, Tom & <Jerry> \"Q\"."), "{text}");
    assert!(
        xml.contains("&amp;") && xml.contains("&lt;Jerry&gt;"),
        "{xml}"
    );
    assert!(xml.contains("<prosody rate=\"90%\">"), "{xml}");
}

// ------------------------------------------------------------------ properties

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        "[0-9*#]".prop_map(Input::Digits),
        "[0-9*#a-z１２ ]{0,4}".prop_map(Input::Digits),
        prop::sample::select(vec![
            "水管漏水",
            "my tap is leaking",
            "救命",
            "chest pain",
            "english",
            "中文",
            "对",
            "不对",
            "operator",
            "再说一遍",
            "一",
            "嗯",
            "",
            "买菜",
            "lonely",
            "&<>\"'",
        ])
        .prop_map(|s| Input::Speech(s.to_string())),
        ".{0,12}".prop_map(Input::Speech),
        Just(Input::NoInput),
        "[a-z:/&<>]{0,10}".prop_map(|u| Input::Recording {
            url: format!("https://r/{u}"),
            transcription: None
        }),
        any::<bool>().prop_map(|answered| Input::DialResult { answered }),
        Just(Input::Start { known: None }),
    ]
}

fn any_caller() -> impl Strategy<Value = Option<KnownCaller>> {
    prop::option::of(
        (
            ".{0,8}",
            prop::sample::select(vec![Language::Zh, Language::En]),
            prop::option::of(".{0,8}"),
        )
            .prop_map(|(name, language, address)| KnownCaller {
                name,
                language,
                address,
            }),
    )
}

fn check_answer(s: &Script, r: &StepResult) {
    assert!(!r.actions.is_empty(), "empty answer");
    assert!(
        r.actions.iter().any(|a| a.is_final()),
        "no final verb: {:?}",
        r.actions
    );
    let xml = render(&r.actions);
    assert!(!xml.contains("<Response/>"));
    let (names, _) = parse_back(&xml);
    assert!(names.len() > 1, "{xml}");
    assert!(s.node(&r.state.node).is_some(), "{}", r.state.node);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_inputs_end_in_a_transfer_or_a_hangup_within_bounded_steps(
        caller in any_caller(),
        staffed in any::<bool>(),
        inputs in prop::collection::vec(any_input(), 0..120),
    ) {
        let s = script();
        let c = ctx(staffed);
        let mut state = CallState::default();
        let mut result = step(&s, &state, &Input::Start { known: caller.clone() }, &c);
        check_answer(&s, &result);
        let mut since_outcome = 0u64;
        for input in inputs.iter().filter(|i| !matches!(i, Input::Start { .. })) {
            state = result.state.clone();
            result = step(&s, &state, input, &c);
            check_answer(&s, &result);
            prop_assert_eq!(result.state.seq, state.seq + 1);
            let outcome = result.state.ended
                || dialed(&result).is_some()
                || result.effects.iter().any(|e| matches!(e, Effect::Classified { .. }));
            since_outcome = if outcome { 0 } else { since_outcome + 1 };
            prop_assert!(
                since_outcome <= s.max_steps + 5,
                "{} steps without a transfer, classification or hang-up", since_outcome
            );
            if result.state.ended {
                prop_assert!(is_hangup(&result));
            }
        }
        // However long a call goes on, it ends: the step budget forces an outcome.
        let mut state = result.state.clone();
        for _ in 0..(s.max_steps + 10) {
            let r = step(&s, &state, &Input::NoInput, &c);
            check_answer(&s, &r);
            state = r.state;
        }
        prop_assert!(state.ended || state.node == s.operator || state.node == "voicemail");
        let mut extra = state.clone();
        for _ in 0..10 {
            let r = step(&s, &extra, &Input::DialResult { answered: false }, &c);
            check_answer(&s, &r);
            extra = r.state;
        }
        prop_assert!(extra.ended, "never ended: {:?}", extra);
    }

    #[test]
    fn a_restart_from_any_state_is_a_fresh_call(
        inputs in prop::collection::vec(any_input(), 0..20),
        caller in any_caller(),
    ) {
        let s = script();
        let c = ctx(true);
        let mut state = CallState::default();
        for i in &inputs {
            state = step(&s, &state, i, &c).state;
        }
        let r = step(&s, &state, &Input::Start { known: caller }, &c);
        check_answer(&s, &r);
        prop_assert_eq!(r.state.misses, 0);
        prop_assert!(!r.state.ended);
    }

    #[test]
    fn rendering_never_breaks_on_any_text(text in ".{0,40}", url in ".{0,40}") {
        let xml = render(&[
            Action::Speak(Speak::Say { text: text.clone(), language: "zh-CN".into(), voice: Some(url.clone()), rate: Some(75) }),
            Action::Redirect { url: url.clone() },
        ]);
        let (_, back) = parse_back(&xml);
        let clean = |s: &str| s.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).filter(|c| *c != '\u{FFFE}' && *c != '\u{FFFF}').collect::<String>();
        prop_assert!(back.contains(&clean(&text)) || clean(&text).trim().is_empty());
    }
}

#[test]
fn script_words_written_loosely_are_understood_once_the_script_is_loaded() {
    let mut text = DEFAULT_SCRIPT.to_string();
    for (from, to) in [
        (
            r#"operator.en = ["operator", "real person""#,
            r#"operator.en = ["operator", " REAL  person!""#,
        ),
        (
            r#"switch.en = ["english""#,
            r#"switch.en = ["  ＥＮＧＬＩＳＨ ""#,
        ),
        (
            r#"zh = ["其他", "其它", "别的"], en = ["other", "something else"]"#,
            r#"zh = ["其他", "其它", "别的", "电 梯"], en = ["other", "something else", "  ＬＩＦＴ   Broken! "]"#,
        ),
    ] {
        assert_eq!(text.matches(from).count(), 1, "{from}");
        text = text.replace(from, to);
    }
    let s = parse_script("loose.toml", &text).expect("valid script");
    let after = |inputs: &[Input]| {
        play(&s, &ctx(true), known("A", Language::Zh), inputs)
            .pop()
            .unwrap()
    };
    // Each is longer than the repair word it contains ("broken", "坏了"), so it wins.
    for said in ["The lift broken!", "电梯坏了"] {
        let r = after(&[digits("1"), speech(said)]);
        assert!(
            r.effects.contains(&Effect::Classified {
                category: Category::Other,
                grade: Category::Other.default_grade()
            }),
            "{said}: {:?}",
            r.effects
        );
    }
    let r = after(&[digits("1"), speech("get me the real person")]);
    assert_eq!(dialed(&r).as_deref(), Some("+862363000000"));
    let r = after(&[speech("English, please")]);
    assert_eq!(r.state.language, Language::En);
    // The recogniser's hints still carry the words as the script writes them.
    let Action::Gather { hints, .. } = &after(&[digits("1")]).actions[0] else {
        panic!("the menu gathers")
    };
    let hints = hints.as_deref().unwrap_or_default();
    assert!(hints.contains("ＬＩＦＴ   Broken!"), "{hints}");
    assert!(hints.contains("电 梯"), "{hints}");
}
