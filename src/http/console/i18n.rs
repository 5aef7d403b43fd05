//! The console's words in Chinese and English, and choosing between them:
//! the operator's choice (a cookie), else the browser's `Accept-Language`.

use crate::domain::{Category, Grade, Language, Status};

/// The cookie holding the operator's choice of language.
pub const LANG_COOKIE: &str = "hotline580_lang";

/// The language of a page: the cookie's, else the browser's preference
/// between `zh` and `en` (highest `q` wins), else Chinese.
pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Language {
    if let Some(l) = cookie.and_then(|c| c.parse::<Language>().ok()) {
        return l;
    }
    let mut best: Option<(f32, Language)> = None;
    for part in accept_language.unwrap_or("").split(',') {
        let mut it = part.split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|v| v.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let lang = if tag.starts_with("zh") {
            Language::Zh
        } else if tag.starts_with("en") {
            Language::En
        } else {
            continue;
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l).unwrap_or(Language::Zh)
}

pub fn status_label(s: &str, lang: Language) -> &'static str {
    let zh = lang == Language::Zh;
    match s.parse::<Status>() {
        Ok(Status::New) => {
            if zh {
                "新来电"
            } else {
                "New"
            }
        }
        Ok(Status::Offering) => {
            if zh {
                "派单中"
            } else {
                "Offering"
            }
        }
        Ok(Status::Assigned) => {
            if zh {
                "已接单"
            } else {
                "Assigned"
            }
        }
        Ok(Status::Done) => {
            if zh {
                "已完成"
            } else {
                "Done"
            }
        }
        Ok(Status::Closed) => {
            if zh {
                "已关闭"
            } else {
                "Closed"
            }
        }
        Ok(Status::Escalated) => {
            if zh {
                "需人工处理"
            } else {
                "Needs an operator"
            }
        }
        Ok(Status::Cancelled) => {
            if zh {
                "已取消"
            } else {
                "Cancelled"
            }
        }
        Err(_) => "?",
    }
}

pub fn grade_label(g: Option<&str>, lang: Language) -> &'static str {
    let zh = lang == Language::Zh;
    match g.and_then(|g| g.parse::<Grade>().ok()) {
        Some(Grade::Red) => {
            if zh {
                "红色·紧急"
            } else {
                "Red · urgent"
            }
        }
        Some(Grade::Yellow) => {
            if zh {
                "黄色·当天"
            } else {
                "Yellow · today"
            }
        }
        Some(Grade::Blue) => {
            if zh {
                "蓝色·一般"
            } else {
                "Blue · routine"
            }
        }
        None => {
            if zh {
                "未分级"
            } else {
                "Ungraded"
            }
        }
    }
}

pub fn category_label(c: Option<&str>, lang: Language) -> String {
    match c.and_then(|c| c.parse::<Category>().ok()) {
        Some(c) => {
            let l = c.label(lang);
            let mut chars = l.chars();
            match chars.next() {
                Some(f) => f.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            }
        }
        None => if lang == Language::Zh {
            "未分类"
        } else {
            "Not classified"
        }
        .to_string(),
    }
}

pub fn reason_label(r: Option<&str>, lang: Language) -> &'static str {
    let zh = lang == Language::Zh;
    match r.unwrap_or("") {
        "call_back" => {
            if zh {
                "需回电"
            } else {
                "Call back"
            }
        }
        "no_volunteer" => {
            if zh {
                "无志愿者"
            } else {
                "No volunteer found"
            }
        }
        "sla" => {
            if zh {
                "超时未接"
            } else {
                "Not accepted in time"
            }
        }
        "unknown_sender" => {
            if zh {
                "陌生号码短信"
            } else {
                "Text from an unknown number"
            }
        }
        "no_keyword" => {
            if zh {
                "无法分类"
            } else {
                "Could not classify"
            }
        }
        "revisit" => {
            if zh {
                "差评回访"
            } else {
                "Revisit (low rating)"
            }
        }
        "emergency" => {
            if zh {
                "紧急情况"
            } else {
                "Emergency"
            }
        }
        "delivery_failed" => {
            if zh {
                "短信发送失败"
            } else {
                "Message failed"
            }
        }
        "operator" => {
            if zh {
                "转人工"
            } else {
                "Asked for an operator"
            }
        }
        _ => "",
    }
}

pub fn channel_label(c: &str, lang: Language) -> &'static str {
    let zh = lang == Language::Zh;
    match c {
        "voice" => {
            if zh {
                "电话"
            } else {
                "Phone call"
            }
        }
        "sms" => {
            if zh {
                "短信"
            } else {
                "SMS"
            }
        }
        "operator" => {
            if zh {
                "人工登记"
            } else {
                "Operator"
            }
        }
        _ => "?",
    }
}

pub fn offer_status_label(s: &str, lang: Language) -> String {
    let zh = lang == Language::Zh;
    match s {
        "pending" => {
            if zh {
                "待回复"
            } else {
                "waiting"
            }
        }
        "accepted" => {
            if zh {
                "已接受"
            } else {
                "accepted"
            }
        }
        "declined" => {
            if zh {
                "已拒绝"
            } else {
                "declined"
            }
        }
        "expired" => {
            if zh {
                "已超时"
            } else {
                "expired"
            }
        }
        "withdrawn" => {
            if zh {
                "已撤回"
            } else {
                "withdrawn"
            }
        }
        "failed" => {
            if zh {
                "短信失败"
            } else {
                "SMS failed"
            }
        }
        other => return other.to_string(),
    }
    .to_string()
}

/// A timeline entry's type in words (the raw type stays beside it).
pub fn event_label(kind: &str, lang: Language) -> &'static str {
    let zh = lang == Language::Zh;
    match kind {
        "request.created" => {
            if zh {
                "新求助"
            } else {
                "Request received"
            }
        }
        "request.status" => {
            if zh {
                "状态变化"
            } else {
                "Status changed"
            }
        }
        "request.updated" => {
            if zh {
                "修改或备注"
            } else {
                "Changed or noted"
            }
        }
        "offer.sent" => {
            if zh {
                "派单"
            } else {
                "Offer sent"
            }
        }
        "offer.answered" => {
            if zh {
                "派单结果"
            } else {
                "Offer answered"
            }
        }
        "message.failed" => {
            if zh {
                "消息发送失败"
            } else {
                "Message failed"
            }
        }
        "alert" => {
            if zh {
                "警报"
            } else {
                "Alert"
            }
        }
        "volunteer.updated" => {
            if zh {
                "志愿者变更"
            } else {
                "Volunteer changed"
            }
        }
        _ => "",
    }
}

/// Every fixed text of the console's pages.
pub struct Texts {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub title: &'static str,
    pub board: &'static str,
    pub volunteers: &'static str,
    pub figures: &'static str,
    pub logout: &'static str,
    pub login: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub login_button: &'static str,
    pub sound_on: &'static str,
    pub sound_enabled: &'static str,
    pub red_waiting: &'static str,
    pub alert_title: &'static str,
    pub attention_title: &'static str,
    pub open: &'static str,
    pub dismiss: &'static str,
    pub overdue: &'static str,
    pub empty_column: &'static str,
    pub live: &'static str,
    pub offline: &'static str,
    pub request: &'static str,
    pub resident: &'static str,
    pub unknown_caller: &'static str,
    pub phone: &'static str,
    pub address: &'static str,
    pub grid: &'static str,
    pub caller: &'static str,
    pub description: &'static str,
    pub recording: &'static str,
    pub channel: &'static str,
    pub created: &'static str,
    pub updated: &'static str,
    pub volunteer: &'static str,
    pub rating: &'static str,
    pub reason: &'static str,
    pub actions: &'static str,
    pub assign: &'static str,
    pub assign_help: &'static str,
    pub nearest: &'static str,
    pub no_candidates: &'static str,
    pub other_volunteer: &'static str,
    pub choose: &'static str,
    pub reoffer: &'static str,
    pub cancel: &'static str,
    pub cancel_reason: &'static str,
    pub mark_done: &'static str,
    pub note: &'static str,
    pub add_note: &'static str,
    pub close: &'static str,
    pub change: &'static str,
    pub save: &'static str,
    pub grade: &'static str,
    pub category: &'static str,
    pub offers: &'static str,
    pub no_offers: &'static str,
    pub wave: &'static str,
    pub sent: &'static str,
    pub answered: &'static str,
    pub status: &'static str,
    pub timeline: &'static str,
    pub messages: &'static str,
    pub no_messages: &'static str,
    pub to: &'static str,
    pub distance: &'static str,
    pub active_jobs: &'static str,
    pub search: &'static str,
    pub name: &'static str,
    pub skills: &'static str,
    pub languages: &'static str,
    pub available: &'static str,
    pub opted_out: &'static str,
    pub points: &'static str,
    pub quiet_hours: &'static str,
    pub default_word: &'static str,
    pub max_active: &'static str,
    pub edit: &'static str,
    pub switch_on: &'static str,
    pub switch_off: &'static str,
    pub on: &'static str,
    pub off: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub admin_only: &'static str,
    pub from: &'static str,
    pub until: &'static str,
    pub show: &'static str,
    pub figures_missing: &'static str,
    pub figures_help: &'static str,
    pub ago: &'static str,
    pub minutes: &'static str,
    pub hours: &'static str,
    pub days: &'static str,
    pub back: &'static str,
    pub done_missing: &'static str,
}

pub const ZH: Texts = Texts {
    lang: "zh",
    other_lang: "en",
    other_lang_name: "English",
    title: "580热线 · 调度台",
    board: "求助看板",
    volunteers: "志愿者",
    figures: "统计",
    logout: "退出",
    login: "登录调度台",
    username: "用户名",
    password: "密码",
    login_button: "登录",
    sound_on: "开启提示音",
    sound_enabled: "提示音已开",
    red_waiting: "条红色紧急求助待处理",
    alert_title: "红色紧急求助",
    attention_title: "需要人工处理",
    open: "打开",
    dismiss: "知道了",
    overdue: "已超时",
    empty_column: "暂无",
    live: "实时",
    offline: "连接中断，正在重连…",
    request: "求助",
    resident: "居民",
    unknown_caller: "未登记来电",
    phone: "电话",
    address: "地址",
    grid: "网格",
    caller: "来电号码",
    description: "求助内容",
    recording: "录音",
    channel: "渠道",
    created: "受理时间",
    updated: "更新",
    volunteer: "志愿者",
    rating: "评分",
    reason: "原因",
    actions: "操作",
    assign: "派给",
    assign_help: "离居民最近、技能合适的志愿者排在前面。",
    nearest: "就近志愿者",
    no_candidates: "附近没有合适的志愿者。",
    other_volunteer: "其他志愿者",
    choose: "请选择…",
    reoffer: "重新派单",
    cancel: "取消求助",
    cancel_reason: "取消原因（选填）",
    mark_done: "标记完成",
    note: "备注",
    add_note: "添加备注",
    close: "关闭（已处理）",
    change: "修改分级/类别",
    save: "保存",
    grade: "分级",
    category: "类别",
    offers: "派单记录",
    no_offers: "还没有派单。",
    wave: "轮次",
    sent: "发出",
    answered: "回复",
    status: "状态",
    timeline: "时间线",
    messages: "短信与电话",
    no_messages: "没有发出的消息。",
    to: "发往",
    distance: "距离",
    active_jobs: "进行中",
    search: "搜索姓名、电话、技能…",
    name: "姓名",
    skills: "技能",
    languages: "语言",
    available: "接单中",
    opted_out: "已退订",
    points: "积分",
    quiet_hours: "免打扰",
    default_word: "默认",
    max_active: "同时最多",
    edit: "编辑",
    switch_on: "设为接单",
    switch_off: "设为休息",
    on: "接单",
    off: "休息",
    yes: "是",
    no: "否",
    admin_only: "只有管理员可以修改志愿者。",
    from: "从",
    until: "到",
    show: "查看",
    figures_missing: "统计接口尚未提供（/api/stats 未找到）。",
    figures_help: "按日期查看受理、完成、按时率和满意度。",
    ago: "前",
    minutes: "分钟",
    hours: "小时",
    days: "天",
    back: "返回看板",
    done_missing: "本服务还不能标记完成（/api/requests/{id}/done 未找到）。",
};

pub const EN: Texts = Texts {
    lang: "en",
    other_lang: "zh",
    other_lang_name: "中文",
    title: "580 Hotline · Console",
    board: "Board",
    volunteers: "Volunteers",
    figures: "Figures",
    logout: "Log out",
    login: "Operators' console",
    username: "Username",
    password: "Password",
    login_button: "Log in",
    sound_on: "Turn sound on",
    sound_enabled: "Sound on",
    red_waiting: "red request(s) waiting",
    alert_title: "Red request",
    attention_title: "Needs an operator",
    open: "Open",
    dismiss: "Dismiss",
    overdue: "Overdue",
    empty_column: "None",
    live: "Live",
    offline: "Connection lost, reconnecting…",
    request: "Request",
    resident: "Resident",
    unknown_caller: "Unknown caller",
    phone: "Phone",
    address: "Address",
    grid: "Grid",
    caller: "Caller's number",
    description: "What they need",
    recording: "Recording",
    channel: "Channel",
    created: "Received",
    updated: "Updated",
    volunteer: "Volunteer",
    rating: "Rating",
    reason: "Reason",
    actions: "Actions",
    assign: "Assign",
    assign_help: "Nearest suitable volunteers first.",
    nearest: "Nearest volunteers",
    no_candidates: "No suitable volunteer nearby.",
    other_volunteer: "Another volunteer",
    choose: "Choose…",
    reoffer: "Offer again",
    cancel: "Cancel request",
    cancel_reason: "Reason (optional)",
    mark_done: "Mark done",
    note: "Note",
    add_note: "Add note",
    close: "Close (dealt with)",
    change: "Change grade or category",
    save: "Save",
    grade: "Grade",
    category: "Category",
    offers: "Offers",
    no_offers: "No offers yet.",
    wave: "Wave",
    sent: "Sent",
    answered: "Answered",
    status: "Status",
    timeline: "Timeline",
    messages: "Messages and calls",
    no_messages: "Nothing sent.",
    to: "To",
    distance: "Distance",
    active_jobs: "Active",
    search: "Search name, phone, skill…",
    name: "Name",
    skills: "Skills",
    languages: "Languages",
    available: "Available",
    opted_out: "Opted out",
    points: "Points",
    quiet_hours: "Quiet hours",
    default_word: "default",
    max_active: "Max jobs",
    edit: "Edit",
    switch_on: "Switch on",
    switch_off: "Switch off",
    on: "On",
    off: "Off",
    yes: "yes",
    no: "no",
    admin_only: "Only an administrator can change volunteers.",
    from: "From",
    until: "To",
    show: "Show",
    figures_missing: "Figures are not available on this server yet (/api/stats was not found).",
    figures_help: "Requests received, handled, on time and satisfied, by date.",
    ago: "ago",
    minutes: "min",
    hours: "h",
    days: "d",
    back: "Back to the board",
    done_missing: "Marking done is not available on this server yet (/api/requests/{id}/done was not found).",
};

pub fn texts(lang: Language) -> &'static Texts {
    match lang {
        Language::Zh => &ZH,
        Language::En => &EN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_wins_then_the_browsers_best_choice_then_chinese() {
        assert_eq!(choose(Some("en"), Some("zh-CN")), Language::En);
        assert_eq!(choose(None, Some("en-GB,en;q=0.9,zh;q=0.5")), Language::En);
        assert_eq!(
            choose(None, Some("fr, zh-TW;q=0.4, en;q=0.8")),
            Language::En
        );
        assert_eq!(choose(None, Some("zh-CN,zh;q=0.9,en;q=0.8")), Language::Zh);
        assert_eq!(choose(None, Some("fr")), Language::Zh);
        assert_eq!(choose(Some("xx"), None), Language::Zh);
    }
}
