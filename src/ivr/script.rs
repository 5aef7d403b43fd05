//! The IVR script format (TOML, documented at the top of `ivr-scripts/default.toml`),
//! its parsing with spans and its validation. A [`Script`] only exists validated:
//! the engine may rely on every node it names existing and every prompt having every
//! declared language.

use super::words::{Found, Lexicon, Utterance};
use crate::domain::{Category, Grade, Language};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// One thing wrong with a script, located as a text editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file or folder.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ScriptError {}

/// The keys every step understands, whatever node the caller is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalKeys {
    pub operator: String,
    pub repeat: String,
    pub emergency: String,
    /// Switches to the next declared language and repeats the prompt; `None` disables.
    pub language: Option<String>,
}

/// Words recognised in speech at every step (and `yes`/`no` at yes/no nodes), all
/// languages together: a caller may mix them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalWords {
    pub emergency: Vec<String>,
    pub operator: Vec<String>,
    pub repeat: Vec<String>,
    pub yes: Vec<String>,
    pub no: Vec<String>,
    /// Saying one of these switches the call to that language.
    pub switch: BTreeMap<Language, Vec<String>>,
}

/// One piece of a prompt: speech synthesis or an audio file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Say {
        text: String,
        /// Overrides the script's voice for the language.
        voice: Option<String>,
        /// Spoken in another language than the call's (e.g. "For English, press 8").
        language: Option<Language>,
    },
    Play {
        url: String,
    },
}

/// A prompt in every declared language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt(pub BTreeMap<Language, Vec<Part>>);

impl Prompt {
    pub fn parts(&self, lang: Language) -> &[Part] {
        self.0
            .get(&lang)
            .or_else(|| self.0.values().next())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// What a recording node records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Address,
    Description,
    Voicemail,
}

impl Field {
    pub fn as_str(&self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Address => "address",
            Field::Description => "description",
            Field::Voicemail => "voicemail",
        }
    }
}

/// Where a transfer node dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferTo {
    Operator,
    Emergency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub key: String,
    pub goto: String,
    pub words: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Asks, then follows the key pressed or the words said.
    Menu {
        prompt: Prompt,
        choices: Vec<Choice>,
    },
    /// `1` (or a yes word) is yes, `2` (or a no word) is no.
    YesNo {
        prompt: Prompt,
        yes: String,
        no: String,
        /// A yes confirms the address on file.
        confirms_address: bool,
    },
    Record {
        prompt: Prompt,
        field: Field,
        max_secs: u32,
        transcribe: bool,
        next: String,
    },
    /// Sets category and grade, says its optional prompt and moves on at once.
    Classify {
        prompt: Option<Prompt>,
        category: Category,
        grade: Grade,
        next: String,
    },
    /// Dials; `fallback` when unstaffed (operator) or unanswered.
    Transfer {
        prompt: Option<Prompt>,
        to: TransferTo,
        fallback: String,
        ring_secs: u32,
    },
    /// Says its prompt and hangs up: the call is finished.
    Hangup { prompt: Prompt },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub line: usize,
    pub timeout_secs: u32,
    pub kind: NodeKind,
}

impl Node {
    /// Nodes this one can lead to.
    pub fn exits(&self) -> Vec<&str> {
        match &self.kind {
            NodeKind::Menu { choices, .. } => choices.iter().map(|c| c.goto.as_str()).collect(),
            NodeKind::YesNo { yes, no, .. } => vec![yes, no],
            NodeKind::Record { next, .. } | NodeKind::Classify { next, .. } => vec![next],
            NodeKind::Transfer { fallback, .. } => vec![fallback],
            NodeKind::Hangup { .. } => vec![],
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Transfer { .. } | NodeKind::Hangup { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub known: String,
    pub unknown: String,
    pub known_no_address: Option<String>,
}

/// A validated script. Build it with [`parse_script`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub file: String,
    /// The first is the language of unknown callers.
    pub languages: Vec<Language>,
    pub start: Start,
    pub operator: String,
    pub emergency: String,
    pub goodbye: String,
    pub keys: GlobalKeys,
    pub words: GlobalWords,
    pub voices: BTreeMap<Language, String>,
    pub sorry: Option<Prompt>,
    /// Speech rate in percent at 0, 1, 2… misses; the last repeats.
    pub rates: Vec<u32>,
    pub max_misses: u32,
    pub max_steps: u64,
    pub nodes: BTreeMap<String, Node>,
    /// `words` and every menu choice's words, normalised once at load for
    /// [`Script::hear`]. Built by [`parse_script`]: a script whose lists are edited
    /// afterwards must be parsed again.
    hearing: Hearing,
}

/// The numbers of the script's word lists in its [`Lexicon`]: the global lists, then
/// `switch` in its order, then each menu's choices in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hearing {
    lexicon: Lexicon,
    /// Each menu node's first choice list (the others follow it).
    choices: BTreeMap<String, usize>,
}

const EMERGENCY: usize = 0;
const OPERATOR: usize = 1;
const REPEAT: usize = 2;
const YES: usize = 3;
const NO: usize = 4;
const SWITCH: usize = 5;

impl Hearing {
    fn new(words: &GlobalWords, nodes: &BTreeMap<String, Node>) -> Hearing {
        let mut lists: Vec<&[String]> = vec![
            &words.emergency,
            &words.operator,
            &words.repeat,
            &words.yes,
            &words.no,
        ];
        lists.extend(words.switch.values().map(Vec::as_slice));
        let mut choices = BTreeMap::new();
        for node in nodes.values() {
            if let NodeKind::Menu { choices: c, .. } = &node.kind {
                choices.insert(node.name.clone(), lists.len());
                lists.extend(c.iter().map(|c| c.words.as_slice()));
            }
        }
        Hearing {
            lexicon: Lexicon::new(lists),
            choices,
        }
    }
}

/// What the caller said, read once against every word list of the script (the rules of
/// `words::best_match` for each list).
pub(crate) struct Heard<'s> {
    script: &'s Script,
    utterance: Utterance,
    lists: Found,
}

impl Heard<'_> {
    pub fn emergency(&self) -> bool {
        self.lists.best(EMERGENCY).is_some()
    }

    pub fn operator(&self) -> bool {
        self.lists.best(OPERATOR).is_some()
    }

    pub fn repeat(&self) -> bool {
        self.lists.best(REPEAT).is_some()
    }

    /// The length of the longest yes word said.
    pub fn yes(&self) -> Option<usize> {
        self.lists.best(YES)
    }

    /// The length of the longest no word said.
    pub fn no(&self) -> Option<usize> {
        self.lists.best(NO)
    }

    /// A word switching to `language` was said.
    pub fn switch(&self, language: Language) -> bool {
        self.script
            .words
            .switch
            .keys()
            .position(|l| *l == language)
            .is_some_and(|i| self.lists.best(SWITCH + i).is_some())
    }

    /// For each choice of the menu `node`, in order, the length of its longest word said.
    pub fn choices(&self, node: &Node) -> Vec<Option<usize>> {
        match (&node.kind, self.script.hearing.choices.get(&node.name)) {
            (NodeKind::Menu { choices, .. }, Some(first)) => (0..choices.len())
                .map(|i| self.lists.best(first + i))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The whole utterance is just this digit ("一", "press one").
    pub fn spoken_digit(&self) -> Option<char> {
        self.utterance.spoken_digit()
    }
}

impl Script {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Reads what the caller said once, against all the script's words.
    pub(crate) fn hear(&self, text: &str) -> Heard<'_> {
        let utterance = Utterance::new(text);
        let lists = self.hearing.lexicon.hear(&utterance);
        Heard {
            script: self,
            utterance,
            lists,
        }
    }

    pub fn default_language(&self) -> Language {
        self.languages.first().copied().unwrap_or(Language::Zh)
    }
}

// ---------------------------------------------------------------- raw format

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    script: Spanned<RawHeader>,
    #[serde(default)]
    words: RawWords,
    nodes: Spanned<BTreeMap<String, Spanned<RawNode>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    languages: Spanned<Vec<Spanned<String>>>,
    start: Spanned<RawStart>,
    operator: Spanned<String>,
    emergency: Spanned<String>,
    goodbye: Spanned<String>,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    voice: BTreeMap<String, Spanned<String>>,
    sorry: Option<Spanned<RawPrompt>>,
    timeout_secs: Option<Spanned<i64>>,
    rates: Option<Spanned<Vec<i64>>>,
    max_misses: Option<Spanned<i64>>,
    max_steps: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStart {
    known: Spanned<String>,
    unknown: Spanned<String>,
    known_no_address: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    operator: Option<Spanned<String>>,
    repeat: Option<Spanned<String>>,
    emergency: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
}

type RawWordList = BTreeMap<String, Spanned<Vec<String>>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWords {
    #[serde(default)]
    emergency: RawWordList,
    #[serde(default)]
    operator: RawWordList,
    #[serde(default)]
    repeat: RawWordList,
    #[serde(default)]
    yes: RawWordList,
    #[serde(default)]
    no: RawWordList,
    #[serde(default)]
    switch: RawWordList,
}

type RawPrompt = BTreeMap<String, Spanned<RawText>>;

#[derive(Deserialize)]
#[serde(untagged)]
enum RawText {
    Text(String),
    Piece(RawPiece),
    Many(Vec<RawPieceOrText>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPieceOrText {
    Text(String),
    Piece(RawPiece),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPiece {
    say: Option<String>,
    play: Option<String>,
    voice: Option<String>,
    language: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    kind: Spanned<String>,
    prompt: Option<Spanned<RawPrompt>>,
    choices: Option<Vec<Spanned<RawChoice>>>,
    yes: Option<Spanned<String>>,
    no: Option<Spanned<String>>,
    confirms: Option<Spanned<String>>,
    field: Option<Spanned<String>>,
    max_secs: Option<Spanned<i64>>,
    transcribe: Option<Spanned<bool>>,
    next: Option<Spanned<String>>,
    category: Option<Spanned<String>>,
    grade: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    fallback: Option<Spanned<String>>,
    ring_secs: Option<Spanned<i64>>,
    timeout_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChoice {
    key: Spanned<String>,
    goto: Spanned<String>,
    #[serde(default)]
    words: RawWordList,
}

// ---------------------------------------------------------------- parsing

/// Byte offset → 1-based line number.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

struct Checker<'t> {
    file: String,
    text: &'t str,
    errors: Vec<ScriptError>,
}

impl Checker<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = line_of(self.text, span.start);
        self.errors.push(ScriptError {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }

    fn err_line(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(ScriptError {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }

    fn language(&mut self, word: &str, span: Range<usize>) -> Option<Language> {
        match word.parse::<Language>() {
            Ok(l) => Some(l),
            Err(e) => {
                self.err(span, e.to_string());
                None
            }
        }
    }

    fn positive(&mut self, v: &Option<Spanned<i64>>, what: &str, default: u32) -> u32 {
        match v {
            None => default,
            Some(s) if (1..=3600).contains(s.get_ref()) => *s.get_ref() as u32,
            Some(s) => {
                self.err(
                    s.span(),
                    format!("`{what}` must be between 1 and 3600, not {}", s.get_ref()),
                );
                default
            }
        }
    }

    fn key(&mut self, k: &Spanned<String>) -> String {
        let key = k.get_ref().trim().to_string();
        let ok = key.chars().count() == 1
            && key
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
        if !ok {
            self.err(
                k.span(),
                format!(
                    "key `{}` is not one telephone key (0-9, * or #)",
                    k.get_ref()
                ),
            );
        }
        key
    }

    fn words(&mut self, raw: &RawWordList, langs: &[Language]) -> Vec<String> {
        let mut out = Vec::new();
        for (lang, list) in raw {
            if let Ok(l) = lang.parse::<Language>() {
                if !langs.contains(&l) {
                    self.err(
                        list.span(),
                        format!("words in `{lang}`, which the script does not declare"),
                    );
                }
            } else {
                self.err(
                    list.span(),
                    format!("unknown language `{lang}` (expected one of: zh en)"),
                );
            }
            out.extend(
                list.get_ref()
                    .iter()
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty()),
            );
        }
        out
    }

    fn prompt(
        &mut self,
        raw: &Spanned<RawPrompt>,
        owner: &str,
        langs: &[Language],
    ) -> Option<Prompt> {
        let mut prompt = Prompt::default();
        let mut ok = true;
        for (lang, text) in raw.get_ref() {
            let Some(l) = self.language(lang, text.span()) else {
                ok = false;
                continue;
            };
            if !langs.contains(&l) {
                self.err(
                    text.span(),
                    format!("{owner} has a `{lang}` text, a language the script does not declare"),
                );
                ok = false;
                continue;
            }
            let pieces: Vec<RawPieceOrText> = match text.get_ref() {
                RawText::Text(s) => vec![RawPieceOrText::Text(s.clone())],
                RawText::Piece(p) => vec![RawPieceOrText::Piece(RawPiece {
                    say: p.say.clone(),
                    play: p.play.clone(),
                    voice: p.voice.clone(),
                    language: p.language.clone(),
                })],
                RawText::Many(v) => v
                    .iter()
                    .map(|p| match p {
                        RawPieceOrText::Text(s) => RawPieceOrText::Text(s.clone()),
                        RawPieceOrText::Piece(p) => RawPieceOrText::Piece(RawPiece {
                            say: p.say.clone(),
                            play: p.play.clone(),
                            voice: p.voice.clone(),
                            language: p.language.clone(),
                        }),
                    })
                    .collect(),
            };
            let mut parts = Vec::new();
            for piece in pieces {
                match piece {
                    RawPieceOrText::Text(s) if !s.trim().is_empty() => parts.push(Part::Say {
                        text: s,
                        voice: None,
                        language: None,
                    }),
                    RawPieceOrText::Text(_) => {}
                    RawPieceOrText::Piece(p) => match (p.say, p.play) {
                        (Some(say), None) => {
                            let language = match &p.language {
                                Some(w) => self.language(w, text.span()),
                                None => None,
                            };
                            parts.push(Part::Say {
                                text: say,
                                voice: p.voice,
                                language,
                            })
                        }
                        (None, Some(url)) => parts.push(Part::Play { url }),
                        _ => {
                            self.err(
                                text.span(),
                                format!("{owner}: each part has either `say` or `play`"),
                            );
                            ok = false;
                        }
                    },
                }
            }
            if parts.is_empty() {
                self.err(text.span(), format!("{owner} has an empty `{lang}` text"));
                ok = false;
            }
            prompt.0.insert(l, parts);
        }
        for l in langs {
            if !prompt.0.contains_key(l) {
                self.err(
                    raw.span(),
                    format!(
                        "{owner} has no `{l}` text (every prompt needs every language the script declares)"
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(prompt)
    }
}

/// Parses and validates one script; `file_name` is used in the errors.
pub fn parse_script(file_name: &str, text: &str) -> Result<Script, Vec<ScriptError>> {
    let mut c = Checker {
        file: file_name.to_string(),
        text,
        errors: Vec::new(),
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            let message = e.message().lines().next().unwrap_or("invalid TOML").trim();
            c.err_line(line, format!("TOML: {message}"));
            return Err(c.errors);
        }
    };
    let header = raw.script.get_ref();

    // Languages.
    let mut languages = Vec::new();
    for l in header.languages.get_ref() {
        if let Some(lang) = c.language(l.get_ref(), l.span()) {
            if languages.contains(&lang) {
                c.err(l.span(), format!("language `{lang}` declared twice"));
            } else {
                languages.push(lang);
            }
        }
    }
    if languages.is_empty() {
        c.err(header.languages.span(), "`languages` declares no language");
    }
    let langs = languages.clone();

    // Global keys.
    let key_or = |c: &mut Checker, k: &Option<Spanned<String>>, d: &str| match k {
        Some(k) => c.key(k),
        None => d.to_string(),
    };
    let keys = GlobalKeys {
        operator: key_or(&mut c, &header.keys.operator, "0"),
        repeat: key_or(&mut c, &header.keys.repeat, "*"),
        emergency: key_or(&mut c, &header.keys.emergency, "9"),
        language: header.keys.language.as_ref().map(|k| c.key(k)),
    };
    {
        let mut seen: Vec<&str> = Vec::new();
        for k in [&keys.operator, &keys.repeat, &keys.emergency]
            .into_iter()
            .chain(keys.language.as_ref())
        {
            if seen.contains(&k.as_str()) {
                c.err(
                    raw.script.span(),
                    format!("key `{k}` is given two meanings in [script.keys]"),
                );
            }
            seen.push(k);
        }
    }
    let reserved: BTreeMap<String, &'static str> = [
        (keys.operator.clone(), "the operator"),
        (keys.repeat.clone(), "repeat"),
        (keys.emergency.clone(), "emergency"),
    ]
    .into_iter()
    .chain(keys.language.clone().map(|k| (k, "the language switch")))
    .collect();

    // Words.
    let mut switch = BTreeMap::new();
    for (lang, list) in &raw.words.switch {
        if let Some(l) = c.language(lang, list.span()) {
            if !langs.contains(&l) {
                c.err(
                    list.span(),
                    format!("switch words to `{lang}`, which the script does not declare"),
                );
            }
            switch.insert(l, list.get_ref().clone());
        }
    }
    let words = GlobalWords {
        emergency: c.words(&raw.words.emergency, &langs),
        operator: c.words(&raw.words.operator, &langs),
        repeat: c.words(&raw.words.repeat, &langs),
        yes: c.words(&raw.words.yes, &langs),
        no: c.words(&raw.words.no, &langs),
        switch,
    };

    let mut voices = BTreeMap::new();
    for (lang, v) in &header.voice {
        if let Some(l) = c.language(lang, v.span()) {
            voices.insert(l, v.get_ref().clone());
        }
    }
    let sorry = header
        .sorry
        .as_ref()
        .and_then(|p| c.prompt(p, "[script] sorry", &langs));
    let timeout_default = c.positive(&header.timeout_secs, "timeout_secs", 6);
    let max_misses = c.positive(&header.max_misses, "max_misses", 3);
    let max_steps = c.positive(&header.max_steps, "max_steps", 40) as u64;
    let rates = match &header.rates {
        None => vec![90, 75, 60],
        Some(r) => {
            let v: Vec<u32> = r
                .get_ref()
                .iter()
                .filter(|x| (20..=200).contains(*x))
                .map(|x| *x as u32)
                .collect();
            if v.len() != r.get_ref().len() || v.is_empty() {
                c.err(
                    r.span(),
                    "`rates` are percentages between 20 and 200, at least one",
                );
            }
            if v.is_empty() { vec![100] } else { v }
        }
    };

    // Nodes.
    let mut nodes = BTreeMap::new();
    // Every reference, to check after all nodes are known: (name, span, what).
    let mut refs: Vec<(String, Range<usize>, String)> = Vec::new();
    for (name, spanned) in raw.nodes.get_ref() {
        let n = spanned.get_ref();
        let line = line_of(text, n.kind.span().start);
        let owner = format!("node `{name}`");
        let mut take = |c: &mut Checker, f: &Option<Spanned<String>>, field: &str| match f {
            Some(s) => {
                refs.push((
                    s.get_ref().clone(),
                    s.span(),
                    format!("`{field}` of node `{name}`"),
                ));
                Some(s.get_ref().clone())
            }
            None => {
                c.err_line(line, format!("{owner} has no `{field}`: no way out of it"));
                None
            }
        };
        let kind_word = n.kind.get_ref().as_str();
        let allowed: &[&str] = match kind_word {
            "menu" => &["prompt", "choices"],
            "yes_no" => &["prompt", "yes", "no", "confirms"],
            "record" => &["prompt", "field", "max_secs", "transcribe", "next"],
            "classify" => &["prompt", "category", "grade", "next"],
            "transfer" => &["prompt", "to", "fallback", "ring_secs"],
            "hangup" => &["prompt"],
            other => {
                c.err(
                    n.kind.span(),
                    format!(
                        "unknown node kind `{other}` (expected one of: menu yes_no record classify transfer hangup)"
                    ),
                );
                continue;
            }
        };
        let present: [(&str, Option<Range<usize>>); 14] = [
            ("prompt", n.prompt.as_ref().map(|s| s.span())),
            ("choices", None),
            ("yes", n.yes.as_ref().map(|s| s.span())),
            ("no", n.no.as_ref().map(|s| s.span())),
            ("confirms", n.confirms.as_ref().map(|s| s.span())),
            ("field", n.field.as_ref().map(|s| s.span())),
            ("max_secs", n.max_secs.as_ref().map(|s| s.span())),
            ("transcribe", n.transcribe.as_ref().map(|s| s.span())),
            ("next", n.next.as_ref().map(|s| s.span())),
            ("category", n.category.as_ref().map(|s| s.span())),
            ("grade", n.grade.as_ref().map(|s| s.span())),
            ("to", n.to.as_ref().map(|s| s.span())),
            ("fallback", n.fallback.as_ref().map(|s| s.span())),
            ("ring_secs", n.ring_secs.as_ref().map(|s| s.span())),
        ];
        for (field, span) in present {
            if let Some(span) = span
                && !allowed.contains(&field)
            {
                c.err(
                    span,
                    format!("`{field}` does not belong in a `{kind_word}` node"),
                );
            }
        }
        if n.choices.is_some() && kind_word != "menu" {
            c.err_line(
                line,
                format!("`choices` does not belong in a `{kind_word}` node"),
            );
        }
        let timeout_secs = c.positive(&n.timeout_secs, "timeout_secs", timeout_default);
        let needs_prompt = matches!(kind_word, "menu" | "yes_no" | "record" | "hangup");
        let prompt = match &n.prompt {
            Some(p) => c.prompt(p, &owner, &langs),
            None if needs_prompt => {
                c.err_line(line, format!("{owner} has no `prompt`"));
                None
            }
            None => None,
        };
        let prompt_or_default = prompt.clone().unwrap_or_default();
        let kind = match kind_word {
            "menu" => {
                let mut choices = Vec::new();
                let mut seen = BTreeSet::new();
                for ch in n.choices.iter().flatten() {
                    let ch = ch.get_ref();
                    let key = c.key(&ch.key);
                    if let Some(what) = reserved.get(&key) {
                        c.err(
                            ch.key.span(),
                            format!("key `{key}` is {what} at every step; a choice cannot use it"),
                        );
                    } else if !seen.insert(key.clone()) {
                        c.err(
                            ch.key.span(),
                            format!("key `{key}` is used twice in {owner}"),
                        );
                    }
                    refs.push((
                        ch.goto.get_ref().clone(),
                        ch.goto.span(),
                        format!("choice `{key}` of node `{name}`"),
                    ));
                    choices.push(Choice {
                        key,
                        goto: ch.goto.get_ref().clone(),
                        words: c.words(&ch.words, &langs),
                    });
                }
                if choices.is_empty() {
                    c.err_line(line, format!("{owner} has no `choices`: no way out of it"));
                }
                NodeKind::Menu {
                    prompt: prompt_or_default,
                    choices,
                }
            }
            "yes_no" => {
                let yes = take(&mut c, &n.yes, "yes").unwrap_or_default();
                let no = take(&mut c, &n.no, "no").unwrap_or_default();
                let confirms_address = match &n.confirms {
                    None => false,
                    Some(s) if s.get_ref() == "address" => true,
                    Some(s) => {
                        c.err(
                            s.span(),
                            format!("`confirms` can only be `address`, not `{}`", s.get_ref()),
                        );
                        false
                    }
                };
                NodeKind::YesNo {
                    prompt: prompt_or_default,
                    yes,
                    no,
                    confirms_address,
                }
            }
            "record" => {
                let field = match &n.field {
                    None => {
                        c.err_line(line, format!("{owner} has no `field`"));
                        Field::Description
                    }
                    Some(s) => match s.get_ref().as_str() {
                        "name" => Field::Name,
                        "address" => Field::Address,
                        "description" => Field::Description,
                        "voicemail" => Field::Voicemail,
                        other => {
                            c.err(
                                s.span(),
                                format!(
                                    "unknown field `{other}` (expected one of: name address description voicemail)"
                                ),
                            );
                            Field::Description
                        }
                    },
                };
                NodeKind::Record {
                    prompt: prompt_or_default,
                    field,
                    max_secs: c.positive(&n.max_secs, "max_secs", 60),
                    transcribe: n.transcribe.as_ref().is_none_or(|t| *t.get_ref()),
                    next: take(&mut c, &n.next, "next").unwrap_or_default(),
                }
            }
            "classify" => {
                let category = match &n.category {
                    None => {
                        c.err_line(line, format!("{owner} has no `category`"));
                        Category::Other
                    }
                    Some(s) => s.get_ref().parse::<Category>().unwrap_or_else(|e| {
                        c.err(s.span(), e.to_string());
                        Category::Other
                    }),
                };
                let grade = match &n.grade {
                    None => category.default_grade(),
                    Some(s) => s.get_ref().parse::<Grade>().unwrap_or_else(|e| {
                        c.err(s.span(), e.to_string());
                        category.default_grade()
                    }),
                };
                NodeKind::Classify {
                    prompt,
                    category,
                    grade,
                    next: take(&mut c, &n.next, "next").unwrap_or_default(),
                }
            }
            "transfer" => {
                let to = match &n.to {
                    None => {
                        c.err_line(line, format!("{owner} has no `to`"));
                        TransferTo::Operator
                    }
                    Some(s) => match s.get_ref().as_str() {
                        "operator" => TransferTo::Operator,
                        "emergency" => TransferTo::Emergency,
                        other => {
                            c.err(
                                s.span(),
                                format!(
                                    "unknown transfer `{other}` (expected one of: operator emergency)"
                                ),
                            );
                            TransferTo::Operator
                        }
                    },
                };
                NodeKind::Transfer {
                    prompt,
                    to,
                    fallback: take(&mut c, &n.fallback, "fallback").unwrap_or_default(),
                    ring_secs: c.positive(&n.ring_secs, "ring_secs", 30),
                }
            }
            _ => NodeKind::Hangup {
                prompt: prompt_or_default,
            },
        };
        nodes.insert(
            name.clone(),
            Node {
                name: name.clone(),
                line,
                timeout_secs,
                kind,
            },
        );
    }

    // Header references.
    let start = header.start.get_ref();
    for (s, what) in [
        (&start.known, "[script] start.known"),
        (&start.unknown, "[script] start.unknown"),
        (&header.operator, "[script] operator"),
        (&header.emergency, "[script] emergency"),
        (&header.goodbye, "[script] goodbye"),
    ]
    .into_iter()
    .chain(
        start
            .known_no_address
            .as_ref()
            .map(|s| (s, "[script] start.known_no_address")),
    ) {
        refs.push((s.get_ref().clone(), s.span(), what.to_string()));
    }
    for (target, span, what) in &refs {
        if !nodes.contains_key(target) {
            c.err(
                span.clone(),
                format!("{what} names unknown node `{target}`"),
            );
        }
    }
    let expect_kind =
        |c: &mut Checker, s: &Spanned<String>, what: &str, ok: &dyn Fn(&NodeKind) -> bool| {
            if let Some(node) = nodes.get(s.get_ref())
                && !ok(&node.kind)
            {
                c.err(
                    s.span(),
                    format!("[script] {what} must name a {what}-kind node"),
                );
            }
        };
    expect_kind(&mut c, &header.operator, "operator", &|k| {
        matches!(
            k,
            NodeKind::Transfer {
                to: TransferTo::Operator,
                ..
            }
        )
    });
    expect_kind(&mut c, &header.emergency, "emergency", &|k| {
        matches!(
            k,
            NodeKind::Transfer {
                to: TransferTo::Emergency,
                ..
            }
        )
    });
    if let Some(node) = nodes.get(header.goodbye.get_ref())
        && !matches!(node.kind, NodeKind::Hangup { .. })
    {
        c.err(
            header.goodbye.span(),
            "[script] goodbye must name a `hangup` node",
        );
    }

    if c.errors.is_empty() {
        graph_checks(&mut c, &nodes, &refs);
    }

    if !c.errors.is_empty() {
        c.errors.sort_by_key(|e| e.line);
        return Err(c.errors);
    }
    let hearing = Hearing::new(&words, &nodes);
    Ok(Script {
        file: file_name.to_string(),
        languages,
        start: Start {
            known: start.known.get_ref().clone(),
            unknown: start.unknown.get_ref().clone(),
            known_no_address: start.known_no_address.as_ref().map(|s| s.get_ref().clone()),
        },
        operator: header.operator.get_ref().clone(),
        emergency: header.emergency.get_ref().clone(),
        goodbye: header.goodbye.get_ref().clone(),
        keys,
        words,
        voices,
        sorry,
        rates,
        max_misses,
        max_steps,
        nodes,
        hearing,
    })
}

/// Reachability, ways out, and chains of nodes that never wait for the caller.
fn graph_checks(
    c: &mut Checker,
    nodes: &BTreeMap<String, Node>,
    refs: &[(String, Range<usize>, String)],
) {
    // Roots: every header reference (start, operator, emergency, goodbye).
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = refs
        .iter()
        .filter(|(_, _, what)| what.starts_with("[script]"))
        .map(|(t, _, _)| t.as_str())
        .collect();
    while let Some(n) = todo.pop() {
        if reached.insert(n)
            && let Some(node) = nodes.get(n)
        {
            todo.extend(node.exits());
        }
    }
    for node in nodes.values() {
        if !reached.contains(node.name.as_str()) {
            c.err_line(
                node.line,
                format!("node `{}` is unreachable: nothing leads to it", node.name),
            );
        }
    }

    // Ways out: every node must lead to a transfer or a hang-up.
    let mut out: BTreeSet<&str> = nodes
        .values()
        .filter(|n| n.is_terminal())
        .map(|n| n.name.as_str())
        .collect();
    loop {
        let before = out.len();
        for node in nodes.values() {
            if node.exits().iter().any(|e| out.contains(e)) {
                out.insert(&node.name);
            }
        }
        if out.len() == before {
            break;
        }
    }
    for node in nodes.values() {
        if !out.contains(node.name.as_str()) {
            c.err_line(
                node.line,
                format!(
                    "node `{}` has no way out: nothing from it leads to a transfer or a hang-up",
                    node.name
                ),
            );
        }
    }

    // `classify` moves on without waiting: a cycle of them would never answer.
    for node in nodes.values() {
        let mut seen = BTreeSet::new();
        let mut cur = node;
        while let NodeKind::Classify { next, .. } = &cur.kind {
            if !seen.insert(cur.name.as_str()) {
                c.err_line(
                    node.line,
                    format!("node `{}` starts a loop of `classify` nodes", node.name),
                );
                break;
            }
            match nodes.get(next) {
                Some(n) => cur = n,
                None => break,
            }
        }
    }
}
