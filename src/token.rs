//! `xnatfs token`: issue an XNAT alias token from the user's password and write it to a private
//! file, for `xnatfs mount --token-file`, so that a long job's mount never holds the password.
//!
//! The credentials are found as `xnatfs mount` finds them (flags, environment, netrc, config
//! file, prompt). The token is the server's JSON answer, written whole (it names its user and
//! when it expires) to a new file made 0600 beside the target and renamed over it, never
//! through a link; without `--output` it goes to standard output.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::TokenArgs;
use crate::config::{self, CredentialArgs, Environment, TerminalPrompter};
use crate::fs::owned_dir;
use crate::xnat::token::Token;
use crate::xnat::{paths, XnatClient};

pub fn run(args: &TokenArgs) -> ExitCode {
    match issue(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xnatfs token: {message}");
            ExitCode::FAILURE
        }
    }
}

fn issue(args: &TokenArgs) -> Result<(), String> {
    let creds = config::resolve(
        &CredentialArgs {
            server: args.server.clone(),
            user: args.user.clone(),
            config_file: args.config.clone(),
        },
        &Environment::from_process(),
        &TerminalPrompter,
    )
    .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut client_config = creds.client_config();
    client_config.ca_cert = args.ca_cert.clone();
    let answer = runtime.block_on(async {
        let client = XnatClient::connect(client_config)
            .await
            .map_err(|e| format!("cannot log in to {} as {}: {e}", creds.server, creds.user))?;
        let answer = client.get_text(&paths::token_issue(), &[]).await;
        let _ = client.logout().await;
        answer.map_err(|e| format!("the server issued no token: {e}"))
    })?;
    let token =
        Token::parse(&answer).map_err(|e| format!("the server's answer is not a token ({e})"))?;
    let until = token
        .expires
        .map(|t| format!(", valid until {}", httpdate::fmt_http_date(t)))
        .unwrap_or_default();
    match &args.output {
        None => println!("{}", answer.trim()),
        Some(path) => {
            write_private(path, answer.trim().as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!(
                "xnatfs token: a token for {} on {}{until} is in {} (use it with --token-file)",
                token.user.as_deref().unwrap_or(&creds.user),
                creds.server,
                path.display()
            );
        }
    }
    Ok(())
}

/// Write `bytes` and a newline to `path` as a new private file renamed over it: whoever reads
/// `path` sees the old token or the new one, and no one else ever can.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(
            "is a symbolic link: not replaced (give the file it points to)",
        ));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = dir.unwrap_or(Path::new(".")).join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut body = bytes.to_vec();
    body.push(b'\n');
    owned_dir::replace_private(&tmp, path, &body, true)
}
