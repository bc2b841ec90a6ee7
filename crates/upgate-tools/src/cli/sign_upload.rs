//! `upgate sign-upload`: prints one signed upload token (`upgate_contract::token`), what an
//! application hands a browser so that it may upload straight to the node.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args};
use upgate_contract::token::{sign_upload as sign, UploadPolicy};

use crate::demo::parse_size;

/// `upgate sign-upload --secret whsec_… --appid ID (--key K | --key-prefix P) [--expires-in S]
/// [--max-bytes N] [--content-type T]…`
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("where").required(true).args(["key", "key_prefix"])))]
#[command(after_help = "\
The token is base64url(policy JSON) \".\" base64url(HMAC-SHA256(key, first part)), the key being \
the decoded whsec_ secret; a browser sends it as the `token` field of a form upload, as \
?token= or as `Authorization: Upload-Token <token>`.")]
pub struct SignUploadArgs {
    /// The app's secret (whsec_…), as `upgate register` printed it.
    #[arg(long, env = "UPGATE_APP_SECRET", hide_env_values = true)]
    pub secret: String,
    /// The appid the upload is for.
    #[arg(long)]
    pub appid: String,
    /// The one stored path allowed (relative to the appid).
    #[arg(long)]
    pub key: Option<String>,
    /// Or: any stored path starting with this.
    #[arg(long, value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// Seconds from now until the token expires.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub expires_in: u64,
    /// The largest upload allowed (bytes, or with K/M/G suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_bytes: Option<u64>,
    /// An allowed content type (`image/png`, `image/*`); repeat for more. Default: any.
    #[arg(long = "content-type", value_name = "TYPE")]
    pub content_types: Vec<String>,
}

impl SignUploadArgs {
    /// The policy these arguments describe, expiring `expires_in` after `now` (unix seconds).
    pub fn policy(&self, now: u64) -> UploadPolicy {
        UploadPolicy {
            appid: self.appid.clone(),
            key: self.key.clone(),
            key_prefix: self.key_prefix.clone(),
            expires: now.saturating_add(self.expires_in),
            max_bytes: self.max_bytes,
            content_types: (!self.content_types.is_empty()).then(|| self.content_types.clone()),
        }
    }

    /// The token, expiring `expires_in` after `now`.
    pub fn token(&self, now: u64) -> String {
        sign(&self.secret, &self.policy(now))
    }
}

pub fn sign_upload(args: SignUploadArgs) -> ExitCode {
    if !args
        .secret
        .starts_with(upgate_contract::sign::SECRET_PREFIX)
    {
        eprintln!("upgate sign-upload: --secret must be the app's whsec_… secret");
        return ExitCode::from(2);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("{}", args.token(now));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use upgate_contract::token::{verify_upload, TokenError};

    use crate::cli::Command;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn parse(args: &[&str]) -> Result<super::SignUploadArgs, clap::Error> {
        let mut argv = vec!["upgate", "sign-upload", "--secret", SECRET];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::SignUpload(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_printed_token_verifies_and_carries_the_arguments() {
        let args = parse(&[
            "--appid",
            "app1",
            "--key-prefix",
            "uploads/",
            "--expires-in",
            "600",
            "--max-bytes",
            "2M",
            "--content-type",
            "image/*",
            "--content-type",
            "application/pdf",
        ])
        .unwrap();
        let now = 1_700_000_000;
        let token = args.token(now);
        let policy = verify_upload(&token, &[SECRET.to_string()], now).unwrap();
        assert_eq!(policy.appid, "app1");
        assert_eq!(policy.key, None);
        assert_eq!(policy.key_prefix.as_deref(), Some("uploads/"));
        assert_eq!(policy.expires, now + 600);
        assert_eq!(policy.max_bytes, Some(2 << 20));
        assert_eq!(
            policy.content_types,
            Some(vec!["image/*".to_string(), "application/pdf".to_string()])
        );
        assert_eq!(
            policy.allows("app1", "uploads/cat.png", Some(10), "image/png"),
            Ok(())
        );
        assert_eq!(
            verify_upload(&token, &[SECRET.to_string()], now + 601),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_key_alone_gives_a_minimal_policy() {
        let args = parse(&["--appid", "a", "--key", "x/y.txt"]).unwrap();
        let policy = verify_upload(&args.token(5), &[SECRET.to_string()], 5).unwrap();
        assert_eq!(policy.key.as_deref(), Some("x/y.txt"));
        assert_eq!(policy.expires, 605, "--expires-in defaults to 600");
        assert_eq!((policy.max_bytes, policy.content_types), (None, None));
    }

    #[test]
    fn exactly_one_of_key_and_key_prefix() {
        assert!(parse(&["--appid", "a"]).is_err());
        assert!(parse(&["--appid", "a", "--key", "k", "--key-prefix", "p"]).is_err());
    }
}
