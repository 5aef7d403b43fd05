//! The IVR: the script format and its validation (`script`), the pure call state
//! machine (`engine`), the caller's words and keys (`words`) and TwiML rendering
//! (`twiml`). Values in, values out: no HTTP, no database, no clock.
//!
//! How the HTTP layer drives a call:
//! 1. `/twilio/voice`: look up the resident by `From`, then
//!    `step(&script, &CallState::default(), &Input::Start { known }, &ctx)`.
//! 2. Store `result.state` as JSON under the `CallSid`, apply `result.effects` in the same
//!    transaction, answer `render(&result.actions)` and keep that TwiML with its `seq`.
//! 3. Every later webhook arrives at `ctx.action_base?seq=N`. When `N` equals the stored
//!    state's `seq`, it is new: `step` with `Input::from_twilio(…)`. When `N` is lower, it
//!    is Twilio retrying a step already taken: answer the TwiML stored for seq `N + 1`
//!    and change nothing.
//! 4. `…/transcription?seq=N&what=description` (and `name`, `address`, `voicemail`) is
//!    Twilio's `transcribeCallback`: it carries `TranscriptionText` for the recording
//!    with that `RecordingUrl`; it is not a call step.

mod engine;
mod script;
mod twiml;
mod words;

#[cfg(test)]
mod tests;

pub use engine::{CallState, Effect, Input, KnownCaller, Learned, StepContext, StepResult, step};
pub use script::{
    Choice, Field, GlobalKeys, GlobalWords, Node, NodeKind, Part, Prompt, Script, ScriptError,
    Start, TransferTo, parse_script,
};
pub use twiml::{Action, Speak, render};

use std::path::Path;

/// The shipped script, built into the binary for when `ivr.scripts_dir` does not exist.
pub const DEFAULT_SCRIPT: &str = include_str!("../../ivr-scripts/default.toml");

/// The name the built-in script's errors carry.
pub const DEFAULT_SCRIPT_NAME: &str = "default.toml (built in)";

/// The built-in script. It is checked by the tests, so this cannot fail in a release.
pub fn default_script() -> Result<Script, Vec<ScriptError>> {
    parse_script(DEFAULT_SCRIPT_NAME, DEFAULT_SCRIPT)
}

fn whole(file: impl Into<String>, message: impl Into<String>) -> ScriptError {
    ScriptError {
        file: file.into(),
        line: 0,
        message: message.into(),
    }
}

/// The script `entry` (`{dir}/{entry}.toml`) that answers calls; the built-in default
/// when `dir` does not exist (CONTRACT.md: "A missing folder means the copy of the
/// default script built into the binary").
pub fn load(dir: &Path, entry: &str) -> Result<Script, Vec<ScriptError>> {
    if !dir.exists() {
        return default_script();
    }
    let path = dir.join(format!("{entry}.toml"));
    let name = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_script(&name, &text),
        Err(e) => Err(vec![whole(
            name,
            format!("cannot read the script named by `ivr.entry` (`{entry}`): {e}"),
        )]),
    }
}

/// Checks every `*.toml` file in `dir`, in name order; errors of all files together.
pub fn check_dir(dir: &Path) -> Vec<ScriptError> {
    check_command(dir).1
}

/// For `hotline580 scripts check [DIR]`: how many files passed, and every error
/// (print each with `{}`: `FILE:LINE: what is wrong`). A missing or empty folder is an
/// error here, though the service would fall back to the built-in script.
pub fn check_command(dir: &Path) -> (usize, Vec<ScriptError>) {
    let shown = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return (
                0,
                vec![whole(
                    shown,
                    format!(
                        "cannot read the folder ({e}); the service would use the built-in default script"
                    ),
                )],
            );
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return (0, vec![whole(shown, "no `*.toml` script in this folder")]);
    }
    let mut ok = 0;
    let mut errors = Vec::new();
    for path in files {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_script(&name, &text) {
                Ok(_) => ok += 1,
                Err(e) => errors.extend(e),
            },
            Err(e) => errors.push(whole(name, format!("cannot read: {e}"))),
        }
    }
    (ok, errors)
}
