//! The admin side's refusals are HTML pages with the navigation (their status kept); the
//! page's script and the API keep JSON, the device endpoints PHP's text.

use crate::common::oneshot::Admin as Harness;
use crate::common::*;
use axum::http::StatusCode;

#[tokio::test]
async fn admin_errors_are_html_pages_with_the_navigation() {
    let h = Harness::new();
    let login = h.login().await;
    for (uri, status, words) in [
        (
            "/admin/admin.php?mode=nonsense",
            StatusCode::BAD_REQUEST,
            "unknown mode=nonsense",
        ),
        (
            &format!("/admin/admin.php?mode=backup&sn={SN_RECEPTION}&n=99") as &str,
            StatusCode::NOT_FOUND,
            "no such backup",
        ),
        (
            &format!("/admin/admin.php?mode=backup&sn={SN_RECEPTION}&a=1") as &str,
            StatusCode::BAD_REQUEST,
            "choose two versions",
        ),
        (
            "/admin/admin.php?mode=device&sn=00-90-33-99-99-99",
            StatusCode::NOT_FOUND,
            "no state file",
        ),
        (
            "/admin/admin.php?mode=ui&cmd=deliverfile&fn=..%2Fx",
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let r = h.get(uri, &login).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{uri}"
        );
        let t = r.text();
        assert!(t.contains("<nav aria-label=\"Admin pages\">"), "{uri}: {t}");
        assert!(
            t.contains(&format!("<h1>Error {}", status.as_u16())),
            "{uri}: {t}"
        );
        assert!(t.contains(words), "{uri}: {t}");
        assert!(t.contains("Back to the devices"), "{uri}");
    }
    // the page's script still gets JSON
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=delstatus",
            Some(&login),
            "sn=x",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["error"].is_string());
    // the device endpoints keep PHP's text
    let r = h
        .call("GET", "/update.php?mode=frob", &[], Vec::new())
        .await;
    assert_eq!(r.text(), "# unknown cmd=frob - exit\r\n");
}
