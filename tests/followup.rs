//! Follow-up through the contract: a job done by SMS or by an operator, the
//! resident's rating by SMS or by a survey call played through signed TwiML,
//! revisits, closing unrated, every SLA clock, points, and the figures.

mod common;
mod support;

use common::{ACCOUNT_SID, AUTH_TOKEN, Backend, PUBLIC_URL, TestApp, post_signed};
use hotline580::on_db;
use serde_json::{Value, json};
use std::time::Duration;
use support::fake_twilio::FakeTwilio;

const RESIDENT: &str = "+8613800000001";
/// A Chongqing fixed line: asked by a survey call.
const LANDLINE: &str = "+862363111111";
const NEAR: &str = "+8613900000001";
const OPERATORS: &str = "+8613700000009";
const STREET_OFFICE: &str = "+8613700000010";
const WAIT: Duration = Duration::from_secs(20);

async fn spawn(backend: Backend, twilio: &FakeTwilio, extra: &[(&str, &str)]) -> TestApp {
    let base = twilio.base_url();
    let mut env = vec![
        ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
        ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
        ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
        ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
        ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
        ("HOTLINE580__OPERATORS__PHONE", OPERATORS),
    ];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

async fn exec(app: &TestApp, sql: &str) {
    let sql = sql.to_string();
    on_db!(&app.state.db, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
}

async fn scalar_i64(app: &TestApp, sql: &str) -> i64 {
    let sql = sql.to_string();
    on_db!(&app.state.db, |c| sqlx::query_scalar::<_, i64>(
        sqlx::AssertSqlSafe(sql)
    )
    .fetch_one(c)
    .await)
    .unwrap()
}

async fn seed(app: &TestApp) {
    exec(app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('张大爷', '+8613800000001', '解放碑1号', 29.5600, 106.5700, 'zh', '网格3', 0, 0)").await;
    exec(app, "INSERT INTO residents (name, phone, address, lat, lon, language, grid, created_at, updated_at) \
               VALUES ('李奶奶', '+862363111111', '解放碑2号', 29.5602, 106.5702, 'zh', '网格3', 0, 0)").await;
    exec(app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
               VALUES ('近邻', '+8613900000001', 29.5610, 106.5710, 'repair;errands;companion', 'zh', 3, 0, 0)").await;
}

async fn sms(app: &TestApp, sid: &str, from: &str, body: &str) -> String {
    let (status, reply) = post_signed(
        app,
        "/twilio/sms",
        &[("MessageSid", sid), ("From", from), ("Body", body)],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

/// Polls until `sql` returns `want` (the service's jobs run on their own).
async fn wait_until(app: &TestApp, sql: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = scalar_i64(app, sql).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited for `{sql}` to be {want}, still {got}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for an SMS to `to` whose body contains `needle`.
async fn wait_for_sms(twilio: &FakeTwilio, to: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = twilio
            .messages_to(to)
            .into_iter()
            .find(|m| m.body.contains(needle))
        {
            return m.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no SMS to {to} containing `{needle}`: {:#?}",
            twilio.messages()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Req {
    status: String,
    rating: Option<i64>,
    escalation_reason: Option<String>,
    complaint: Option<String>,
}

async fn req(app: &TestApp, id: i64) -> Req {
    on_db!(&app.state.db, |c| sqlx::query_as::<_, Req>(
        "SELECT status, rating, escalation_reason, complaint FROM requests WHERE id = $1"
    )
    .bind(id)
    .fetch_one(c)
    .await)
    .unwrap()
}

/// A resident's text becomes a request, offered to NEAR, who accepts it.
/// Returns the request id and the offer code.
async fn accepted_job(app: &TestApp, twilio: &FakeTwilio, n: u32, text: &str) -> (i64, String) {
    let before = twilio.messages_to(NEAR).len();
    sms(app, &format!("SMR{n}"), RESIDENT, text).await;
    let id = scalar_i64(app, "SELECT MAX(id) FROM requests").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while twilio.messages_to(NEAR).len() <= before {
        assert!(tokio::time::Instant::now() < deadline, "no offer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code: String = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT code FROM offers WHERE request_id = $1"
    )
    .bind(id)
    .fetch_one(c)
    .await)
    .unwrap();
    let reply = sms(app, &format!("SMA{n}"), NEAR, &format!("YES {code}")).await;
    assert!(reply.contains("<Message>"), "{reply}");
    assert_eq!(req(app, id).await.status, "assigned");
    (id, code)
}

async fn volunteer_id(app: &TestApp) -> i64 {
    scalar_i64(
        app,
        "SELECT id FROM volunteers WHERE phone = '+8613900000001'",
    )
    .await
}

// ---- completion and ratings ----

async fn done_by_sms_then_a_rating_by_sms_closes_the_request(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    let (id, code) = accepted_job(&app, &twilio, 1, "厨房漏水").await;

    let reply = sms(&app, "SMD1", NEAR, "完成").await;
    assert!(
        reply.contains(&code) && reply.contains("12"),
        "thanked with the points: {reply}"
    );
    assert_eq!(req(&app, id).await.status, "done");
    let vid = volunteer_id(&app).await;
    assert_eq!(
        scalar_i64(&app, &format!("SELECT COUNT(*) FROM points_ledger WHERE volunteer_id = {vid} AND request_id = {id} AND points = 12")).await,
        1
    );
    assert_eq!(
        scalar_i64(
            &app,
            &format!("SELECT points FROM volunteers WHERE id = {vid}")
        )
        .await,
        12
    );

    // The resident (a mobile) is asked by SMS, and answers in full-width digits.
    wait_for_sms(&twilio, RESIDENT, "1到5").await;
    let reply = sms(&app, "SMR1b", RESIDENT, "５").await;
    assert!(reply.contains("5分"), "{reply}");
    assert_eq!(
        req(&app, id).await,
        Req {
            status: "closed".into(),
            rating: Some(5),
            escalation_reason: None,
            complaint: None
        }
    );
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM requests").await,
        1,
        "a rating is no new request"
    );
    // The timeline tells who did what.
    assert_eq!(
        scalar_i64(&app, &format!("SELECT COUNT(*) FROM events WHERE request_id = {id} AND type = 'request.status' AND actor = 'volunteer:{vid}' AND data LIKE '%\"done\"%'")).await,
        1
    );
    assert_eq!(
        scalar_i64(&app, &format!("SELECT COUNT(*) FROM events WHERE request_id = {id} AND type = 'request.status' AND actor = 'resident' AND data LIKE '%\"closed\"%'")).await,
        1
    );
    // A second DONE finds nothing open and earns nothing.
    sms(&app, "SMD1b", NEAR, "DONE").await;
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM points_ledger").await,
        1
    );
}

/// A resident who has used up the hour's SMS intake can still answer the
/// rating question: a rating is no new request.
async fn a_rating_is_taken_from_a_resident_over_the_intake_limit(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__LIMITS__INTAKE_PER_HOUR", "1")],
    )
    .await;
    seed(&app).await;
    let (id, _code) = accepted_job(&app, &twilio, 1, "厨房漏水").await;
    sms(&app, "SMD9", NEAR, "DONE").await;
    wait_for_sms(&twilio, RESIDENT, "1到5").await;
    let reply = sms(&app, "SMR9", RESIDENT, "4").await;
    assert!(reply.contains("4分"), "{reply}");
    assert_eq!(req(&app, id).await.rating, Some(4));
    // A new request, though, is over the limit.
    sms(&app, "SMR10", RESIDENT, "水管又漏水了").await;
    assert_eq!(scalar_i64(&app, "SELECT COUNT(*) FROM requests").await, 1);
}

/// A request assigned to NEAR, written as dispatch would leave it.
async fn the_texts_about_a_request_are_linked_to_it_and_shown_on_its_page(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    // The resident's intake SMS and the volunteer's `YES code`.
    let (id, _) = accepted_job(&app, &twilio, 1, "厨房漏水").await;
    // A bare DONE, then the resident's rating.
    sms(&app, "SMD1", NEAR, "完成").await;
    wait_for_sms(&twilio, RESIDENT, "1到5").await;
    sms(&app, "SMR1b", RESIDENT, "4").await;
    // A text that concerns no request stays unlinked.
    sms(&app, "SMP1", NEAR, "积分").await;
    let linked = |sid: &str| {
        format!("SELECT COUNT(*) FROM messages WHERE message_sid = '{sid}' AND request_id = {id}")
    };
    for sid in ["SMR1", "SMA1", "SMD1", "SMR1b"] {
        assert_eq!(scalar_i64(&app, &linked(sid)).await, 1, "{sid}");
    }
    assert_eq!(
        scalar_i64(
            &app,
            "SELECT COUNT(*) FROM messages WHERE message_sid = 'SMP1' AND request_id IS NULL"
        )
        .await,
        1
    );
    login(&app).await;
    let page = app
        .client
        .get(app.url(&format!("/console/requests/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        format!("received {RESIDENT}"),
        format!("received {NEAR}"),
        "完成".to_string(),
    ] {
        assert!(page.contains(&line), "{line} missing from the page");
    }
    assert!(
        !page.contains("积分</td>"),
        "an unrelated text is not shown"
    );
}

async fn seeded_assignment(app: &TestApp, resident_phone: &str) -> i64 {
    let vid = volunteer_id(app).await;
    exec(app, &format!(
        "INSERT INTO requests (status, category, grade, channel, language, description, resident_id, caller_phone, volunteer_id, wave, classified_at, accepted_at, created_at, updated_at) \
         SELECT 'assigned', 'companion', 'blue', 'voice', 'zh', '陪我聊天', id, phone, {vid}, 1, 1000, 2000, 1000, 2000 FROM residents WHERE phone = '{resident_phone}'"
    )).await;
    let id = scalar_i64(app, "SELECT MAX(id) FROM requests").await;
    exec(app, &format!(
        "INSERT INTO offers (request_id, volunteer_id, wave, code, status, sent_at, expires_at, answered_at) \
         VALUES ({id}, {vid}, 1, '{}', 'accepted', 1000, 181000, 2000)", 100 + id
    )).await;
    id
}

async fn login(app: &TestApp) {
    hotline580::auth::create_operator(
        &app.state.db,
        "alice",
        "correct horse battery",
        hotline580::domain::Role::Operator,
    )
    .await
    .unwrap();
    let r = app
        .client
        .post(app.url("/api/login"))
        .json(&json!({ "username": "alice", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn operator_done(app: &TestApp, id: i64) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/requests/{id}/done")))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

async fn an_operator_marks_done_and_a_landline_resident_rates_by_a_survey_call(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    let id = seeded_assignment(&app, LANDLINE).await;

    // No login: 401, nothing changes.
    assert_eq!(operator_done(&app, id).await.status(), 401);
    login(&app).await;
    // Not JSON: refused, nothing changes.
    let r = app
        .client
        .post(app.url(&format!("/api/requests/{id}/done")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(req(&app, id).await.status, "assigned");
    assert_eq!(operator_done(&app, 9999).await.status(), 404);

    let r = operator_done(&app, id).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "done");
    assert_eq!(body["points_earned"], 6);
    let r = operator_done(&app, id).await;
    assert_eq!(r.status(), 409, "done twice is refused");
    let err: Value = r.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("done"), "{err}");
    assert_eq!(
        scalar_i64(&app, &format!("SELECT COUNT(*) FROM events WHERE request_id = {id} AND actor = 'operator:alice' AND data LIKE '%\"done\"%'")).await,
        1
    );
    // The volunteer is thanked by SMS with the points.
    wait_for_sms(&twilio, NEAR, "6积分").await;

    // The landline is called; the call's TwiML is ours, fetched signed.
    let calls = twilio.wait_for_calls(1, WAIT).await;
    assert_eq!(calls[0].to, LANDLINE);
    let path = calls[0]
        .url
        .strip_prefix(PUBLIC_URL)
        .expect("our URL")
        .to_string();
    assert_eq!(path, format!("/twilio/survey?request={id}"));
    let call = [
        ("CallSid", "CAS1"),
        ("From", "+862363580580"),
        ("To", LANDLINE),
    ];
    let (status, question) = post_signed(&app, &path, &call).await;
    assert_eq!(status, 200);
    assert!(
        question.contains("<Gather") && question.contains("按1到5"),
        "{question}"
    );
    let action = format!("/twilio/survey/answer?request={id}");
    assert!(
        question.contains(&action.replace('&', "&amp;")),
        "{question}"
    );
    // An unsigned answer is refused and changes nothing.
    let r = app
        .client
        .post(app.url(&action))
        .form(&[("Digits", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A wrong key repeats the question.
    let mut keyed = call.to_vec();
    keyed.push(("Digits", "9"));
    let (_, again) = post_signed(&app, &action, &keyed).await;
    assert!(again.contains("<Gather"), "{again}");
    let mut keyed = call.to_vec();
    keyed.push(("Digits", "4"));
    let (status, thanks) = post_signed(&app, &action, &keyed).await;
    assert_eq!(status, 200);
    assert!(
        thanks.contains("4分") && thanks.contains("<Hangup"),
        "{thanks}"
    );
    assert_eq!(
        req(&app, id).await,
        Req {
            status: "closed".into(),
            rating: Some(4),
            escalation_reason: None,
            complaint: None
        }
    );
    // Twilio retrying the step gets the same answer; nothing changes.
    let (_, retried) = post_signed(&app, &action, &keyed).await;
    assert_eq!(retried, thanks);
    let detail: Value = app
        .get(&format!("/api/requests/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["rating"], 4);
    assert_eq!(detail["status"], "closed");
}

async fn a_low_rating_opens_a_revisit(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    let id = seeded_assignment(&app, RESIDENT).await;
    sms(&app, "SMD2", NEAR, "DONE").await;
    wait_for_sms(&twilio, RESIDENT, "1到5").await;
    let reply = sms(&app, "SMR2", RESIDENT, "2").await;
    assert!(reply.contains("工作人员会联系您"), "{reply}");
    assert_eq!(
        req(&app, id).await,
        Req {
            status: "escalated".into(),
            rating: Some(2),
            escalation_reason: Some("revisit".into()),
            complaint: None
        }
    );
    wait_for_sms(&twilio, OPERATORS, &format!("#{id}")).await;
    assert_eq!(
        scalar_i64(&app, &format!("SELECT COUNT(*) FROM events WHERE request_id = {id} AND type = 'alert' AND data LIKE '%revisit%'")).await,
        1
    );
    // An operator sends the same volunteer back (as an assignment would leave
    // it); finishing again asks the resident again and earns nothing more.
    exec(
        &app,
        &format!("UPDATE requests SET status = 'assigned' WHERE id = {id}"),
    )
    .await;
    let reply = sms(&app, "SMD2b", NEAR, "DONE").await;
    assert!(reply.contains("您共有6积分"), "{reply}");
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM points_ledger").await,
        1
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while twilio
        .messages_to(RESIDENT)
        .iter()
        .filter(|m| m.body.contains("1到5"))
        .count()
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "asked again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sms(&app, "SMR2b", RESIDENT, "5").await;
    assert_eq!(
        req(&app, id).await,
        Req {
            status: "closed".into(),
            rating: Some(5),
            escalation_reason: Some("revisit".into()),
            complaint: None
        }
    );
}

async fn a_complaint_in_words_opens_a_revisit_with_the_words(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    let id = seeded_assignment(&app, RESIDENT).await;
    sms(&app, "SMD3", NEAR, "DONE").await;
    wait_for_sms(&twilio, RESIDENT, "1到5").await;
    let words = "师傅来晚了，水管还在漏";
    let reply = sms(&app, "SMR3", RESIDENT, words).await;
    assert!(reply.contains("意见"), "{reply}");
    assert_eq!(
        req(&app, id).await,
        Req {
            status: "escalated".into(),
            rating: None,
            escalation_reason: Some("revisit".into()),
            complaint: Some(words.into())
        }
    );
    assert_eq!(
        scalar_i64(&app, "SELECT COUNT(*) FROM requests").await,
        1,
        "a complaint is no new request"
    );
    // With the question answered, the resident's next text is a new request again.
    sms(&app, "SMR3b", RESIDENT, "家里停电了").await;
    assert_eq!(scalar_i64(&app, "SELECT COUNT(*) FROM requests").await, 2);
}

async fn no_answer_closes_the_request_unrated(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__FOLLOWUP__RATING_WAIT_SECS", "1")],
    )
    .await;
    seed(&app).await;
    let id = seeded_assignment(&app, RESIDENT).await;
    sms(&app, "SMD4", NEAR, "DONE").await;
    wait_until(
        &app,
        &format!("SELECT COUNT(*) FROM requests WHERE id = {id} AND status = 'closed'"),
        1,
    )
    .await;
    assert_eq!(req(&app, id).await.rating, None);
    assert_eq!(
        scalar_i64(
            &app,
            &format!(
                "SELECT COUNT(*) FROM events WHERE request_id = {id} AND data LIKE '%unrated%'"
            )
        )
        .await,
        1
    );
    // A late answer is a new text, not a rating of the closed request.
    sms(&app, "SMR4", RESIDENT, "5").await;
    assert_eq!(req(&app, id).await.rating, None);
}

// ---- points ----

async fn points_accumulate_in_the_ledger_and_points_answers_balance_and_rank(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    // Another volunteer, far away, already earned more this month.
    exec(&app, "INSERT INTO volunteers (name, phone, lat, lon, skills, languages, max_active, created_at, updated_at) \
                VALUES ('远方', '+8613900000005', 39.90, 116.40, 'repair', 'zh', 1, 0, 0)").await;
    let now = hotline580::store::now_ms();
    exec(&app, &format!("INSERT INTO points_ledger (volunteer_id, request_id, points, reason, at) \
                SELECT id, NULL, 100, 'seeded', {now} FROM volunteers WHERE phone = '+8613900000005'")).await;

    let jobs = [("厨房漏水", 12), ("帮我买菜", 6), ("想找人聊天", 6)];
    for (n, (text, earned)) in jobs.iter().enumerate() {
        let n = n as u32 + 10;
        let (id, _) = accepted_job(&app, &twilio, n, text).await;
        let reply = sms(&app, &format!("SMD{n}"), NEAR, "DONE").await;
        assert!(reply.contains(&format!("获得{earned}积分")), "{reply}");
        // The resident rates, so their next text is a new request.
        wait_until(
            &app,
            &format!(
                "SELECT COUNT(*) FROM requests WHERE id = {id} AND rating_asked_at IS NOT NULL"
            ),
            1,
        )
        .await;
        sms(&app, &format!("SMQ{n}"), RESIDENT, "4").await;
        assert_eq!(req(&app, id).await.status, "closed");
    }
    let vid = volunteer_id(&app).await;
    assert_eq!(
        scalar_i64(
            &app,
            &format!("SELECT COUNT(*) FROM points_ledger WHERE volunteer_id = {vid}")
        )
        .await,
        3
    );
    assert_eq!(
        scalar_i64(
            &app,
            &format!("SELECT points FROM volunteers WHERE id = {vid}")
        )
        .await,
        24
    );
    let reply = sms(&app, "SMP1", NEAR, "积分").await;
    assert!(
        reply.contains("积分：24")
            && reply.contains("本月24分")
            && reply.contains("排名第2（共2人）"),
        "{reply}"
    );
    let reply = sms(&app, "SMP2", "+8613900000005", "POINTS").await;
    assert!(
        reply.contains("积分：100") && reply.contains("排名第1"),
        "{reply}"
    );
}

// ---- clocks ----

/// Waits for the request to be escalated by `clock` and returns nothing; the
/// alert names the clock.
async fn wait_for_breach(app: &TestApp, id: i64, clock: &str) {
    wait_until(app, &format!(
        "SELECT COUNT(*) FROM events WHERE request_id = {id} AND type = 'alert' AND data LIKE '%\"clock\":\"{clock}\"%'"
    ), 1).await;
}

async fn a_red_request_not_accepted_in_time_is_escalated_and_can_still_be_accepted(
    backend: Backend,
) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__SLA__RED_ACCEPT_SECS", "1")],
    )
    .await;
    seed(&app).await;
    // The default script grades no offered request red (an emergency goes to
    // the operators), so the red request is written as intake leaves it and its
    // clocks are started by intake's own call.
    let vid = volunteer_id(&app).await;
    let now = hotline580::store::now_ms();
    exec(&app, &format!(
        "INSERT INTO requests (status, category, grade, channel, language, description, resident_id, caller_phone, wave, classified_at, created_at, updated_at) \
         SELECT 'offering', 'repair', 'red', 'voice', 'zh', '煤气味', id, phone, 1, {now}, {now}, {now} FROM residents WHERE phone = '{RESIDENT}'"
    )).await;
    let id = scalar_i64(&app, "SELECT MAX(id) FROM requests").await;
    exec(&app, &format!(
        "INSERT INTO offers (request_id, volunteer_id, wave, code, status, sent_at, expires_at) VALUES ({id}, {vid}, 1, '77', 'pending', {now}, {})",
        now + 3_600_000
    )).await;
    let mut tx = app.state.db.begin().await.unwrap();
    hotline580::followup::clocks::start(&app.state.jobs, &mut tx, &app.state.config, id)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    wait_for_breach(&app, id, "accept").await;
    assert_eq!(
        req(&app, id).await,
        Req {
            status: "escalated".into(),
            rating: None,
            escalation_reason: Some("sla".into()),
            complaint: None
        }
    );
    wait_for_sms(&twilio, OPERATORS, &format!("#{id}")).await;
    // The offer was not withdrawn: the volunteer may still accept.
    let reply = sms(&app, "SMA20", NEAR, "YES 77").await;
    assert!(reply.contains("解放碑1号"), "{reply}");
    assert_eq!(req(&app, id).await.status, "assigned");
}

async fn a_request_regraded_red_runs_the_red_acceptance_clock(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[("HOTLINE580__SLA__RED_ACCEPT_SECS", "1")],
    )
    .await;
    seed(&app).await;
    // Errands by SMS: graded blue, offered, its clock eight hours away.
    sms(&app, "SMG1", RESIDENT, "帮我买点菜").await;
    let id = scalar_i64(&app, "SELECT MAX(id) FROM requests").await;
    let grade_status = || async {
        let sql = format!("SELECT grade || ' ' || status FROM requests WHERE id = {id}");
        on_db!(&app.state.db, |c| sqlx::query_scalar::<_, String>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .fetch_one(c)
        .await)
        .unwrap()
    };
    assert_eq!(grade_status().await, "blue offering");
    login(&app).await;
    let r = app
        .client
        .patch(app.url(&format!("/api/requests/{id}")))
        .json(&json!({ "grade": "red" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The red clock (one second from intake) falls due and escalates it.
    wait_for_breach(&app, id, "accept").await;
    assert_eq!(grade_status().await, "red escalated");
    assert_eq!(
        req(&app, id).await.escalation_reason.as_deref(),
        Some("sla")
    );
}

async fn a_job_not_done_in_time_is_escalated_and_can_still_be_finished(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[("HOTLINE580__SLA__DONE_SECS", "1")]).await;
    seed(&app).await;
    sms(&app, "SMR21", RESIDENT, "厨房漏水").await;
    let id = scalar_i64(&app, "SELECT MAX(id) FROM requests").await;
    wait_for_breach(&app, id, "done").await;
    assert_eq!(
        req(&app, id).await.escalation_reason.as_deref(),
        Some("sla")
    );
    assert_eq!(req(&app, id).await.status, "escalated");
    wait_for_sms(&twilio, OPERATORS, &format!("#{id}")).await;
    // The offer stayed open; the volunteer accepts late and finishes.
    let code: String = on_db!(&app.state.db, |c| sqlx::query_scalar(
        "SELECT code FROM offers WHERE request_id = $1 AND status = 'pending'"
    )
    .bind(id)
    .fetch_one(c)
    .await)
    .unwrap();
    sms(&app, "SMA21", NEAR, &format!("YES {code}")).await;
    assert_eq!(req(&app, id).await.status, "assigned");
    sms(&app, "SMD21", NEAR, "DONE").await;
    assert_eq!(req(&app, id).await.status, "done");
}

async fn a_request_still_open_after_the_second_delay_is_reported_to_the_second_level(
    backend: Backend,
) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(
        backend,
        &twilio,
        &[
            ("HOTLINE580__SLA__SECOND_LEVEL_SECS", "1"),
            ("HOTLINE580__SLA__SECOND_LEVEL_PHONE", STREET_OFFICE),
        ],
    )
    .await;
    seed(&app).await;
    sms(&app, "SMR22", RESIDENT, "厨房漏水").await;
    let id = scalar_i64(&app, "SELECT MAX(id) FROM requests").await;
    wait_for_breach(&app, id, "second_level").await;
    let text = wait_for_sms(&twilio, STREET_OFFICE, &format!("#{id}")).await;
    assert!(text.contains("仍未完成"), "{text}");
    assert_eq!(req(&app, id).await.status, "escalated");
}

async fn completed_clock_jobs(app: &TestApp) -> i64 {
    scalar_i64(app, "SELECT COUNT(*) FROM river_job WHERE kind = 'sla_clock' AND CAST(state AS TEXT) = 'completed'").await
}

async fn a_clock_that_was_kept_changes_nothing(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[("HOTLINE580__SLA__DONE_SECS", "1")]).await;
    seed(&app).await;
    let now = hotline580::store::now_ms();
    let id = seeded_request(
        &app,
        "closed",
        "repair",
        "yellow",
        Some(RESIDENT),
        None,
        now,
        Some(now),
        Some(now),
        Some(5),
    )
    .await;
    let mut tx = app.state.db.begin().await.unwrap();
    hotline580::followup::clocks::start(&app.state.jobs, &mut tx, &app.state.config, id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    wait_until(&app, "SELECT COUNT(*) FROM river_job WHERE kind = 'sla_clock' AND CAST(state AS TEXT) = 'completed'", 1).await;
    assert_eq!(req(&app, id).await.status, "closed");
    assert_eq!(
        scalar_i64(
            &app,
            &format!("SELECT COUNT(*) FROM events WHERE request_id = {id}")
        )
        .await,
        0
    );
    assert!(twilio.messages_to(OPERATORS).is_empty());
}

async fn a_clock_survives_a_restart(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed(&app).await;
    sms(&app, "SMR30", RESIDENT, "厨房漏水").await;
    let id = scalar_i64(&app, "SELECT MAX(id) FROM requests").await;
    assert_eq!(completed_clock_jobs(&app).await, 0);
    let db = app.stop().await;
    // While the service is down, a day passes: the clocks' jobs, written at
    // intake, are now due (their deadlines moved to their creation time). The
    // acceptance clock (2 h for yellow) is still early and does nothing.
    let store = hotline580::store::Db::connect(&db.url).await.unwrap();
    on_db!(&store, |c| sqlx::query(
        "UPDATE river_job SET scheduled_at = created_at WHERE kind = 'sla_clock'"
    )
    .execute(c)
    .await
    .map(|_| ()))
    .unwrap();
    store.close().await;
    let base = twilio.base_url();
    let app = TestApp::spawn_on(
        db,
        &[
            ("HOTLINE580__TELEPHONY__PROVIDER", "twilio"),
            ("HOTLINE580__TWILIO__ACCOUNT_SID", ACCOUNT_SID),
            ("HOTLINE580__TWILIO__AUTH_TOKEN", AUTH_TOKEN),
            ("HOTLINE580__TWILIO__API_BASE", base.as_str()),
            ("HOTLINE580__OPERATORS__PHONE", OPERATORS),
            ("HOTLINE580__DISPATCH__QUIET_HOURS", "off"),
            // The day has passed for the restarted service too.
            ("HOTLINE580__SLA__DONE_SECS", "1"),
        ],
    )
    .await;
    wait_for_breach(&app, id, "done").await;
    assert_eq!(
        req(&app, id).await.escalation_reason.as_deref(),
        Some("sla")
    );
    wait_until(&app, "SELECT COUNT(*) FROM river_job WHERE kind = 'sla_clock' AND CAST(state AS TEXT) = 'completed'", 2).await;
    assert_eq!(
        scalar_i64(&app, &format!("SELECT COUNT(*) FROM events WHERE request_id = {id} AND data LIKE '%\"clock\":\"accept\"%'")).await,
        0,
        "the acceptance clock's deadline has not passed"
    );
}

// ---- figures ----

/// 2026-01-06T02:00:00Z: Tuesday 10:00 in Shanghai, inside ISO week 2026-W02.
const T: i64 = 1_767_664_800_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

#[allow(clippy::too_many_arguments)]
async fn seeded_request(
    app: &TestApp,
    status: &str,
    category: &str,
    grade: &str,
    resident: Option<&str>,
    reason: Option<&str>,
    created: i64,
    accepted: Option<i64>,
    done: Option<i64>,
    rating: Option<i64>,
) -> i64 {
    on_db!(&app.state.db, |c| sqlx::query_scalar(
        "INSERT INTO requests (status, category, grade, channel, resident_id, escalation_reason, created_at, accepted_at, done_at, rating, updated_at) \
         VALUES ($1, $2, $3, 'voice', (SELECT id FROM residents WHERE phone = $4), $5, $6, $7, $8, $9, $6) RETURNING id"
    )
    .bind(status)
    .bind(category)
    .bind(grade)
    .bind(resident)
    .bind(reason)
    .bind(created)
    .bind(accepted)
    .bind(done)
    .bind(rating)
    .fetch_one(c)
    .await)
    .unwrap()
}

/// A month hand-counted: six requests on 2026-01-06 (local), one the evening
/// before the month and one just after it (both outside).
async fn seed_month(app: &TestApp) {
    exec(app, "INSERT INTO residents (name, phone, address, grid, created_at, updated_at) VALUES \
               ('甲', '+8613800000001', '1号', '网格3', 0, 0), ('乙', '+8613800000002', '2号', '网格5', 0, 0), \
               ('丙', '+8613800000003', '3号', '楼<7>&', 0, 0)").await;
    let (g3, g5, g7) = (
        Some("+8613800000001"),
        Some("+8613800000002"),
        Some("+8613800000003"),
    );
    // 1: on time, rated 5.
    seeded_request(
        app,
        "closed",
        "repair",
        "yellow",
        g3,
        None,
        T,
        Some(T + 30 * MIN),
        Some(T + 5 * HOUR),
        Some(5),
    )
    .await;
    // 2: accepted late (3 h > 2 h), escalated by its clock on the way, rated 4.
    let late = seeded_request(
        app,
        "closed",
        "repair",
        "yellow",
        g3,
        None,
        T,
        Some(T + 3 * HOUR),
        Some(T + 6 * HOUR),
        Some(4),
    )
    .await;
    exec(app, &format!("INSERT INTO events (request_id, type, at, actor, data) VALUES ({late}, 'request.status', {}, 'system', '{{\"escalation_reason\":\"sla\",\"status\":\"escalated\"}}')", T + 2 * HOUR)).await;
    // 3: done late (30 h), rated 2: a revisit.
    seeded_request(
        app,
        "escalated",
        "errands",
        "blue",
        g5,
        Some("revisit"),
        T,
        Some(T + HOUR),
        Some(T + 30 * HOUR),
        Some(2),
    )
    .await;
    // 4: on time, closed unrated.
    seeded_request(
        app,
        "closed",
        "companion",
        "blue",
        g5,
        None,
        T,
        Some(T + 10 * MIN),
        Some(T + 2 * HOUR),
        None,
    )
    .await;
    // 5: an emergency from an unknown caller, with the operators.
    seeded_request(
        app,
        "escalated",
        "emergency",
        "red",
        None,
        Some("emergency"),
        T,
        None,
        None,
        None,
    )
    .await;
    // 6: still being offered.
    seeded_request(
        app,
        "offering",
        "repair",
        "yellow",
        g7,
        None,
        T + HOUR,
        None,
        None,
        None,
    )
    .await;
    // Outside: 2025-12-31 23:00 and 2026-02-01 00:30, Shanghai time.
    let before = T - 5 * 24 * HOUR - 11 * HOUR;
    let after = T + 25 * 24 * HOUR + 14 * HOUR + 30 * MIN;
    seeded_request(
        app,
        "closed",
        "repair",
        "yellow",
        g3,
        None,
        before,
        Some(before + MIN),
        Some(before + HOUR),
        Some(1),
    )
    .await;
    seeded_request(
        app, "offering", "repair", "yellow", g3, None, after, None, None, None,
    )
    .await;
}

type Counts = (Option<String>, u64, u64, u64, u64, u64, u64);

fn counts(groups: &Value) -> Vec<Counts> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let n = |k: &str| g[k].as_u64().unwrap();
            (
                g["key"].as_str().map(str::to_string),
                n("received"),
                n("handled"),
                n("handled_on_time"),
                n("rated"),
                n("satisfied"),
                n("escalations"),
            )
        })
        .collect()
}

fn c(key: Option<&str>, n: [u64; 6]) -> Counts {
    (key.map(str::to_string), n[0], n[1], n[2], n[3], n[4], n[5])
}

async fn the_figures_of_a_seeded_month_match_the_hand_count(backend: Backend) {
    let twilio = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await;
    let app = spawn(backend, &twilio, &[]).await;
    seed_month(&app).await;
    assert_eq!(
        app.get("/api/stats?from=2026-01-01&to=2026-01-31")
            .await
            .status(),
        401
    );
    login(&app).await;
    for bad in [
        "/api/stats?from=2026-13-01&to=2026-01-31",
        "/api/stats?from=2026-01-01",
        "/api/stats?from=2026-02-01&to=2026-01-01",
        "/api/stats?from=1%2F1%2F2026&to=2026-01-31",
    ] {
        let r = app.get(bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().len() > 10, "{bad}: {e}");
    }
    let r = app.get("/api/stats?from=2026-01-01&to=2026-01-31").await;
    assert_eq!(r.status(), 200);
    let s: Value = r.json().await.unwrap();
    assert_eq!(
        s["total"],
        json!({
            "received": 6, "handled": 4, "handled_on_time": 2,
            "median_accept_secs": 2700.0, "median_done_secs": 19800.0,
            "rated": 3, "satisfied": 2, "share_rated": 0.75, "satisfaction": 2.0 / 3.0,
            "escalations": 3,
        })
    );
    // (key, received, handled, on time, rated, satisfied, escalations)
    assert_eq!(
        counts(&s["by_category"]),
        vec![
            c(Some("repair"), [3, 2, 1, 2, 2, 1]),
            c(Some("errands"), [1, 1, 0, 1, 0, 1]),
            c(Some("companion"), [1, 1, 1, 0, 0, 0]),
            c(Some("emergency"), [1, 0, 0, 0, 0, 1]),
        ]
    );
    assert_eq!(s["by_category"][0]["median_accept_secs"], 6300.0);
    assert_eq!(
        counts(&s["by_grade"]),
        vec![
            c(Some("red"), [1, 0, 0, 0, 0, 1]),
            c(Some("yellow"), [3, 2, 1, 2, 2, 1]),
            c(Some("blue"), [2, 2, 1, 1, 0, 1]),
        ]
    );
    assert_eq!(
        counts(&s["by_grid"]),
        vec![
            c(Some("楼<7>&"), [1, 0, 0, 0, 0, 0]),
            c(Some("网格3"), [2, 2, 1, 2, 2, 1]),
            c(Some("网格5"), [2, 2, 1, 1, 0, 1]),
            c(None, [1, 0, 0, 0, 0, 1]),
        ]
    );

    // Every day of the period, for the figures page's charts: the six all on 2026-01-06.
    let days = s["by_day"].as_array().unwrap();
    assert_eq!(days.len(), 31);
    assert_eq!(days[0]["date"], "2026-01-01");
    assert_eq!(days[30]["date"], "2026-01-31");
    for (i, d) in days.iter().enumerate() {
        let received = if i == 5 { 6 } else { 0 };
        assert_eq!(d["received"], received, "{d}");
    }
    let mut sixth = days[5].clone();
    sixth.as_object_mut().unwrap().remove("date");
    assert_eq!(sixth, s["total"]);

    // The weekly report of the same days prints the same figures.
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hotline580"))
            .args(args)
            .env("HOTLINE580__DATABASE__URL", &app.db.url)
            .env("HOTLINE580__LOG__LEVEL", "warn")
            .output()
            .expect("the binary runs")
    };
    let out = run(&["report", "--week", "2026-W02", "--format", "csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut rows = csv.lines();
    assert!(rows.next().unwrap().starts_with("group,key,received"));
    let from_csv: Vec<(String, Counts)> = rows
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            let key = (!f[1].is_empty() && f[1] != "(none)").then(|| f[1].to_string());
            (f[0].to_string(), (key, n(2), n(3), n(4), n(7), n(8), n(11)))
        })
        .collect();
    let mut from_api = vec![("all".to_string(), c(None, [6, 4, 2, 3, 2, 3]))];
    for (section, key) in [
        ("category", "by_category"),
        ("grade", "by_grade"),
        ("grid", "by_grid"),
    ] {
        from_api.extend(
            counts(&s[key])
                .into_iter()
                .map(|g| (section.to_string(), g)),
        );
    }
    assert_eq!(from_csv, from_api);
    assert!(
        csv.contains("all,,6,4,2,2700,19800,3,2,0.75,0.667,3"),
        "{csv}"
    );

    // The same report downloaded from the console, for operators who may.
    let r = app.get("/api/report?week=2026-W02&format=csv").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"hotline580-2026-W02.csv\""
    );
    assert_eq!(r.text().await.unwrap(), csv);
    let r = app.get("/api/report?week=2026-W02&format=html").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("楼&lt;7&gt;&amp;"));
    for bad in [
        "/api/report?week=2026-W99&format=csv",
        "/api/report?week=2026-W02&format=pdf",
        "/api/report?format=csv",
    ] {
        let r = app.get(bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().len() > 10, "{bad}: {e}");
    }
    let stranger = reqwest::Client::new()
        .get(app.url("/api/report?week=2026-W02&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);

    let out = run(&["report", "--week", "2026-W02"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2026-01-05 to 2026-01-11"), "{text}");
    let all: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("all"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        all,
        [
            "all", "6", "4", "2", "45m", "5h30m", "3", "2", "75%", "67%", "3"
        ]
    );

    let out = run(&["report", "--week", "2026-W02", "--format", "html"]);
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("楼&lt;7&gt;&amp;"),
        "{html}"
    );

    let out = run(&["report", "--week", "2026-W99"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2026-W47"),
        "the error shows the form"
    );
}

on_both_backends!(
    a_rating_is_taken_from_a_resident_over_the_intake_limit,
    done_by_sms_then_a_rating_by_sms_closes_the_request,
    the_texts_about_a_request_are_linked_to_it_and_shown_on_its_page,
    an_operator_marks_done_and_a_landline_resident_rates_by_a_survey_call,
    a_low_rating_opens_a_revisit,
    a_complaint_in_words_opens_a_revisit_with_the_words,
    no_answer_closes_the_request_unrated,
    points_accumulate_in_the_ledger_and_points_answers_balance_and_rank,
    a_red_request_not_accepted_in_time_is_escalated_and_can_still_be_accepted,
    a_request_regraded_red_runs_the_red_acceptance_clock,
    a_job_not_done_in_time_is_escalated_and_can_still_be_finished,
    a_request_still_open_after_the_second_delay_is_reported_to_the_second_level,
    the_figures_of_a_seeded_month_match_the_hand_count,
    a_clock_that_was_kept_changes_nothing,
    a_clock_survives_a_restart,
);
