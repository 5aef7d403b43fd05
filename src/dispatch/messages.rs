//! The texts of every SMS dispatch sends, in Chinese and English, as pure functions.
//!
//! Each is kept near 140 characters (a Chinese SMS of 70 characters is one segment, so a
//! Chinese text stays near two). An offer goes to volunteers who have not accepted yet, so it
//! carries what they need to decide (what, how far, which area, by when, how to answer) and
//! never who: no name, no number, no address. The description comes from a transcript and
//! may itself contain a name or number: the strings in [`OfferText::withhold`] and every run of
//! seven or more digits are masked before it is shortened.

use super::commands::OfferCode;
use crate::domain::{Category, EscalationReason, Grade, Language, PhoneNumber, RequestId};
use jiff::civil::Time;

/// The signature that starts every message (Chinese SMS must carry one in brackets).
const SIGN_ZH: &str = "【580热线】";
const SIGN_EN: &str = "580 Hotline:";

/// How many characters of the description an offer keeps.
pub const OFFER_DESCRIPTION_CHARS_ZH: usize = 24;
pub const OFFER_DESCRIPTION_CHARS_EN: usize = 48;
/// How many characters of the description the accepted volunteer gets.
pub const DETAIL_DESCRIPTION_CHARS: usize = 60;

const MASK: &str = "***";

/// What an offer SMS says.
#[derive(Debug, Clone)]
pub struct OfferText<'a> {
    pub category: Category,
    /// The transcript or the category's text; empty means the category label alone.
    pub description: &'a str,
    pub distance_m: f64,
    /// The area or grid cell, e.g. "网格3" or "Block 7".
    pub area: Option<&'a str>,
    pub code: &'a OfferCode,
    /// The offer's deadline, as the community's local wall-clock time.
    pub deadline: Time,
    /// Strings the description must not reveal: the resident's name and number.
    pub withhold: &'a [&'a str],
}

/// What the volunteer who won the offer is told.
#[derive(Debug, Clone)]
pub struct AssignmentText<'a> {
    pub code: &'a OfferCode,
    pub category: Category,
    pub resident_name: &'a str,
    pub address: &'a str,
    pub phone: &'a PhoneNumber,
    pub description: &'a str,
}

/// What the operators' phone is told when a request needs them.
#[derive(Debug, Clone)]
pub struct EscalationText<'a> {
    pub request_id: RequestId,
    pub reason: EscalationReason,
    pub category: Category,
    pub grade: Grade,
    pub area: Option<&'a str>,
}

fn zh(lang: Language) -> bool {
    lang == Language::Zh
}

/// Collapses whitespace and cuts to `max` characters, ending with "…" when cut.
pub fn shorten(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// Masks every withheld string and every run of seven or more digits (spaces and dashes
/// between digits included, full-width digits too): a phone number read out in a transcript.
pub fn redact(text: &str, withhold: &[&str]) -> String {
    let mut s = text.to_string();
    for w in withhold {
        let w = w.trim();
        if !w.is_empty() {
            s = s.replace(w, MASK);
        }
        // A number may be spoken without its country code: withhold its national digits too.
        if let Some(national) = w.strip_prefix("+86") {
            s = s.replace(national, MASK);
        }
    }
    let is_digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run: digits, with single spaces or dashes between them.
        let (mut j, mut digits, mut end) = (i, 0, i);
        while j < chars.len() {
            if is_digit(chars[j]) {
                digits += 1;
                j += 1;
                end = j;
            } else if matches!(chars[j], ' ' | '-')
                && chars.get(j + 1).copied().is_some_and(is_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        if digits >= 7 {
            out.push_str(MASK);
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    out
}

/// "350 m" / "约350米" under a kilometre (to 10 m), "1.2 km" / "1.2公里" above.
pub fn distance(lang: Language, metres: f64) -> String {
    let m = metres.max(0.0);
    match (zh(lang), m < 995.0) {
        (true, true) => format!("约{}米", ((m / 10.0).round() as u64) * 10),
        (false, true) => format!("{} m", ((m / 10.0).round() as u64) * 10),
        (true, false) => format!("约{:.1}公里", m / 1000.0),
        (false, false) => format!("{:.1} km", m / 1000.0),
    }
}

fn hhmm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// The offer SMS: what, how far, where, the code, the deadline, and how to answer.
pub fn offer(lang: Language, o: &OfferText<'_>) -> String {
    let label = o.category.label(lang);
    let max = if zh(lang) {
        OFFER_DESCRIPTION_CHARS_ZH
    } else {
        OFFER_DESCRIPTION_CHARS_EN
    };
    let desc = shorten(&redact(o.description, o.withhold), max);
    let desc = if desc.is_empty() {
        label.to_string()
    } else {
        desc
    };
    let (code, dist, by) = (o.code, distance(lang, o.distance_m), hhmm(o.deadline));
    if zh(lang) {
        let area = o
            .area
            .map(|a| format!("（{}）", shorten(a, 12)))
            .unwrap_or_default();
        format!(
            "{SIGN_ZH}{label}求助：{desc}。距您{dist}{area}。回复“接 {code}”或YES {code}接单，“不 {code}”或NO {code}不接，{by}前有效。"
        )
    } else {
        let area = o
            .area
            .map(|a| format!(", {}", shorten(a, 20)))
            .unwrap_or_default();
        format!(
            "{SIGN_EN} {label} request: {desc}. {dist} away{area}. Reply YES {code} to accept, NO {code} to decline, by {by}."
        )
    }
}

/// The winner's details: who, where, which number, what; and how to report it done.
pub fn assignment(lang: Language, a: &AssignmentText<'_>) -> String {
    let desc = shorten(a.description, DETAIL_DESCRIPTION_CHARS);
    let (code, name, addr, phone) = (a.code, a.resident_name, a.address, a.phone.as_str());
    if zh(lang) {
        format!(
            "{SIGN_ZH}谢谢您接单{code}！{name}，{addr}，电话{phone}。{desc}。完成后回复“完成 {code}”。"
        )
    } else {
        format!(
            "{SIGN_EN} Thank you, job {code} is yours. {name}, {addr}, tel {phone}. {desc}. Reply DONE {code} when finished."
        )
    }
}

/// To a later acceptor: someone else was first.
pub fn taken(lang: Language, code: &OfferCode) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}谢谢您！{code}号求助已有志愿者接单，无需前往。")
    } else {
        format!("{SIGN_EN} Thank you! Request {code} has already been taken; no need to go.")
    }
}

/// To a volunteer whose pending offer was withdrawn (taken by another, or cancelled).
pub fn withdrawn(lang: Language, code: &OfferCode) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}{code}号求助已安排好，感谢您随时准备帮忙！")
    } else {
        format!("{SIGN_EN} Request {code} is taken care of. Thank you for being ready to help!")
    }
}

/// To the volunteer holding a job that an operator cancelled.
pub fn job_cancelled(lang: Language, code: &OfferCode) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}{code}号求助已取消，无需前往。谢谢您！")
    } else {
        format!("{SIGN_EN} Job {code} has been cancelled; no need to go. Thank you!")
    }
}

/// Confirms a decline.
pub fn declined(lang: Language, code: &OfferCode) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}已收到，{code}号求助不派给您。谢谢！")
    } else {
        format!("{SIGN_EN} Noted: request {code} will go to someone else. Thanks!")
    }
}

/// Confirms `DONE` (or an operator's "done") to the volunteer, with the points earned
/// (none when the job had already earned its points, as after a revisit).
pub fn done(lang: Language, code: &OfferCode, earned: i64, balance: i64) -> String {
    match (zh(lang), earned > 0) {
        (true, true) => {
            format!(
                "{SIGN_ZH}{code}号求助已完成，辛苦了，谢谢您！获得{earned}积分，共{balance}分。"
            )
        }
        (true, false) => {
            format!("{SIGN_ZH}{code}号求助已完成，辛苦了，谢谢您！您共有{balance}积分。")
        }
        (false, true) => format!(
            "{SIGN_EN} Job {code} marked done. Thank you for your help! +{earned} points, {balance} in all."
        ),
        (false, false) => format!(
            "{SIGN_EN} Job {code} marked done. Thank you for your help! You have {balance} points."
        ),
    }
}

/// To the resident: who is coming to help.
pub fn volunteer_coming(
    lang: Language,
    category: Category,
    volunteer_name: &str,
    volunteer_phone: Option<&PhoneNumber>,
) -> String {
    let label = category.label(lang);
    match (zh(lang), volunteer_phone) {
        (true, Some(p)) => {
            format!("{SIGN_ZH}您的{label}求助已安排：志愿者{volunteer_name}会来帮您，电话{p}。")
        }
        (true, None) => {
            format!("{SIGN_ZH}您的{label}求助已安排：志愿者{volunteer_name}会联系您。")
        }
        (false, Some(p)) => format!(
            "{SIGN_EN} Help with your {label} request is on the way: volunteer {volunteer_name}, tel {p}."
        ),
        (false, None) => format!(
            "{SIGN_EN} Help with your {label} request is on the way: volunteer {volunteer_name} will contact you."
        ),
    }
}

fn reason_text(lang: Language, r: EscalationReason) -> &'static str {
    use EscalationReason::*;
    match (zh(lang), r) {
        (true, CallBack) => "需要回电",
        (true, NoVolunteer) => "无志愿者接单",
        (true, Sla) => "超时未处理",
        (true, UnknownSender) => "陌生号码求助",
        (true, NoKeyword) => "短信无法分类",
        (true, Revisit) => "差评需回访",
        (true, Emergency) => "紧急情况",
        (true, DeliveryFailed) => "短信发送失败",
        (true, Operator) => "需人工处理",
        (false, CallBack) => "call back needed",
        (false, NoVolunteer) => "no volunteer accepted",
        (false, Sla) => "deadline missed",
        (false, UnknownSender) => "text from unknown number",
        (false, NoKeyword) => "text not classified",
        (false, Revisit) => "low rating, revisit",
        (false, Emergency) => "emergency",
        (false, DeliveryFailed) => "delivery failed",
        (false, Operator) => "operator needed",
    }
}

fn grade_text(lang: Language, g: Grade) -> &'static str {
    match (zh(lang), g) {
        (true, Grade::Red) => "红",
        (true, Grade::Yellow) => "黄",
        (true, Grade::Blue) => "蓝",
        (false, g) => g.as_str(),
    }
}

/// To the operators' phone: which request, why, how urgent.
pub fn escalation(lang: Language, e: &EscalationText<'_>) -> String {
    let (id, label, reason, grade) = (
        e.request_id,
        e.category.label(lang),
        reason_text(lang, e.reason),
        grade_text(lang, e.grade),
    );
    if zh(lang) {
        let area = e
            .area
            .map(|a| format!("，{}", shorten(a, 12)))
            .unwrap_or_default();
        format!("{SIGN_ZH}请处理求助#{id}（{grade}级，{label}{area}）：{reason}。")
    } else {
        let area = e
            .area
            .map(|a| format!(", {}", shorten(a, 20)))
            .unwrap_or_default();
        format!("{SIGN_EN} Request #{id} needs an operator ({grade}, {label}{area}): {reason}.")
    }
}

/// The list of commands.
pub fn help(lang: Language) -> String {
    if zh(lang) {
        format!(
            "{SIGN_ZH}回复：接/YES 编号 接单；不/NO 编号 不接；完成/DONE 编号；休息/OFF 暂停；上线/ON 恢复；积分/POINTS；STOP 退订，START 恢复。"
        )
    } else {
        format!(
            "{SIGN_EN} YES/NO + code: accept/decline. DONE + code: finished. OFF/ON: pause/resume. POINTS: your balance. STOP/START: opt out/in."
        )
    }
}

/// Several offers or jobs are open and the reply named none: ask which, listing the codes.
pub fn which_offer(lang: Language, codes: &[OfferCode]) -> String {
    let list = codes
        .iter()
        .map(OfferCode::as_str)
        .collect::<Vec<_>>()
        .join(if zh(lang) { "、" } else { ", " });
    let first = codes.first().map_or("17", OfferCode::as_str);
    if zh(lang) {
        format!("{SIGN_ZH}您有多个求助：{list}。请在回复后加编号，例如“接 {first}”。")
    } else {
        format!("{SIGN_EN} You have several: {list}. Please add the code, e.g. YES {first}.")
    }
}

/// A reply named no offer and none is pending or active.
pub fn nothing_pending(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}您目前没有待回复的求助。回复“帮助”查看指令。")
    } else {
        format!("{SIGN_EN} You have no open offer or job right now. Reply HELP for the commands.")
    }
}

/// A reply named a code that is not one of the volunteer's open offers or jobs.
pub fn no_such_offer(lang: Language, code: &OfferCode) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}找不到您的{code}号求助，请核对编号。")
    } else {
        format!("{SIGN_EN} No open offer or job {code} for you. Please check the code.")
    }
}

/// Confirms `OFF`.
pub fn paused(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}已暂停派单，好好休息。回复“上线”或ON恢复。")
    } else {
        format!("{SIGN_EN} Offers paused; your current jobs stay yours. Reply ON to resume.")
    }
}

/// Confirms `ON`.
pub fn resumed(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}欢迎回来，已恢复派单。回复“休息”或OFF暂停。")
    } else {
        format!("{SIGN_EN} Welcome back, offers resumed. Reply OFF to pause.")
    }
}

/// Confirms `STOP`.
pub fn opted_out(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}您已退订，不会再收到派单短信。回复START可重新订阅。")
    } else {
        format!(
            "{SIGN_EN} You are unsubscribed and will get no more offers. Reply START to opt back in."
        )
    }
}

/// Confirms `START`.
pub fn opted_in(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}您已重新订阅，将收到派单短信。回复STOP退订。")
    } else {
        format!("{SIGN_EN} You are subscribed again and will get offers. Reply STOP to opt out.")
    }
}

/// The points balance, and this month's points and rank among volunteers (`None` when
/// the volunteer earned nothing this month).
pub fn points(lang: Language, balance: i64, month: Option<(i64, u32, u32)>) -> String {
    match (zh(lang), month) {
        (true, None) => format!("{SIGN_ZH}您的积分：{balance}。谢谢您的付出！"),
        (true, Some((m, rank, of))) => format!(
            "{SIGN_ZH}您的积分：{balance}。本月{m}分，排名第{rank}（共{of}人）。谢谢您的付出！"
        ),
        (false, None) => format!("{SIGN_EN} Your points: {balance}. Thank you for helping!"),
        (false, Some((m, rank, of))) => format!(
            "{SIGN_EN} Your points: {balance}. This month: {m}, rank {rank} of {of}. Thank you for helping!"
        ),
    }
}

/// A volunteer's reply that is no command.
pub fn unknown_command(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}没看懂您的回复。回复“帮助”或HELP查看指令。")
    } else {
        format!("{SIGN_EN} Sorry, we did not understand. Reply HELP for the commands.")
    }
}

/// To a number with no address on file: an operator will call back; in an emergency, call
/// `emergency_number` (the setting `emergency.number`).
pub fn unknown_sender(lang: Language, emergency_number: &str) -> String {
    if zh(lang) {
        format!(
            "{SIGN_ZH}已收到您的短信，工作人员会尽快给您回电。紧急情况请拨打{emergency_number}。"
        )
    } else {
        format!(
            "{SIGN_EN} We got your message; an operator will call you back soon. In an emergency call {emergency_number}."
        )
    }
}

/// Over the per-number intake limit: earlier texts are being handled; no new request.
pub fn intake_slow_down(lang: Language, emergency_number: &str) -> String {
    if zh(lang) {
        format!(
            "{SIGN_ZH}您刚才的短信已收到，正在处理，请勿重复发送。紧急情况请拨打{emergency_number}。"
        )
    } else {
        format!(
            "{SIGN_EN} We have your earlier messages and are on it; please do not resend. In an emergency call {emergency_number}."
        )
    }
}

/// The rating question after a request is done.
pub fn rating_question(lang: Language, category: Category) -> String {
    let label = category.label(lang);
    if zh(lang) {
        format!("{SIGN_ZH}您的{label}求助已完成。满意吗？请回复1到5分（5分最满意）。")
    } else {
        format!(
            "{SIGN_EN} Your {label} request is done. How did it go? Reply 1 to 5 (5 = very good)."
        )
    }
}

/// To a resident whose reply to the rating question was words: an operator will follow up.
pub fn complaint_received(lang: Language) -> String {
    if zh(lang) {
        format!("{SIGN_ZH}已收到您的意见，很抱歉没让您满意，工作人员会尽快联系您。")
    } else {
        format!("{SIGN_EN} We got your comments and are sorry; an operator will contact you soon.")
    }
}

/// The satisfaction call's question (spoken): press 1 to 5.
pub fn survey_question(lang: Language, category: Category) -> String {
    let label = category.label(lang);
    if zh(lang) {
        format!("您好，这里是580热线。您的{label}求助已完成。请为这次服务打分：按1到5，5分最满意。")
    } else {
        format!(
            "Hello, this is the 580 hotline. Your {label} request is done. Please rate the help: press 1 to 5, 5 is very good."
        )
    }
}

/// The satisfaction call when no key was pressed.
pub fn survey_goodbye(lang: Language) -> String {
    if zh(lang) {
        "没有收到您的按键，谢谢，再见。".to_string()
    } else {
        "We did not get an answer. Thank you, goodbye.".to_string()
    }
}

/// The satisfaction call's thanks (spoken).
pub fn survey_thanks(lang: Language, rating: u8) -> String {
    match (zh(lang), rating <= 2) {
        (true, false) => format!("谢谢您的评分，{rating}分。祝您身体健康，再见。"),
        (true, true) => format!("谢谢您的评分，{rating}分。很抱歉，工作人员会联系您。再见。"),
        (false, false) => format!("Thank you for your rating of {rating}. Take care, goodbye."),
        (false, true) => format!(
            "Thank you for your rating of {rating}. We are sorry; an operator will contact you. Goodbye."
        ),
    }
}

/// To the second level (a street office): a request is still not done long after intake.
pub fn second_level(lang: Language, e: &EscalationText<'_>, hours: u64) -> String {
    let (id, label, grade) = (
        e.request_id,
        e.category.label(lang),
        grade_text(lang, e.grade),
    );
    if zh(lang) {
        let area = e
            .area
            .map(|a| format!("，{}", shorten(a, 12)))
            .unwrap_or_default();
        format!(
            "{SIGN_ZH}求助#{id}（{grade}级，{label}{area}）受理{hours}小时仍未完成，请协调处理。"
        )
    } else {
        let area = e
            .area
            .map(|a| format!(", {}", shorten(a, 20)))
            .unwrap_or_default();
        format!(
            "{SIGN_EN} Request #{id} ({grade}, {label}{area}) is still not done {hours} hours after intake; please step in."
        )
    }
}

/// Thanks for a rating; a low one is told an operator will follow up.
pub fn rating_thanks(lang: Language, rating: u8) -> String {
    match (zh(lang), rating <= 2) {
        (true, false) => format!("{SIGN_ZH}谢谢您的评分（{rating}分）！祝您身体健康。"),
        (true, true) => {
            format!("{SIGN_ZH}谢谢您的评分（{rating}分）。很抱歉，工作人员会联系您。")
        }
        (false, false) => format!("{SIGN_EN} Thank you for your rating ({rating})! Take care."),
        (false, true) => format!(
            "{SIGN_EN} Thank you for your rating ({rating}). We are sorry; an operator will contact you."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LANGS: [Language; 2] = [Language::Zh, Language::En];

    fn code() -> OfferCode {
        OfferCode::parse("17").unwrap()
    }

    fn phone() -> PhoneNumber {
        PhoneNumber::from_e164("+8613800138000").unwrap()
    }

    fn offer_text<'a>(
        code: &'a OfferCode,
        description: &'a str,
        withhold: &'a [&'a str],
    ) -> OfferText<'a> {
        OfferText {
            category: Category::Repair,
            description,
            distance_m: 420.0,
            area: Some("网格3"),
            code,
            deadline: Time::constant(12, 5, 0, 0),
            withhold,
        }
    }

    fn all_short_texts(lang: Language) -> Vec<String> {
        let c = code();
        vec![
            taken(lang, &c),
            withdrawn(lang, &c),
            job_cancelled(lang, &c),
            declined(lang, &c),
            done(lang, &c, 15, 1_250),
            done(lang, &c, 0, 1_250),
            volunteer_coming(lang, Category::Escort, "李明", Some(&phone())),
            volunteer_coming(lang, Category::Escort, "李明", None),
            escalation(
                lang,
                &EscalationText {
                    request_id: 123_456,
                    reason: EscalationReason::NoVolunteer,
                    category: Category::Companion,
                    grade: Grade::Red,
                    area: Some("网格12"),
                },
            ),
            help(lang),
            which_offer(lang, &[c.clone(), OfferCode::parse("23").unwrap()]),
            nothing_pending(lang),
            no_such_offer(lang, &c),
            paused(lang),
            resumed(lang),
            opted_out(lang),
            opted_in(lang),
            points(lang, 1_250, None),
            points(lang, 1_250, Some((120, 12, 340))),
            complaint_received(lang),
            second_level(
                lang,
                &EscalationText {
                    request_id: 123_456,
                    reason: EscalationReason::Sla,
                    category: Category::Companion,
                    grade: Grade::Red,
                    area: Some("网格12"),
                },
                72,
            ),
            unknown_command(lang),
            unknown_sender(lang, "120"),
            intake_slow_down(lang, "120"),
            rating_question(lang, Category::Escort),
            rating_thanks(lang, 5),
            rating_thanks(lang, 1),
        ]
    }

    #[test]
    fn every_message_stays_short() {
        for lang in LANGS {
            for t in all_short_texts(lang) {
                assert!(t.chars().count() <= 140, "{} chars: {t}", t.chars().count());
            }
        }
    }

    #[test]
    fn chinese_messages_are_in_chinese_and_english_ones_are_not() {
        let has_cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for t in all_short_texts(Language::Zh) {
            assert!(t.starts_with(SIGN_ZH), "{t}");
        }
        for t in all_short_texts(Language::En) {
            // Names and areas may be Chinese; the words around them are not.
            let t = t.replace("李明", "").replace("网格12", "");
            assert!(!has_cjk(&t), "{t}");
        }
    }

    #[test]
    fn the_offer_says_what_how_far_where_when_and_how_to_answer() {
        let c = code();
        let zh = offer(Language::Zh, &offer_text(&c, "厨房水管漏水", &[]));
        assert!(zh.contains("维修"), "{zh}");
        assert!(zh.contains("厨房水管漏水"), "{zh}");
        assert!(zh.contains("约420米"), "{zh}");
        assert!(zh.contains("网格3"), "{zh}");
        assert!(zh.contains("YES 17") && zh.contains("NO 17"), "{zh}");
        assert!(zh.contains("12:05"), "{zh}");
        let en = offer(Language::En, &offer_text(&c, "Kitchen pipe leaking", &[]));
        assert!(
            en.contains("Reply YES 17 to accept, NO 17 to decline"),
            "{en}"
        );
        assert!(
            en.contains("420 m") && en.contains("12:05") && en.contains("repair"),
            "{en}"
        );
    }

    #[test]
    fn a_long_transcript_is_cut_and_the_offer_stays_short() {
        let c = code();
        let long_zh = "我家厨房的水管从昨天晚上开始一直在漏水，地上全是水，楼下邻居也说天花板在滴水，我一个人搬不动柜子，希望有人能来看看";
        let long_en = "The kitchen pipe has been leaking since last night, the floor is wet, the neighbour downstairs says the ceiling drips and I cannot move the cupboard alone";
        let zh = offer(Language::Zh, &offer_text(&c, long_zh, &[]));
        let en = offer(Language::En, &offer_text(&c, long_en, &[]));
        assert!(zh.contains('…') && en.contains('…'));
        assert!(zh.chars().count() <= 140, "{}: {zh}", zh.chars().count());
        assert!(en.chars().count() <= 160, "{}: {en}", en.chars().count());
    }

    #[test]
    fn an_empty_description_falls_back_to_the_category() {
        let c = code();
        let en = offer(Language::En, &offer_text(&c, "  ", &[]));
        assert!(en.contains("repair request: repair."), "{en}");
    }

    #[test]
    fn the_offer_never_reveals_the_residents_name_or_number() {
        let c = code();
        let name = "王秀英";
        let number = phone();
        let transcript = "我是王秀英，电话13800138000，也可以打 138-0013-8000，家里停电了";
        let withhold = [name, number.as_str()];
        for lang in LANGS {
            let t = offer(lang, &offer_text(&c, transcript, &withhold));
            assert!(!t.contains(name), "{t}");
            assert!(!t.contains("13800138000") && !t.contains("0013"), "{t}");
            assert!(!t.contains(number.as_str()), "{t}");
        }
        // Even a number nobody listed is masked; short numbers such as a floor are kept.
        let t = offer(
            Language::Zh,
            &offer_text(&c, "3楼，电话 0236 3580 580", &[]),
        );
        assert!(t.contains("3楼") && !t.contains("3580"), "{t}");
    }

    #[test]
    fn the_winner_gets_name_address_phone_and_description() {
        let (c, p) = (code(), phone());
        for lang in LANGS {
            let t = assignment(
                lang,
                &AssignmentText {
                    code: &c,
                    category: Category::Repair,
                    resident_name: "王秀英",
                    address: "解放碑街道5号2单元301",
                    phone: &p,
                    description: "厨房水管漏水",
                },
            );
            for part in [
                "王秀英",
                "解放碑街道5号2单元301",
                "+8613800138000",
                "厨房水管漏水",
                "17",
            ] {
                assert!(t.contains(part), "{part} missing: {t}");
            }
        }
    }

    #[test]
    fn which_offer_lists_every_code() {
        let codes = [
            code(),
            OfferCode::parse("23").unwrap(),
            OfferCode::parse("4711").unwrap(),
        ];
        for lang in LANGS {
            let t = which_offer(lang, &codes);
            for c in &codes {
                assert!(t.contains(c.as_str()), "{t}");
            }
        }
    }

    #[test]
    fn help_lists_every_command() {
        for w in ["YES", "NO", "DONE", "OFF", "ON", "POINTS", "STOP", "START"] {
            assert!(help(Language::En).contains(w), "{w}");
        }
        for w in ["接", "不", "完成", "休息", "上线", "积分", "STOP", "START"] {
            assert!(help(Language::Zh).contains(w), "{w}");
        }
    }

    #[test]
    fn points_are_a_plain_number() {
        assert!(points(Language::En, 1250, None).contains("1250"));
        assert!(points(Language::Zh, 0, None).contains('0'));
        let ranked = points(Language::En, 1250, Some((40, 2, 9)));
        assert!(
            ranked.contains("1250") && ranked.contains("rank 2 of 9"),
            "{ranked}"
        );
    }

    #[test]
    fn the_rating_question_asks_for_one_to_five() {
        assert!(rating_question(Language::En, Category::Repair).contains("1 to 5"));
        assert!(rating_question(Language::Zh, Category::Repair).contains("1到5"));
    }

    #[test]
    fn distances_read_naturally() {
        assert_eq!(distance(Language::En, 347.0), "350 m");
        assert_eq!(distance(Language::Zh, 347.0), "约350米");
        assert_eq!(distance(Language::En, 1_249.0), "1.2 km");
        assert_eq!(distance(Language::Zh, 2_000.0), "约2.0公里");
        assert_eq!(distance(Language::En, 996.0), "1.0 km");
    }

    #[test]
    fn shorten_counts_characters_not_bytes() {
        assert_eq!(shorten("一二三四五", 5), "一二三四五");
        assert_eq!(shorten("一二三四五六", 5), "一二三四…");
        assert_eq!(shorten("  a\n b  ", 10), "a b");
    }

    proptest! {
        #[test]
        fn a_phone_number_in_any_transcript_never_reaches_the_offer(
            pre in "\\PC{0,40}", post in "\\PC{0,40}", digits in "1[3-9][0-9]{9}",
        ) {
            let c = code();
            let body = format!("{pre}{digits}{post}");
            for lang in LANGS {
                let t = offer(lang, &offer_text(&c, &body, &[]));
                prop_assert!(!t.contains(&digits), "{}", t);
            }
        }

        #[test]
        fn offers_stay_within_two_segments(desc in "\\PC{0,300}", metres in 0.0f64..20_000.0) {
            let c = OfferCode::parse("123456").unwrap();
            let mut o = offer_text(&c, &desc, &[]);
            o.distance_m = metres;
            let zh = offer(Language::Zh, &o);
            let en = offer(Language::En, &o);
            prop_assert!(zh.chars().count() <= 150, "{}", zh);
            prop_assert!(en.chars().count() <= 200, "{}", en);
        }
    }
}
