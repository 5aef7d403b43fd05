//! The pure call state machine: one webhook's input and the stored state in, the next
//! state, the TwiML verbs and the effects to store out. No clock, no I/O.

use super::script::{Field, Node, NodeKind, Part, Prompt, Script, TransferTo};
use super::twiml::{Action, Speak};
use super::words;
use crate::domain::{Category, Grade, Language};
use serde::{Deserialize, Serialize};

/// A resident found by the caller's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCaller {
    pub name: String,
    pub language: Language,
    /// The address on file; `None` or blank leads to recording a new one.
    pub address: Option<String>,
}

/// What one webhook brought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// The call's first webhook (`/twilio/voice`).
    Start { known: Option<KnownCaller> },
    /// `Digits` from a `<Gather>` (or the key that ended a `<Record>`).
    Digits(String),
    /// `SpeechResult` from a `<Gather>`.
    Speech(String),
    /// `RecordingUrl` (and `TranscriptionText` when the provider sends it at once).
    Recording {
        url: String,
        transcription: Option<String>,
    },
    /// Nothing pressed or said (the `<Redirect>` after a `<Gather>` or `<Record>`).
    NoInput,
    /// `DialCallStatus` from a `<Dial>`'s action.
    DialResult { answered: bool },
}

impl Input {
    /// The input of a step webhook (not the first: that one is `Input::Start`, whose
    /// known caller only the database knows) from Twilio's form fields.
    ///
    /// `DialCallStatus` wins (`completed`/`answered` mean answered); then a `RecordingUrl`
    /// unless the recording was ended by a key other than `#` (the operator and repeat
    /// keys end a recording: that key is the input); then `Digits`; then `SpeechResult`;
    /// else no input.
    pub fn from_twilio<'a>(field: impl Fn(&str) -> Option<&'a str>) -> Input {
        let get = |k: &str| field(k).map(str::trim).filter(|v| !v.is_empty());
        if let Some(status) = get("DialCallStatus") {
            return Input::DialResult {
                answered: matches!(status, "completed" | "answered"),
            };
        }
        let digits = get("Digits").filter(|d| *d != "hangup");
        let pressed = digits.and_then(words::key);
        if let Some(url) = get("RecordingUrl")
            && pressed.is_none()
        {
            return Input::Recording {
                url: url.to_string(),
                transcription: get("TranscriptionText").map(str::to_string),
            };
        }
        if let Some(d) = digits {
            return Input::Digits(d.to_string());
        }
        match get("SpeechResult") {
            Some(s) => Input::Speech(s.to_string()),
            None => Input::NoInput,
        }
    }
}

/// What the HTTP layer knows at this moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    /// `operators.phone` is within `operators.hours` and not a closed date.
    pub staffed: bool,
    pub operators_phone: Option<String>,
    pub emergency_number: String,
    /// Path every step posts to, e.g. `/twilio/voice/step`; `?seq=N` is appended.
    pub action_base: String,
}

/// What the call has taught us so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Learned {
    pub known: bool,
    pub name: Option<String>,
    pub address: Option<String>,
    pub address_confirmed: bool,
    pub category: Option<Category>,
    pub grade: Option<Grade>,
    pub name_recording: Option<String>,
    pub address_recording: Option<String>,
    pub description_recording: Option<String>,
    pub voicemail_recording: Option<String>,
    pub emergency: bool,
    pub operator_requested: bool,
    pub finished: bool,
}

/// The state stored per `CallSid` between webhooks (as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallState {
    pub node: String,
    pub language: Language,
    /// Misses (no input, wrong key) at the current node.
    pub misses: u32,
    /// Incremented by every step; action URLs carry it as `seq`.
    pub seq: u64,
    /// The call has been told goodbye or handed on for good.
    pub ended: bool,
    pub learned: Learned,
}

impl Default for CallState {
    fn default() -> Self {
        CallState {
            node: String::new(),
            language: Language::Zh,
            misses: 0,
            seq: 0,
            ended: false,
            learned: Learned::default(),
        }
    }
}

/// What the HTTP layer must store or do besides answering with TwiML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    Classified {
        category: Category,
        grade: Grade,
    },
    AddressConfirmed,
    NewAddressRecording {
        url: String,
    },
    NameRecording {
        url: String,
    },
    Description {
        recording_url: String,
        transcription: Option<String>,
    },
    /// Category `emergency`, grade red, transferred, escalated (`emergency`), operators alerted.
    Emergency,
    /// The caller asked for (or was sent to) an operator: escalate with `operator`.
    OperatorRequested,
    /// A message for the operators: a call-back request.
    Voicemail {
        recording_url: String,
    },
    /// The caller chose another language (the resident's language may be updated).
    LanguageChosen {
        language: Language,
    },
    /// The call is over as far as the IVR is concerned.
    Finished,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub state: CallState,
    pub actions: Vec<Action>,
    pub effects: Vec<Effect>,
}

/// One step of a call. Total: any state (even from another script version) and any
/// input give a non-empty answer.
pub fn step(script: &Script, state: &CallState, input: &Input, ctx: &StepContext) -> StepResult {
    let mut run = Run {
        script,
        ctx,
        state: state.clone(),
        actions: Vec::new(),
        effects: Vec::new(),
    };
    run.state.seq = state.seq.saturating_add(1);
    match input {
        Input::Start { known } => run.start(known.as_ref()),
        _ if run.state.ended => run.actions.push(Action::Hangup),
        _ if script.node(&state.node).is_none() => run.restart(),
        _ if run.state.seq > script.max_steps => run.over_budget(input),
        _ => run.answer(input),
    }
    if !run.actions.iter().any(Action::is_final) {
        // Unreachable with a validated script; never leave Twilio without a next verb.
        run.actions.push(Action::Hangup);
    }
    StepResult {
        state: run.state,
        actions: run.actions,
        effects: run.effects,
    }
}

struct Run<'a> {
    script: &'a Script,
    ctx: &'a StepContext,
    state: CallState,
    actions: Vec<Action>,
    effects: Vec<Effect>,
}

fn with_query(base: &str, path_suffix: &str, query: &str) -> String {
    let (path, existing) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    match existing {
        Some(q) if !q.is_empty() => format!("{path}{path_suffix}?{q}&{query}"),
        _ => format!("{path}{path_suffix}?{query}"),
    }
}

impl<'a> Run<'a> {
    fn action_url(&self) -> String {
        with_query(
            &self.ctx.action_base,
            "",
            &format!("seq={}", self.state.seq),
        )
    }

    /// Borrowed from the script, not from `self`: no node (with its word lists) is
    /// cloned per step.
    fn node(&self) -> Option<&'a Node> {
        let script: &'a Script = self.script;
        script.node(&self.state.node)
    }

    fn start(&mut self, known: Option<&KnownCaller>) {
        let seq = self.state.seq;
        self.state = CallState {
            seq,
            language: self.script.default_language(),
            ..CallState::default()
        };
        let mut entry = self.script.start.unknown.clone();
        if let Some(k) = known {
            if self.script.languages.contains(&k.language) {
                self.state.language = k.language;
            }
            let l = &mut self.state.learned;
            l.known = true;
            l.name = Some(k.name.clone()).filter(|n| !n.trim().is_empty());
            l.address = k.address.clone().filter(|a| !a.trim().is_empty());
            entry = match (&l.address, &self.script.start.known_no_address) {
                (Some(_), _) => self.script.start.known.clone(),
                (None, Some(n)) => n.clone(),
                (None, None) => self.script.start.unknown.clone(),
            };
        }
        self.enter(&entry, 0);
    }

    /// The state names a node this script lacks (the script changed mid-call).
    fn restart(&mut self) {
        let entry = if self.state.learned.known && self.state.learned.address.is_some() {
            self.script.start.known.clone()
        } else {
            self.script.start.unknown.clone()
        };
        self.enter(&entry, 0);
    }

    fn over_budget(&mut self, input: &Input) {
        let node = self.node();
        match (input, node.map(|n| &n.kind)) {
            (Input::DialResult { answered: true }, Some(NodeKind::Transfer { .. })) => {
                return self.finish();
            }
            (Input::Recording { url, transcription }, Some(NodeKind::Record { field, .. })) => {
                self.recorded(*field, url, transcription.clone());
            }
            _ => {}
        }
        if !self.state.learned.emergency && self.is_emergency(input) {
            let e = self.script.emergency.clone();
            return self.enter(&e, 0);
        }
        if !self.state.learned.operator_requested {
            let o = self.script.operator.clone();
            self.enter(&o, 0);
        } else {
            let g = self.script.goodbye.clone();
            self.enter(&g, 0);
        }
    }

    fn is_emergency(&self, input: &Input) -> bool {
        match input {
            Input::Digits(d) => words::key(d).as_deref() == Some(&self.script.keys.emergency),
            Input::Speech(t) => self.script.hear(t).emergency(),
            _ => false,
        }
    }

    fn answer(&mut self, input: &Input) {
        let Some(node) = self.node() else {
            return self.restart();
        };
        match (input, &node.kind) {
            (Input::DialResult { answered }, NodeKind::Transfer { fallback, .. }) => {
                if *answered {
                    self.finish()
                } else {
                    self.enter(fallback, 0)
                }
            }
            // A stray webhook while dialing: carry on as if nobody answered.
            (_, NodeKind::Transfer { fallback, .. }) => self.enter(fallback, 0),
            (_, NodeKind::Hangup { .. }) => self.finish(),
            (Input::Recording { url, transcription }, NodeKind::Record { field, next, .. }) => {
                self.recorded(*field, url, transcription.clone());
                self.enter(next, 0)
            }
            (Input::Digits(d), _) => match words::key(d) {
                Some(k) => self.pressed(&k, node),
                None => self.miss(node),
            },
            (Input::Speech(t), _) => self.said(t, node),
            _ => self.miss(node),
        }
    }

    fn recorded(&mut self, field: Field, url: &str, transcription: Option<String>) {
        let url = url.to_string();
        let l = &mut self.state.learned;
        let effect = match field {
            Field::Name => {
                l.name_recording = Some(url.clone());
                Effect::NameRecording { url }
            }
            Field::Address => {
                l.address_recording = Some(url.clone());
                Effect::NewAddressRecording { url }
            }
            Field::Description => {
                l.description_recording = Some(url.clone());
                Effect::Description {
                    recording_url: url,
                    transcription,
                }
            }
            Field::Voicemail => {
                l.voicemail_recording = Some(url.clone());
                Effect::Voicemail { recording_url: url }
            }
        };
        self.effects.push(effect);
    }

    fn pressed(&mut self, key: &str, node: &Node) {
        let keys = &self.script.keys;
        if key == keys.operator {
            let o = self.script.operator.clone();
            return self.enter(&o, 0);
        }
        if key == keys.repeat {
            return self.show(node, 0);
        }
        if key == keys.emergency {
            let e = self.script.emergency.clone();
            return self.enter(&e, 0);
        }
        if keys.language.as_deref() == Some(key) {
            let langs = &self.script.languages;
            let i = langs
                .iter()
                .position(|l| *l == self.state.language)
                .unwrap_or(0);
            let next = langs[(i + 1) % langs.len()];
            return self.switch_language(next, node);
        }
        match &node.kind {
            NodeKind::Menu { choices, .. } => {
                if let Some(c) = choices.iter().find(|c| c.key == key) {
                    return self.enter(&c.goto, 0);
                }
            }
            NodeKind::YesNo { .. } if key == "1" => return self.answered_yes_no(true, node),
            NodeKind::YesNo { .. } if key == "2" => return self.answered_yes_no(false, node),
            _ => {}
        }
        self.miss(node)
    }

    fn said(&mut self, text: &str, node: &Node) {
        // Read once against every word list; the lists are then asked in this order.
        let script: &'a Script = self.script;
        let heard = script.hear(text);
        if heard.emergency() {
            let e = script.emergency.clone();
            return self.enter(&e, 0);
        }
        if heard.operator() {
            let o = script.operator.clone();
            return self.enter(&o, 0);
        }
        let switch = script
            .words
            .switch
            .keys()
            .copied()
            .filter(|l| *l != self.state.language && script.languages.contains(l))
            .find(|l| heard.switch(*l));
        if let Some(l) = switch {
            return self.switch_language(l, node);
        }
        if heard.repeat() {
            return self.show(node, 0);
        }
        if let Some(d) = heard.spoken_digit() {
            return self.pressed(&d.to_string(), node);
        }
        match &node.kind {
            NodeKind::Menu { choices, .. } => {
                let mut best: Option<(usize, &str)> = None;
                for (c, len) in choices.iter().zip(heard.choices(node)) {
                    if let Some(len) = len
                        && best.is_none_or(|(b, _)| len > b)
                    {
                        best = Some((len, &c.goto));
                    }
                }
                if let Some((_, goto)) = best {
                    let goto = goto.to_string();
                    return self.enter(&goto, 0);
                }
            }
            NodeKind::YesNo { .. } => match (heard.yes(), heard.no()) {
                (Some(y), Some(n)) if y > n => return self.answered_yes_no(true, node),
                (Some(_), None) => return self.answered_yes_no(true, node),
                (_, Some(_)) => return self.answered_yes_no(false, node),
                _ => {}
            },
            _ => {}
        }
        self.miss(node)
    }

    fn answered_yes_no(&mut self, yes: bool, node: &Node) {
        let NodeKind::YesNo {
            yes: y,
            no: n,
            confirms_address,
            ..
        } = &node.kind
        else {
            return self.miss(node);
        };
        if yes && *confirms_address {
            self.state.learned.address_confirmed = true;
            self.effects.push(Effect::AddressConfirmed);
        }
        let target = if yes { y } else { n };
        self.enter(target, 0)
    }

    fn switch_language(&mut self, lang: Language, node: &Node) {
        if lang != self.state.language {
            self.state.language = lang;
            self.effects.push(Effect::LanguageChosen { language: lang });
        }
        self.show(node, 0)
    }

    fn miss(&mut self, node: &Node) {
        self.state.misses = self.state.misses.saturating_add(1);
        if self.state.misses < self.script.max_misses {
            return self.show(node, 0);
        }
        // The voicemail is where the operator path ends: leaving it means goodbye.
        let target = match &node.kind {
            NodeKind::Record {
                field: Field::Voicemail,
                next,
                ..
            } => next.clone(),
            _ if self.state.learned.operator_requested && !self.staffed() => {
                self.script.goodbye.clone()
            }
            _ => self.script.operator.clone(),
        };
        self.enter(&target, 0)
    }

    fn staffed(&self) -> bool {
        self.ctx.staffed
            && self
                .ctx
                .operators_phone
                .as_deref()
                .is_some_and(|p| !p.trim().is_empty())
    }

    fn finish(&mut self) {
        self.actions.push(Action::Hangup);
        self.end();
    }

    fn end(&mut self) {
        self.state.ended = true;
        if !self.state.learned.finished {
            self.state.learned.finished = true;
            self.effects.push(Effect::Finished);
        }
    }

    /// Moves to a node (resetting misses) and shows it.
    fn enter(&mut self, name: &str, hops: usize) {
        let script: &'a Script = self.script;
        let Some(node) = script.node(name) else {
            return self.finish();
        };
        if node.name != self.state.node {
            self.state.misses = 0;
        }
        self.state.node = node.name.clone();
        self.show(node, hops)
    }

    fn speech_rate(&self) -> u32 {
        let rates = &self.script.rates;
        let i = (self.state.misses as usize).min(rates.len().saturating_sub(1));
        rates.get(i).copied().unwrap_or(100)
    }

    fn fill(&self, text: &str) -> String {
        let l = &self.state.learned;
        text.replace("{name}", l.name.as_deref().unwrap_or(""))
            .replace("{address}", l.address.as_deref().unwrap_or(""))
    }

    fn speak(&self, prompt: &Prompt) -> Vec<Speak> {
        let rate = self.speech_rate();
        prompt
            .parts(self.state.language)
            .iter()
            .map(|p| match p {
                Part::Say {
                    text,
                    voice,
                    language,
                } => {
                    let lang = language.unwrap_or(self.state.language);
                    Speak::Say {
                        text: self.fill(text),
                        language: lang.speech_code().to_string(),
                        voice: voice
                            .clone()
                            .or_else(|| self.script.voices.get(&lang).cloned()),
                        rate: Some(rate),
                    }
                }
                Part::Play { url } => Speak::Play { url: url.clone() },
            })
            .collect()
    }

    /// The node's prompt (after "sorry" when the caller missed) as a list of speech.
    fn prompt_with_sorry(&self, prompt: &Prompt) -> Vec<Speak> {
        let mut out = Vec::new();
        if self.state.misses > 0
            && let Some(sorry) = &self.script.sorry
        {
            out.extend(self.speak(sorry));
        }
        out.extend(self.speak(prompt));
        out
    }

    fn hints(&self, node: &Node) -> Option<String> {
        let w = &self.script.words;
        let mut list: Vec<&str> = match &node.kind {
            NodeKind::Menu { choices, .. } => choices
                .iter()
                .flat_map(|c| c.words.iter().map(String::as_str))
                .collect(),
            NodeKind::YesNo { .. } => w.yes.iter().chain(&w.no).map(String::as_str).collect(),
            _ => Vec::new(),
        };
        list.extend(w.emergency.iter().map(String::as_str));
        (!list.is_empty()).then(|| list.join(", "))
    }

    fn show(&mut self, node: &Node, hops: usize) {
        if hops > self.script.nodes.len() {
            return self.finish();
        }
        let url = self.action_url();
        match &node.kind {
            NodeKind::Menu { prompt, .. } | NodeKind::YesNo { prompt, .. } => {
                self.actions.push(Action::Gather {
                    prompt: self.prompt_with_sorry(prompt),
                    language: self.state.language.speech_code().to_string(),
                    timeout_secs: node.timeout_secs,
                    action: url.clone(),
                    hints: self.hints(node),
                });
                // Twilio falls through to the next verb when nothing was gathered.
                self.actions.push(Action::Redirect { url });
            }
            NodeKind::Record {
                prompt,
                field,
                max_secs,
                transcribe,
                ..
            } => {
                let speech = self.prompt_with_sorry(prompt);
                self.actions.extend(speech.into_iter().map(Action::Speak));
                let keys = &self.script.keys;
                self.actions.push(Action::Record {
                    action: url.clone(),
                    max_secs: *max_secs,
                    timeout_secs: node.timeout_secs,
                    finish_on_key: format!("#{}{}", keys.operator, keys.repeat),
                    transcribe_callback: transcribe.then(|| {
                        with_query(
                            &self.ctx.action_base,
                            "/transcription",
                            &format!("seq={}&what={}", self.state.seq, field.as_str()),
                        )
                    }),
                });
                // An empty recording does not call the action: it falls through to here.
                self.actions.push(Action::Redirect { url });
            }
            NodeKind::Classify {
                prompt,
                category,
                grade,
                next,
            } => {
                self.state.learned.category = Some(*category);
                self.state.learned.grade = Some(*grade);
                self.effects.push(Effect::Classified {
                    category: *category,
                    grade: *grade,
                });
                if let Some(p) = prompt {
                    let speech = self.speak(p);
                    self.actions.extend(speech.into_iter().map(Action::Speak));
                }
                let next = next.clone();
                self.enter(&next, hops + 1)
            }
            NodeKind::Transfer {
                prompt,
                to,
                fallback,
                ring_secs,
            } => {
                let number = match to {
                    TransferTo::Emergency => {
                        if !self.state.learned.emergency {
                            self.state.learned.emergency = true;
                            self.effects.push(Effect::Emergency);
                        }
                        Some(self.ctx.emergency_number.clone()).filter(|n| !n.trim().is_empty())
                    }
                    TransferTo::Operator => {
                        if !self.state.learned.operator_requested {
                            self.state.learned.operator_requested = true;
                            self.effects.push(Effect::OperatorRequested);
                        }
                        self.ctx.operators_phone.clone().filter(|_| self.staffed())
                    }
                };
                match number {
                    Some(number) => {
                        if let Some(p) = prompt {
                            let speech = self.speak(p);
                            self.actions.extend(speech.into_iter().map(Action::Speak));
                        }
                        self.actions.push(Action::Dial {
                            number,
                            action: url,
                            timeout_secs: *ring_secs,
                        });
                    }
                    None => {
                        let fallback = fallback.clone();
                        self.enter(&fallback, hops + 1)
                    }
                }
            }
            NodeKind::Hangup { prompt } => {
                let speech = self.speak(prompt);
                self.actions.extend(speech.into_iter().map(Action::Speak));
                self.finish()
            }
        }
    }
}
