//! The application's control plane (contract "Files, downloads and notifications for the
//! app"): the calls an app makes about its own files and notifications, as opposed to the
//! upload flow. Each call has its own file; this one holds what they share: who may make them.
//!
//! | file | calls |
//! |---|---|
//! | `auth.rs` | the credentials every management call needs (401 otherwise) |
//! | `outbox.rs` | `/upload/outbox/{appid}[/{event_id}[/retry]]`: list, retry, drop notifications |
//! | `files.rs` | `GET /upload/files/{appid}` (a page of the app's files), `DELETE /{appid}/{path}` |

pub mod auth;
pub mod files;
pub mod outbox;

pub use auth::{authenticate, ManageError};
pub use files::FilesError;
