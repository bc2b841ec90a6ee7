//! `upgate sign-url`: prints one signed download URL (`upgate_contract::url_sig`), what an app
//! registered with `downloads = "signed"` hands whoever may fetch one of its files.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use upgate_contract::url_sig::sign_url as sign;

/// `upgate sign-url --secret whsec_… URL [--expires-in S]`
#[derive(Args, Debug)]
#[command(after_help = "\
The URL gets ?expires=<unix s>&signature=<base64url HMAC-SHA256(key, \"GET\\n<path>\\n<expires>\")>, \
the key being the decoded whsec_ secret and <path> the URL's path percent-encoded as it is sent \
(the URL is normalised first, so a space becomes %20).")]
pub struct SignUrlArgs {
    /// The app's secret (whsec_…), as `upgate register` printed it.
    #[arg(long, env = "UPGATE_APP_SECRET", hide_env_values = true)]
    pub secret: String,
    /// The file's download URL: http(s)://HOST[:PORT]/{appid}/{path}.
    pub url: String,
    /// Seconds from now until the URL expires.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub expires_in: u64,
}

/// The signed URL, expiring `expires_in` after `now` (unix seconds).
pub fn signed(args: &SignUrlArgs, now: u64) -> Result<String, String> {
    // Normalised as an HTTP client will send it (percent-encoding what must be).
    let url = url::Url::parse(&args.url).map_err(|e| format!("bad URL {:?}: {e}", args.url))?;
    sign(
        &args.secret,
        url.as_str(),
        now.saturating_add(args.expires_in),
    )
    .map_err(|e| e.to_string())
}

pub fn sign_url(args: SignUrlArgs) -> ExitCode {
    if !args
        .secret
        .starts_with(upgate_contract::sign::SECRET_PREFIX)
    {
        eprintln!("upgate sign-url: --secret must be the app's whsec_… secret");
        return ExitCode::from(2);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match signed(&args, now) {
        Ok(url) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("upgate sign-url: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use upgate_contract::url_sig::verify_path;

    use super::*;

    #[test]
    fn the_path_is_signed_as_it_will_be_sent() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
        let args = SignUrlArgs {
            secret: secret.clone(),
            url: "http://n:1/app1/a b.txt".into(),
            expires_in: 60,
        };
        let url = signed(&args, 1000).unwrap();
        assert!(url.starts_with("http://n:1/app1/a%20b.txt?expires=1060&signature="));
        let sig = url.rsplit_once("signature=").unwrap().1;
        let ok = verify_path(&[secret], b"/app1/a%20b.txt", Some("1060"), Some(sig), 1000);
        assert_eq!(ok, Ok(()));
    }
}
