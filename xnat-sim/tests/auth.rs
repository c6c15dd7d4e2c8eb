//! Authentication and permissions: Basic, JSESSION, form login, /data/auth,
//! alias tokens, session expiry, lockout, and what non-members get.

mod common;
use common::{fixture, start, start_with, Api};
use reqwest::Method;
use std::time::Duration;

fn cookie_api(sim: &common::Sim, session: &str) -> reqwest::blocking::RequestBuilder {
    let _ = sim;
    reqwest::blocking::Client::new()
        .get(format!("{}/data/projects?format=json", sim.server.url()))
        .header("Cookie", format!("JSESSIONID={session}"))
}

#[test]
fn basic_and_jsession() {
    let sim = start();
    let a = sim.alice();
    let r = a.get("/data/JSESSION");
    assert_eq!(r.status().as_u16(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let id = r.text().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(cookies
        .iter()
        .any(|c| c == &format!("JSESSIONID={id}; Path=/; HttpOnly")));
    let exp = cookies
        .iter()
        .find(|c| c.starts_with("SESSION_EXPIRATION_TIME=\""))
        .unwrap();
    assert!(exp.contains(",900000\""), "{exp}");

    // the cookie alone works, and carries the expiration cookie too
    let r = cookie_api(&sim, &id).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("SESSION_EXPIRATION_TIME")));
    // heartbeat with the cookie returns the same id
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/data/JSESSION", sim.server.url()))
        .header("Cookie", format!("JSESSIONID={id}"))
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), id);
    // DELETE invalidates it
    let r = reqwest::blocking::Client::new()
        .delete(format!("{}/data/JSESSION", sim.server.url()))
        .header("Cookie", format!("JSESSIONID={id}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(cookie_api(&sim, &id).send().unwrap().status().as_u16(), 401);

    // wrong password / nothing at all
    let r = sim.api("alice", "nope").get("/data/projects");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"XNAT\"");
    let r = sim.anonymous().get("/data/projects");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // a browser is sent to the login page instead
    let r = sim
        .anonymous()
        .req(Method::GET, "/data/projects")
        .header("User-Agent", "Mozilla/5.0")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()["location"], "/app/template/Login.vm");
}

#[test]
fn form_login_and_who_am_i() {
    let sim = start();
    let anon = sim.anonymous();
    let r = anon
        .req(Method::PUT, "/data/services/auth")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=alice&password=pw")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let id = r.text().unwrap();
    assert_eq!(id.len(), 32);
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/data/auth", sim.server.url()))
        .header("Cookie", format!("JSESSIONID={id}"))
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "User 'alice' is logged in");
    let r = anon
        .req(Method::POST, "/data/services/auth")
        .body("username=alice&password=bad")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = anon.get("/data/auth");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        sim.alice().text("/data/auth").1,
        "User 'alice' is logged in"
    );
}

#[test]
fn alias_tokens() {
    let sim = start();
    let a = sim.alice();
    let t = a.json("/data/services/tokens/issue");
    for key in [
        "alias",
        "secret",
        "xdatUserId",
        "singleUse",
        "estimatedExpirationTime",
        "timestamp",
        "enabled",
        "created",
        "id",
    ] {
        assert!(t.get(key).is_some(), "{key}");
    }
    let (alias, secret) = (t["alias"].as_str().unwrap(), t["secret"].as_str().unwrap());
    let tok = sim.api(alias, secret);
    assert_eq!(tok.text("/data/auth").1, "User 'alice' is logged in");
    assert_eq!(
        a.json(&format!("/data/services/tokens/validate/{alias}/{secret}")),
        serde_json::json!({"valid": "alice"})
    );
    assert_eq!(
        a.text(&format!(
            "/data/services/tokens/invalidate/{alias}/{secret}"
        ))
        .0,
        200
    );
    assert_eq!(tok.get("/data/auth").status().as_u16(), 401);
    // xnatpy's token login: Basic GET / and take the JSESSIONID cookie
    let t = a.json("/data/services/tokens/issue");
    let r = sim
        .api(t["alias"].as_str().unwrap(), t["secret"].as_str().unwrap())
        .get("/");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("JSESSIONID=")));
}

#[test]
fn idle_session_expires() {
    let sim = start_with(|c| c.session_timeout = Duration::from_millis(300));
    let id = sim.alice().text("/data/JSESSION").1;
    assert_eq!(cookie_api(&sim, &id).send().unwrap().status().as_u16(), 200);
    std::thread::sleep(Duration::from_millis(450));
    let r = cookie_api(&sim, &id).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"XNAT\"");
}

#[test]
fn lockout_after_failed_logins() {
    let sim = start_with(|c| c.lockout_after = Some(3));
    for _ in 0..3 {
        assert_eq!(
            sim.api("alice", "wrong")
                .get("/data/auth")
                .status()
                .as_u16(),
            401
        );
    }
    assert_eq!(
        sim.alice().get("/data/auth").status().as_u16(),
        401,
        "locked even with the right password"
    );
    assert_eq!(
        sim.api("bob", "pw2").get("/data/auth").status().as_u16(),
        200,
        "others are not locked"
    );
}

#[test]
fn non_members_get_403_and_unknown_projects_404() {
    let sim = start();
    fixture(&sim);
    let bob = sim.api("bob", "pw2");
    assert_eq!(bob.rows("/data/projects").len(), 0);
    assert_eq!(bob.rows("/data/experiments").len(), 0);
    for path in [
        "/data/projects/P?format=json",
        "/data/projects/P/subjects",
        "/data/projects/P/subjects/S1/experiments/E1/scans",
        "/data/experiments/XNAT_E00001/scans/1/resources/NIFTI/files/t1.nii.gz",
        "/data/subjects/XNAT_S00001?format=json",
    ] {
        let (code, body) = bob.text(path);
        assert_eq!(code, 403, "{path}");
        assert!(body.contains("<h3>"), "{path}");
    }
    assert_eq!(bob.put("/data/projects/P/subjects/X").0, 403);
    assert_eq!(
        bob.upload("/data/projects/P/resources/R/files/f", b"x").0,
        403
    );
    assert_eq!(bob.delete("/data/projects/P/subjects/S1").0, 403);
    let (code, body) = bob.text("/data/projects/NOPE/subjects");
    assert_eq!(code, 404);
    assert!(body.contains("Unable to identify project NOPE"));
    // the admin sees everything; a granted member too
    assert_eq!(sim.api("root", "admin").rows("/data/projects").len(), 1);
    drop(bob);
    let dir = sim.dir;
    drop(sim.server);
    let mut c = common::config(&dir);
    c.members = vec![("bob".into(), "P".into())];
    let server = xnat_sim::BlockingSimServer::start(c).unwrap();
    let bob = Api::new(&server.url(), Some(("bob", "pw2")));
    assert_eq!(bob.rows("/data/projects/P/subjects").len(), 2);
    // members may not delete the project; its owner may
    assert_eq!(bob.delete("/data/projects/P").0, 403);
}
