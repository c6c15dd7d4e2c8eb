//! Each credential source alone, and their precedence, with temp files and a made-up
//! environment (never the real home directory).

use std::cell::Cell;

use super::*;

struct FakeTerminal {
    user: &'static str,
    password: &'static str,
    asked: Cell<u32>,
}

impl FakeTerminal {
    fn new(user: &'static str, password: &'static str) -> Self {
        FakeTerminal {
            user,
            password,
            asked: Cell::new(0),
        }
    }
}

impl Prompter for FakeTerminal {
    fn interactive(&self) -> bool {
        true
    }
    fn read_user(&self, _: &str) -> io::Result<String> {
        self.asked.set(self.asked.get() + 1);
        Ok(self.user.into())
    }
    fn read_password(&self, _: &str, _: &str) -> io::Result<String> {
        self.asked.set(self.asked.get() + 1);
        Ok(self.password.into())
    }
}

/// A temp home with an optional `.netrc`.
fn home(netrc: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = netrc {
        std::fs::write(dir.path().join(".netrc"), text).unwrap();
    }
    dir
}

fn env(vars: &[(&str, &str)], home: &tempfile::TempDir) -> Environment {
    Environment::new(vars.iter().copied(), Some(home.path().to_path_buf()))
}

fn server_flag(url: &str) -> CredentialArgs {
    CredentialArgs {
        server: Some(url.into()),
        ..Default::default()
    }
}

#[test]
fn server_urls_are_normalised() {
    let n = |s| normalise_server(s).unwrap();
    assert_eq!(
        n("https://xnat.example.org/"),
        ("https://xnat.example.org".into(), None)
    );
    assert_eq!(n("https://host/xnat//"), ("https://host/xnat".into(), None));
    assert_eq!(
        n("xnat.example.org:8443"),
        ("https://xnat.example.org:8443".into(), None)
    );
    assert_eq!(
        n(" http://127.0.0.1:8080 "),
        ("http://127.0.0.1:8080".into(), None)
    );
    assert_eq!(
        n("https://alice@host/xnat"),
        ("https://host/xnat".into(), Some("alice".into()))
    );
    for bad in [
        "https://alice:pw@host",
        "ftp://host",
        "https://host/?a=b",
        "https://",
    ] {
        assert!(
            matches!(normalise_server(bad), Err(ConfigError::BadServer { .. })),
            "{bad}"
        );
    }
}

#[test]
fn environment_alone() {
    let h = home(None);
    let e = env(
        &[
            ("XNAT_HOST", "https://x.org/"),
            ("XNAT_USER", "u"),
            ("XNAT_PASS", "p"),
        ],
        &h,
    );
    let c = resolve(&CredentialArgs::default(), &e, &NoPrompt).unwrap();
    assert_eq!(
        (c.server.as_str(), c.user.as_str(), c.password.as_str()),
        ("https://x.org", "u", "p")
    );
    assert_eq!(c.user_source, Source::Environment);
}

#[test]
fn flags_beat_environment() {
    let h = home(None);
    let e = env(
        &[
            ("XNAT_HOST", "https://env.org"),
            ("XNAT_USER", "envuser"),
            ("XNAT_PASS", "p"),
        ],
        &h,
    );
    let args = CredentialArgs {
        server: Some("https://flag.org".into()),
        user: Some("flaguser".into()),
        config_file: None,
    };
    // XNAT_PASS belongs to XNAT_USER, not to the user named by the flag.
    let err = resolve(&args, &e, &NoPrompt).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Missing {
                what: "password",
                ..
            }
        ),
        "{err}"
    );
    // Without XNAT_USER, XNAT_PASS goes with whichever user was chosen.
    let e = env(&[("XNAT_HOST", "https://env.org"), ("XNAT_PASS", "p")], &h);
    let c = resolve(&args, &e, &NoPrompt).unwrap();
    assert_eq!(c.server, "https://flag.org");
    assert_eq!(c.user, "flaguser");
    assert_eq!(c.password, "p");
    assert_eq!(c.user_source, Source::Flag);
    assert_eq!(c.password_source, Source::Environment);
}

#[test]
fn netrc_by_host_and_port() {
    let h = home(Some(
        "machine xnat.org login plain password p1\n\
         machine xnat.org:8443 login ported password p2\n\
         default login dflt password p3\n",
    ));
    let e = env(&[], &h);
    let c = resolve(&server_flag("https://xnat.org:8443/xnat"), &e, &NoPrompt).unwrap();
    assert_eq!((c.user.as_str(), c.password.as_str()), ("ported", "p2"));
    assert_eq!(c.password_source, Source::Netrc(h.path().join(".netrc")));
    let c = resolve(&server_flag("https://xnat.org:9999"), &e, &NoPrompt).unwrap();
    assert_eq!(c.user, "plain");
    let c = resolve(&server_flag("https://XNAT.org"), &e, &NoPrompt).unwrap();
    assert_eq!(c.user, "plain");
    let c = resolve(&server_flag("https://other.org"), &e, &NoPrompt).unwrap();
    assert_eq!(c.user, "dflt");
}

#[test]
fn netrc_env_variable_points_elsewhere() {
    let h = home(Some("machine xnat.org login home password h\n"));
    let other = h.path().join("alt-netrc");
    std::fs::write(&other, "machine xnat.org login alt password a\n").unwrap();
    let e = env(&[("NETRC", other.to_str().unwrap())], &h);
    let c = resolve(&server_flag("https://xnat.org"), &e, &NoPrompt).unwrap();
    assert_eq!((c.user.as_str(), c.password.as_str()), ("alt", "a"));
    let e = env(&[("NETRC", "~/alt-netrc")], &h);
    let c = resolve(&server_flag("https://xnat.org"), &e, &NoPrompt).unwrap();
    assert_eq!(c.user, "alt");
}

#[test]
fn netrc_password_only_for_its_own_login() {
    let h = home(Some("machine xnat.org login alice password secret\n"));
    let e = env(&[], &h);
    let args = CredentialArgs {
        user: Some("bob".into()),
        ..server_flag("https://xnat.org")
    };
    let err = resolve(&args, &e, &NoPrompt).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Missing {
                what: "password",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("machine xnat.org login USER"), "{msg}");
    assert!(!msg.contains("secret"));
    let terminal = FakeTerminal::new("-", "typed");
    let c = resolve(&args, &e, &terminal).unwrap();
    assert_eq!((c.user.as_str(), c.password.as_str()), ("bob", "typed"));
    assert_eq!(c.password_source, Source::Prompt);
}

#[test]
fn environment_beats_netrc() {
    let h = home(Some("machine xnat.org login alice password n\n"));
    let e = env(&[("XNAT_USER", "alice"), ("XNAT_PASS", "e")], &h);
    let c = resolve(&server_flag("https://xnat.org"), &e, &NoPrompt).unwrap();
    assert_eq!(c.password, "e");
    // The user from the environment, the password from netrc when the logins agree.
    let e = env(&[("XNAT_USER", "alice")], &h);
    let c = resolve(&server_flag("https://xnat.org"), &e, &NoPrompt).unwrap();
    assert_eq!(
        (c.password.as_str(), c.user_source.clone()),
        ("n", Source::Environment)
    );
}

#[test]
fn pyxnat_config_file() {
    let h = home(None);
    let cfg = h.path().join("xnat.cfg");
    std::fs::write(
        &cfg,
        r#"{"server": "https://cfg.org/xnat/", "user": "cu", "password": "cp", "verify": true}"#,
    )
    .unwrap();
    let args = CredentialArgs {
        config_file: Some(cfg.clone()),
        ..Default::default()
    };
    let c = resolve(&args, &env(&[], &h), &NoPrompt).unwrap();
    assert_eq!(c.server, "https://cfg.org/xnat");
    assert_eq!((c.user.as_str(), c.password.as_str()), ("cu", "cp"));
    assert_eq!(c.password_source, Source::ConfigFile(cfg.clone()));

    // Lowest of the non-interactive sources: environment and netrc come first.
    std::fs::write(
        h.path().join(".netrc"),
        "machine cfg.org login nu password np\n",
    )
    .unwrap();
    let c = resolve(&args, &env(&[], &h), &NoPrompt).unwrap();
    assert_eq!((c.user.as_str(), c.password.as_str()), ("nu", "np"));
    let e = env(&[("XNAT_HOST", "https://env.org")], &h);
    let c = resolve(&args, &e, &NoPrompt).unwrap();
    assert_eq!(c.server, "https://env.org");
    assert_eq!(c.user, "cu");
}

#[test]
fn broken_files_are_clear_errors() {
    for broken in [
        "machine\n",
        "machine x.org login alice password\n",
        "machine x.org login alice passwd s3cret\n",
    ] {
        let h = home(Some(broken));
        let err = resolve(&server_flag("https://x.org"), &env(&[], &h), &NoPrompt).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadNetrc { .. }),
            "{broken:?}: {err}"
        );
    }

    let h = home(None);
    let cfg = h.path().join("bad.cfg");
    std::fs::write(&cfg, "server = x").unwrap();
    let args = CredentialArgs {
        config_file: Some(cfg),
        ..Default::default()
    };
    let err = resolve(&args, &env(&[], &h), &NoPrompt).unwrap_err();
    assert!(matches!(err, ConfigError::BadConfigFile { .. }), "{err}");
    let args = CredentialArgs {
        config_file: Some(h.path().join("missing.cfg")),
        ..Default::default()
    };
    let err = resolve(&args, &env(&[], &h), &NoPrompt).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn prompt_only_on_a_terminal() {
    let h = home(None);
    let e = env(&[], &h);
    let args = server_flag("https://x.org");
    let err = resolve(&args, &e, &NoPrompt).unwrap_err();
    assert!(
        matches!(err, ConfigError::Missing { what: "user", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("terminal"), "{err}");
    let terminal = FakeTerminal::new("me", "pw");
    let c = resolve(&args, &e, &terminal).unwrap();
    assert_eq!((c.user.as_str(), c.password.as_str()), ("me", "pw"));
    assert_eq!(terminal.asked.get(), 2);
}

#[test]
fn no_server_anywhere() {
    let h = home(None);
    let err = resolve(&CredentialArgs::default(), &env(&[], &h), &NoPrompt).unwrap_err();
    assert!(matches!(err, ConfigError::NoServer));
}

#[test]
fn user_from_url_counts_as_a_flag() {
    let h = home(Some(
        "machine x.org login alice password a\nmachine y.org login bob password b\n",
    ));
    let c = resolve(
        &server_flag("https://alice@x.org"),
        &env(&[], &h),
        &NoPrompt,
    )
    .unwrap();
    assert_eq!(
        (c.server.as_str(), c.user.as_str(), c.password.as_str()),
        ("https://x.org", "alice", "a")
    );
}

#[test]
fn debug_output_hides_the_password() {
    let h = home(None);
    let e = env(&[("XNAT_USER", "u"), ("XNAT_PASS", "hunter2")], &h);
    let c = resolve(&server_flag("https://x.org"), &e, &NoPrompt).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!format!("{:?}", c.client_config()).contains("hunter2"));
}

#[test]
fn without_home_the_password_database_gives_it() {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let out = std::process::Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .output()
        .expect("run getent");
    let line = String::from_utf8(out.stdout).unwrap();
    let want = line.trim_end().split(':').nth(5).expect("a passwd line");
    assert_eq!(passwd_home(uid), Some(PathBuf::from(want)));
    assert_eq!(passwd_home(u32::MAX - 7), None);
}
