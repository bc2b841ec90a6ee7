//! Every error type's status, JSON code and blame, in one place. A new error type that can
//! answer a request gets its `impl Fault` here.

use super::{Blame, Fault, RouteError};
use crate::callback::{PolicyError, PoolError, Veto};
use crate::download::DownloadError;
use crate::http::ProtocolError;
use crate::register::RegisterError;
use crate::registry::RegistryError;
use crate::server::BodyError;
use crate::upload::resumable::ResumableError;
use crate::upload::{FlowError, Refusal};

impl Fault for ProtocolError {
    fn status(&self) -> u16 {
        ProtocolError::status(*self)
    }
    fn code(&self) -> &'static str {
        ProtocolError::code(*self)
    }
    fn blame(&self) -> Blame {
        Blame::Client
    }
    fn message(&self) -> String {
        ProtocolError::message(*self).to_string()
    }
}

impl Fault for RouteError {
    fn status(&self) -> u16 {
        match self {
            RouteError::NotFound | RouteError::NoSuchFile => 404,
            RouteError::MethodNotAllowed { .. } => 405,
            RouteError::ExpectationFailed => 417,
            RouteError::HeaderTimeout => 408,
            RouteError::TooManyConnections => 503,
            RouteError::OriginNotAllowed => 403,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RouteError::NotFound | RouteError::NoSuchFile => "not_found",
            RouteError::MethodNotAllowed { .. } => "method_not_allowed",
            RouteError::ExpectationFailed => "expectation_failed",
            RouteError::HeaderTimeout => "header_timeout",
            RouteError::TooManyConnections => "too_many_connections",
            RouteError::OriginNotAllowed => "origin_not_allowed",
        }
    }
    fn blame(&self) -> Blame {
        match self {
            RouteError::TooManyConnections => Blame::Internal,
            _ => Blame::Client,
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            RouteError::MethodNotAllowed { allow, .. } => vec![("Allow", allow.to_string())],
            RouteError::TooManyConnections => vec![("Retry-After", "1".into())],
            _ => Vec::new(),
        }
    }
}

impl Fault for BodyError {
    fn status(&self) -> u16 {
        match self {
            BodyError::Protocol(e) => e.status(),
            BodyError::IdleTimeout => 408,
            BodyError::Io(_) => 400,
            BodyError::NoBuffer => 503,
            BodyError::WrongState(_) => 500,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            BodyError::Protocol(e) => e.code(),
            BodyError::IdleTimeout => "body_timeout",
            BodyError::Io(_) => "body_read_failed",
            BodyError::NoBuffer => "io_buffers_busy",
            BodyError::WrongState(_) => "internal",
        }
    }
    fn blame(&self) -> Blame {
        match self {
            BodyError::Protocol(_) | BodyError::IdleTimeout | BodyError::Io(_) => Blame::Client,
            BodyError::NoBuffer | BodyError::WrongState(_) => Blame::Internal,
        }
    }
    fn message(&self) -> String {
        match self {
            BodyError::Protocol(e) => e.message().to_string(),
            BodyError::IdleTimeout => "the request body stalled".into(),
            BodyError::Io(_) => "the request body could not be read".into(),
            BodyError::NoBuffer => "no I/O buffer came free in time; retry later".into(),
            BodyError::WrongState(_) => "internal error".into(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            BodyError::NoBuffer => vec![("Retry-After", "1".into())],
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Io(e) => Some(e),
            BodyError::WrongState(e) => Some(e),
            _ => None,
        }
    }
}

impl Fault for Refusal {
    fn status(&self) -> u16 {
        match self {
            Refusal::ExpectationFailed => 417,
            Refusal::ExpectRequired
            | Refusal::BadAppid(_)
            | Refusal::BadPath(_)
            | Refusal::BadDigest(_)
            | Refusal::PartialPut
            | Refusal::DigestMismatch(_) => 400,
            Refusal::UnknownAppid(_) => 404,
            Refusal::CallbackNotAllowed(e) => e.status(),
            Refusal::TooLarge { .. } => 413,
            Refusal::BadToken(_) => 403,
            Refusal::Quota(crate::quota::Denied::Bytes { .. }) => 403,
            Refusal::Quota(_) => 429,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Refusal::ExpectationFailed => "expectation_failed",
            Refusal::ExpectRequired => "expect_required",
            Refusal::BadAppid(_) => "bad_appid",
            Refusal::BadPath(_) => "bad_path",
            Refusal::UnknownAppid(_) => "unknown_appid",
            Refusal::CallbackNotAllowed(e) => e.code(),
            Refusal::TooLarge { .. } => "too_large",
            Refusal::BadDigest(_) => "bad_digest",
            Refusal::DigestMismatch(_) => "digest_mismatch",
            Refusal::BadToken(_) => "bad_token",
            Refusal::PartialPut => "partial_put_unsupported",
            Refusal::Quota(crate::quota::Denied::Bytes { .. }) => "quota_exceeded",
            Refusal::Quota(_) => "rate_limited",
        }
    }
    fn blame(&self) -> Blame {
        Blame::Client
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        use crate::quota::Denied;
        match self {
            // Whole seconds, rounded up, at least 1.
            Refusal::Quota(Denied::Rate { retry_after_ms, .. }) => {
                vec![(
                    "Retry-After",
                    retry_after_ms.div_ceil(1000).max(1).to_string(),
                )]
            }
            Refusal::Quota(Denied::Concurrency { .. }) => vec![("Retry-After", "1".into())],
            _ => Vec::new(),
        }
    }
}

impl Fault for PolicyError {
    fn status(&self) -> u16 {
        403
    }
    fn code(&self) -> &'static str {
        "callback_not_allowed"
    }
    /// The URL came with the request (client-carried callbacks).
    fn blame(&self) -> Blame {
        Blame::Client
    }
}

impl Fault for PoolError {
    fn status(&self) -> u16 {
        503
    }
    fn code(&self) -> &'static str {
        match self {
            PoolError::QueueFull => "callback_queue_full",
            PoolError::Closed => "callback_unavailable",
        }
    }
    /// The node is out of callback capacity: not the client's fault, nor the app's.
    fn blame(&self) -> Blame {
        Blame::Internal
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("Retry-After", self.retry_after_secs().to_string())]
    }
}

impl Fault for Veto {
    fn status(&self) -> u16 {
        match self {
            Veto::Denied { .. } | Veto::NotAllowed { .. } => 403,
            Veto::Timeout => 504,
            Veto::BadGateway { .. } => 502,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Veto::Denied { .. } => "vetoed",
            Veto::NotAllowed { .. } => "callback_not_allowed",
            Veto::Timeout => "callback_timeout",
            Veto::BadGateway { .. } => "callback_failed",
        }
    }
    fn blame(&self) -> Blame {
        Blame::App
    }
    /// The app's own reason for a veto; otherwise what the uploading client can act on, never
    /// the callback's URL, address or the connection's error (those are the operator's: the
    /// funnel logs them at WARN with the upload id).
    fn message(&self) -> String {
        match self {
            Veto::Denied { .. } => self.to_string(),
            Veto::NotAllowed { .. } => {
                "the callback URL this request names is not allowed (its host resolves to no \
                 permitted address)"
                    .into()
            }
            Veto::Timeout => {
                "the application's pre-upload check did not answer in time; retry later".into()
            }
            Veto::BadGateway { .. } => {
                "the application's pre-upload check failed; retry later".into()
            }
        }
    }
}

impl Fault for FlowError {
    fn status(&self) -> u16 {
        match self {
            FlowError::Refused(r) => r.status(),
            FlowError::Exists => 409,
            FlowError::Busy(p) => p.status(),
            FlowError::Veto(v) => v.status(),
            FlowError::Body(b) => b.status(),
            FlowError::TooLarge(_) => 413,
            FlowError::BadForm(_) => 400,
            FlowError::DiskFull(_) => 507,
            FlowError::Storage(_) => 500,
            FlowError::Unrecorded(_) | FlowError::Origin(_) => 503,
            FlowError::Registry(_) | FlowError::Internal(_) => 500,
            FlowError::Resumable(r) => r.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            FlowError::Refused(r) => r.code(),
            FlowError::Exists => "exists",
            FlowError::Busy(p) => p.code(),
            FlowError::Veto(v) => v.code(),
            FlowError::Body(b) => b.code(),
            FlowError::TooLarge(_) => "too_large",
            FlowError::BadForm(_) => "bad_multipart",
            FlowError::DiskFull(_) => "insufficient_storage",
            FlowError::Storage(_) => "storage_failed",
            FlowError::Unrecorded(_) => "outbox_unavailable",
            FlowError::Origin(_) => "origin_unavailable",
            FlowError::Registry(_) => "registry_error",
            FlowError::Internal(_) => "internal",
            FlowError::Resumable(r) => r.code(),
        }
    }
    fn blame(&self) -> Blame {
        match self {
            FlowError::Refused(r) => r.blame(),
            FlowError::Exists | FlowError::TooLarge(_) | FlowError::BadForm(_) => Blame::Client,
            FlowError::Busy(p) => p.blame(),
            FlowError::Veto(v) => v.blame(),
            FlowError::Body(b) => b.blame(),
            FlowError::DiskFull(_)
            | FlowError::Storage(_)
            | FlowError::Unrecorded(_)
            | FlowError::Origin(_)
            | FlowError::Registry(_) => Blame::Storage,
            FlowError::Internal(_) => Blame::Internal,
            FlowError::Resumable(_) => Blame::Client,
        }
    }
    fn message(&self) -> String {
        match self {
            FlowError::Refused(r) => r.message(),
            FlowError::Exists => "a file already exists at this path".into(),
            FlowError::Busy(p) => p.message(),
            FlowError::Veto(v) => v.message(),
            FlowError::Body(b) => b.message(),
            FlowError::TooLarge(limit) => {
                format!("the body is larger than the limit of {limit} bytes")
            }
            FlowError::BadForm(why) => format!("the multipart/form-data body is invalid: {why}"),
            FlowError::DiskFull(_) => "no space left to store the body".into(),
            FlowError::Storage(_) => "the file could not be stored".into(),
            FlowError::Unrecorded(_) => "the upload could not be recorded for its notification; \
                                         nothing was stored; retry later"
                .into(),
            FlowError::Origin(_) => "the origin store could not take the file; nothing was \
                                     stored; retry later"
                .into(),
            FlowError::Registry(_) | FlowError::Internal(_) => "internal error".into(),
            FlowError::Resumable(r) => r.message(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            FlowError::Resumable(r) => r.headers(),
            FlowError::Refused(r) => r.headers(),
            FlowError::Busy(p) => p.headers(),
            FlowError::Unrecorded(_) | FlowError::Origin(_) => vec![("Retry-After", "5".into())],
            FlowError::Body(b) => b.headers(),
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlowError::Body(b) => Some(b),
            FlowError::DiskFull(e) | FlowError::Storage(e) => Some(e),
            FlowError::Unrecorded(e) => Some(e),
            FlowError::Origin(e) => Some(e),
            FlowError::Registry(e) => Some(e),
            FlowError::Veto(v) => Some(v),
            _ => None,
        }
    }
}

impl Fault for ResumableError {
    fn status(&self) -> u16 {
        match self {
            ResumableError::Protocol(e) => e.status(),
            ResumableError::Missing { .. }
            | ResumableError::BadConcat(_)
            | ResumableError::Complete
            | ResumableError::LengthConflict(_) => 400,
            ResumableError::Busy => 409,

            ResumableError::NotFound => 404,
            ResumableError::Expired => 410,
            ResumableError::PastLength { .. } => 413,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            ResumableError::Protocol(e) => e.code(),
            ResumableError::Missing { .. } => "missing_resumable_header",
            ResumableError::BadConcat(_) => "bad_upload_concat",
            ResumableError::Busy => "upload_busy",
            ResumableError::NotFound => "upload_not_found",
            ResumableError::Expired => "upload_expired",
            ResumableError::PastLength { .. } => "too_large",
            ResumableError::Complete => "upload_complete",
            ResumableError::LengthConflict(_) => "bad_upload_length",
        }
    }
    fn blame(&self) -> Blame {
        Blame::Client
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        use crate::http::ResumableError as P;
        match self {
            ResumableError::Protocol(P::TusVersionUnsupported) => {
                vec![("Tus-Version", crate::http::TUS_VERSION.into())]
            }
            ResumableError::Protocol(P::OffsetMismatch { expected, .. }) => {
                vec![("Upload-Offset", expected.to_string())]
            }
            _ => Vec::new(),
        }
    }
}

impl Fault for RegistryError {
    fn status(&self) -> u16 {
        match self {
            RegistryError::BadAppid | RegistryError::BadEventId => 400,
            RegistryError::UnknownAppid => 404,
            RegistryError::Unreachable(_) => 503,
            RegistryError::Locked(_)
            | RegistryError::Unavailable(_)
            | RegistryError::Corrupt(_) => 500,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RegistryError::BadAppid => "bad_appid",
            RegistryError::UnknownAppid => "unknown_appid",
            RegistryError::BadEventId => "bad_event_id",
            RegistryError::Unreachable(_) => "registry_unavailable",
            RegistryError::Locked(_)
            | RegistryError::Unavailable(_)
            | RegistryError::Corrupt(_) => "registry_error",
        }
    }
    fn blame(&self) -> Blame {
        match self {
            RegistryError::BadAppid | RegistryError::BadEventId | RegistryError::UnknownAppid => {
                Blame::Client
            }
            _ => Blame::Storage,
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            RegistryError::Unreachable(_) => vec![("Retry-After", "1".into())],
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self)
    }
}

impl Fault for RegisterError {
    fn status(&self) -> u16 {
        match self {
            RegisterError::Route(e) => e.status(),
            RegisterError::Body(e) => e.status(),
            RegisterError::Registry(e) => e.status(),
            RegisterError::BadRequest(_) | RegisterError::BadAppid(_) => 400,
            RegisterError::Unauthorized(_) => 401,
            RegisterError::Forbidden(_) | RegisterError::CallbackNotAllowed => 403,
            RegisterError::UnsupportedMediaType => 415,
            RegisterError::TooLarge => 413,
            RegisterError::Files(_) => 500,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RegisterError::Route(e) => e.code(),
            RegisterError::Body(e) => e.code(),
            RegisterError::Registry(e) => e.code(),
            RegisterError::BadRequest(e) => e.code(),
            RegisterError::BadAppid(_) => "bad_appid",
            RegisterError::Unauthorized(_) => "unauthorized",
            RegisterError::Forbidden(_) => "forbidden",
            RegisterError::CallbackNotAllowed => "callback_not_allowed",
            RegisterError::UnsupportedMediaType => "unsupported_media_type",
            RegisterError::TooLarge => "body_too_large",
            RegisterError::Files(_) => "storage_failed",
        }
    }
    fn blame(&self) -> Blame {
        match self {
            RegisterError::Route(e) => e.blame(),
            RegisterError::Body(e) => e.blame(),
            RegisterError::Registry(e) => e.blame(),
            RegisterError::Files(_) => Blame::Storage,
            _ => Blame::Client,
        }
    }
    fn message(&self) -> String {
        match self {
            RegisterError::Files(_) => {
                "the app's files could not be removed; it is still registered; retry".into()
            }
            RegisterError::Route(e) => e.message(),
            RegisterError::Body(e) => e.message(),
            RegisterError::Registry(e) if e.blame() == Blame::Client => e.to_string(),
            RegisterError::Registry(RegistryError::Unreachable(_)) => {
                "the registry (etcd) cannot be reached; uploads go on, registrations wait: retry later".into()
            }
            RegisterError::Registry(_) => "the registry failed; retry later".into(),
            RegisterError::BadRequest(e) => e.message(),
            _ => self.to_string(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            RegisterError::Route(e) => e.headers(),
            RegisterError::Body(e) => e.headers(),
            RegisterError::Registry(e) => e.headers(),
            RegisterError::Unauthorized(_) => vec![("WWW-Authenticate", "Bearer".into())],
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegisterError::Body(e) => Some(e),
            RegisterError::Registry(e) => Some(e),
            RegisterError::Files(e) => Some(e),
            _ => None,
        }
    }
}

impl Fault for DownloadError {
    fn status(&self) -> u16 {
        match self {
            DownloadError::BadPath(_) => 400,
            DownloadError::NotFound => 404,
            DownloadError::BadSignature(_) => 403,
            DownloadError::Registry(e) => e.status(),
            DownloadError::Origin(_) => 503,
            DownloadError::RangeNotSatisfiable { .. } => 416,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            DownloadError::BadPath(_) => "bad_path",
            DownloadError::NotFound => "not_found",
            DownloadError::BadSignature(_) => "bad_signature",
            DownloadError::Registry(e) => e.code(),
            DownloadError::Origin(_) => "origin_unavailable",
            DownloadError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
        }
    }
    fn blame(&self) -> Blame {
        match self {
            DownloadError::Registry(e) => e.blame(),
            DownloadError::Origin(_) => Blame::Storage,
            _ => Blame::Client,
        }
    }
    fn message(&self) -> String {
        match self {
            DownloadError::Registry(_) => "the registry failed; retry later".into(),
            DownloadError::Origin(_) => {
                "the file is not on this node and the origin store could not be reached; retry \
                 later"
                    .into()
            }
            _ => self.to_string(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self)
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            DownloadError::RangeNotSatisfiable { size, validators } => {
                let mut h = validators.headers();
                h.push(("Content-Range", format!("bytes */{size}")));
                h
            }
            DownloadError::Origin(_) => vec![("Retry-After", "5".into())],
            _ => Vec::new(),
        }
    }
}

impl Fault for crate::manage::ManageError {
    fn status(&self) -> u16 {
        match self {
            crate::manage::ManageError::Unauthorized(_) => 401,
            crate::manage::ManageError::Registry(e) => e.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            crate::manage::ManageError::Unauthorized(_) => "unauthorized",
            crate::manage::ManageError::Registry(e) => e.code(),
        }
    }
    fn blame(&self) -> Blame {
        match self {
            crate::manage::ManageError::Unauthorized(_) => Blame::Client,
            crate::manage::ManageError::Registry(e) => e.blame(),
        }
    }
    fn message(&self) -> String {
        match self {
            crate::manage::ManageError::Registry(e) if e.blame() != Blame::Client => {
                "the registry failed; retry later".into()
            }
            _ => self.to_string(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            crate::manage::ManageError::Unauthorized(_) => {
                vec![("WWW-Authenticate", "Bearer".into())]
            }
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self)
    }
}

impl Fault for crate::manage::outbox::OutboxApiError {
    fn status(&self) -> u16 {
        use crate::manage::outbox::OutboxApiError as E;
        match self {
            E::Route(e) => e.status(),
            E::Manage(e) => e.status(),
            E::NoSuchEntry => 404,
            E::Outbox(e) => e.status(),
        }
    }
    fn code(&self) -> &'static str {
        use crate::manage::outbox::OutboxApiError as E;
        match self {
            E::Route(e) => e.code(),
            E::Manage(e) => e.code(),
            E::NoSuchEntry => "not_found",
            E::Outbox(e) => e.code(),
        }
    }
    fn blame(&self) -> Blame {
        use crate::manage::outbox::OutboxApiError as E;
        match self {
            E::Route(e) => e.blame(),
            E::Manage(e) => e.blame(),
            E::NoSuchEntry => Blame::Client,
            E::Outbox(e) => e.blame(),
        }
    }
    fn message(&self) -> String {
        use crate::manage::outbox::OutboxApiError as E;
        match self {
            E::Route(e) => e.message(),
            E::Manage(e) => e.message(),
            E::Outbox(e) if e.blame() == Blame::Client => e.to_string(),
            E::Outbox(_) => "the outbox failed; retry later".into(),
            E::NoSuchEntry => self.to_string(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        use crate::manage::outbox::OutboxApiError as E;
        match self {
            E::Route(e) => e.headers(),
            E::Manage(e) => e.headers(),
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self)
    }
}

impl Fault for crate::manage::FilesError {
    fn status(&self) -> u16 {
        use crate::manage::FilesError as E;
        match self {
            E::Manage(e) => e.status(),
            E::BadQuery(_) | E::BadPath(_) => 400,
            E::NotFound => 404,
            E::Storage(_) => 500,
            E::Unrecorded(_) | E::Origin(_) => 503,
        }
    }
    fn code(&self) -> &'static str {
        use crate::manage::FilesError as E;
        match self {
            E::Manage(e) => e.code(),
            E::BadQuery(_) => "bad_query",
            E::BadPath(crate::storage::path::PathError::BadAppid) => "bad_appid",
            E::BadPath(_) => "bad_path",
            E::NotFound => "not_found",
            E::Storage(_) => "storage_failed",
            E::Unrecorded(_) => "outbox_unavailable",
            E::Origin(_) => "origin_unavailable",
        }
    }
    fn blame(&self) -> Blame {
        use crate::manage::FilesError as E;
        match self {
            E::Manage(e) => e.blame(),
            E::BadQuery(_) | E::BadPath(_) | E::NotFound => Blame::Client,
            E::Storage(_) | E::Unrecorded(_) | E::Origin(_) => Blame::Storage,
        }
    }
    fn message(&self) -> String {
        use crate::manage::FilesError as E;
        match self {
            E::Manage(e) => e.message(),
            E::Storage(_) => "the store failed; retry later".into(),
            E::Origin(_) => {
                "the origin store could not delete the file; nothing was deleted; retry later"
                    .into()
            }
            E::Unrecorded(_) => {
                "the deletion could not be recorded for its notification; nothing was deleted; \
                 retry later"
                    .into()
            }
            _ => self.to_string(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        use crate::manage::FilesError as E;
        match self {
            E::Manage(e) => e.headers(),
            E::Unrecorded(_) | E::Origin(_) => vec![("Retry-After", "5".into())],
            _ => Vec::new(),
        }
    }
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self)
    }
}
