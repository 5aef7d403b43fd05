//! Posting webhooks to a running service as Twilio does (signed for its
//! `server.public_url`), or unsigned as anyone on the internet can.

#![allow(dead_code)]

use hotline580::telephony::signature::expected_signature;

/// What the service answered: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// POSTs `params` to `base` + `path_and_query`, signed with `token` for `public_url`.
pub async fn post_signed(
    client: &reqwest::Client,
    base: &str,
    public_url: &str,
    token: &str,
    path_and_query: &str,
    params: &[(&str, &str)],
) -> Answer {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = expected_signature(token, &format!("{public_url}{path_and_query}"), &owned);
    let r = client
        .post(format!("{base}{path_and_query}"))
        .header("X-Twilio-Signature", sig)
        .form(&owned)
        .send()
        .await
        .expect("the service answers");
    Answer {
        status: r.status().as_u16(),
        body: r.text().await.unwrap_or_default(),
    }
}

/// POSTs a raw body (any bytes) with an optional signature header. A body
/// over the server's limit may be refused (413) before it is read, and the
/// connection closed while it is still being sent: that is status 0.
pub async fn post_raw(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> Answer {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = signature {
        req = req.header("X-Twilio-Signature", s);
    }
    match req.send().await {
        Ok(r) => Answer {
            status: r.status().as_u16(),
            body: r.text().await.unwrap_or_default(),
        },
        Err(e) => Answer {
            status: 0,
            body: e.to_string(),
        },
    }
}

/// Like `post_signed`, but a connection that fails (the service died) is an `Err`.
pub async fn try_post_signed(
    client: &reqwest::Client,
    base: &str,
    public_url: &str,
    token: &str,
    path_and_query: &str,
    params: &[(String, String)],
) -> Result<Answer, reqwest::Error> {
    let sig = expected_signature(token, &format!("{public_url}{path_and_query}"), params);
    let r = client
        .post(format!("{base}{path_and_query}"))
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await?;
    Ok(Answer {
        status: r.status().as_u16(),
        body: r.text().await?,
    })
}
