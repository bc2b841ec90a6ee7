//! A `multipart/form-data` upload's parts (contract "Browser uploads"): `key`, `token` and
//! other text fields first, read whole and bounded; then `file`, which must be the last part
//! and whose bytes go to storage as they arrive ([`FileDemux`], through the driver's body
//! path), never buffered.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::http::{MultipartError, MultipartEvent, MultipartParser, PartHead};
use crate::server::{Demux, Demuxed};

/// The most text fields that become metadata.
pub const MAX_FIELDS: usize = 32;
/// The most bytes of the text fields that become metadata, names and values together.
pub const MAX_FIELD_BYTES: usize = 4096;
/// The longest `key` or `token` value.
pub const MAX_KEY_BYTES: usize = 4096;
/// The name of the file part.
pub const FILE_FIELD: &str = "file";

/// The text fields before the file part.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FormFields {
    pub key: Option<String>,
    pub token: Option<String>,
    pub success_action_redirect: Option<String>,
    /// Every other text field (metadata), in name order.
    pub others: BTreeMap<String, String>,
}

/// Why a form is refused: every one answers 400 `bad_multipart`.
pub fn violation(e: MultipartError) -> String {
    e.to_string()
}

/// Reads the text fields, part by part, until the file part's headers: each call takes the next
/// piece of the body; [`FieldReader::file`] is set once the file part began, and the bytes of
/// the piece after its headers are returned as left over.
pub struct FieldReader {
    parser: MultipartParser,
    current: Option<(String, Vec<u8>)>,
    fields: FormFields,
    field_bytes: usize,
    file: Option<PartHead>,
}

impl FieldReader {
    pub fn new(boundary: &[u8]) -> FieldReader {
        FieldReader {
            parser: MultipartParser::new(boundary),
            current: None,
            fields: FormFields::default(),
            field_bytes: 0,
            file: None,
        }
    }

    /// Reads `piece`. `Ok(Some(rest))` once the file part began (`rest`: the bytes of `piece`
    /// after its headers); `Ok(None)` when more is needed.
    pub fn read(&mut self, piece: &Bytes) -> Result<Option<Bytes>, String> {
        let mut at = 0;
        loop {
            let (used, event) = self.parser.parse(&piece[at..]).map_err(violation)?;
            let start = at;
            at += used;
            match event {
                MultipartEvent::PartStart(head) => {
                    if head.name == FILE_FIELD {
                        self.file = Some(head);
                        return Ok(Some(piece.slice(at..)));
                    }
                    if head.is_file() {
                        return Err(format!(
                            "the part {:?} carries a file; only the part named \"file\" may",
                            head.name
                        ));
                    }
                    self.current = Some((head.name, Vec::new()));
                }
                MultipartEvent::Data(r) => {
                    let r = start + r.start..start + r.end;
                    self.value_bytes(&piece[r])?;
                }
                MultipartEvent::Held => {
                    let held = self.parser.held().to_vec();
                    self.value_bytes(&held)?;
                }
                MultipartEvent::PartEnd => self.end_field()?,
                MultipartEvent::End => {
                    return Err("the form has no part named \"file\"".into());
                }
                MultipartEvent::NeedData => return Ok(None),
            }
        }
    }

    /// The body ended before the file part.
    pub fn ended(&self) -> String {
        match self.parser.finish() {
            Err(e) => violation(e),
            Ok(()) => "the form has no part named \"file\"".into(),
        }
    }

    fn value_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some((name, value)) = self.current.as_mut() else {
            return Ok(());
        };
        let most = match name.as_str() {
            "key" | "token" | "success_action_redirect" => MAX_KEY_BYTES,
            _ => MAX_FIELD_BYTES,
        };
        if value.len() + bytes.len() > most {
            return Err(format!("the field {name:?} is longer than {most} bytes"));
        }
        value.extend_from_slice(bytes);
        Ok(())
    }

    fn end_field(&mut self) -> Result<(), String> {
        let Some((name, value)) = self.current.take() else {
            return Ok(());
        };
        let value =
            String::from_utf8(value).map_err(|_| format!("the field {name:?} is not UTF-8"))?;
        let slot = match name.as_str() {
            "key" => &mut self.fields.key,
            "token" => &mut self.fields.token,
            "success_action_redirect" => &mut self.fields.success_action_redirect,
            _ => {
                self.field_bytes += name.len() + value.len();
                if self.field_bytes > MAX_FIELD_BYTES {
                    return Err(format!(
                        "the text fields are larger than {MAX_FIELD_BYTES} bytes in all"
                    ));
                }
                if self.fields.others.insert(name.clone(), value).is_some() {
                    return Err(format!("the field {name:?} is repeated"));
                }
                if self.fields.others.len() > MAX_FIELDS {
                    return Err(format!("more than {MAX_FIELDS} text fields"));
                }
                return Ok(());
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("the field {name:?} is repeated"));
        }
        Ok(())
    }

    /// The fields and the file part's head, once [`FieldReader::read`] found it; the parser
    /// goes on in a [`FileDemux`].
    pub fn into_file(self) -> Option<(FormFields, PartHead, FileDemux)> {
        let head = self.file?;
        Some((
            self.fields,
            head,
            FileDemux {
                parser: self.parser,
                state: FileState::InFile,
            },
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    InFile,
    /// The file part ended; only the close delimiter may follow.
    AfterFile,
    /// The close delimiter was seen; the rest is epilogue.
    Done,
}

/// The file part's bytes for the driver's body path: ranges of the buffer they arrived in, and
/// the few bytes the parser held back as a possible delimiter.
pub struct FileDemux {
    parser: MultipartParser,
    state: FileState,
}

impl Demux for FileDemux {
    fn demux(&mut self, input: &[u8]) -> Result<(usize, Demuxed), String> {
        let (used, event) = self.parser.parse(input).map_err(violation)?;
        let found = match event {
            MultipartEvent::Data(r) if self.state == FileState::InFile => Demuxed::File(r),
            MultipartEvent::Held if self.state == FileState::InFile => {
                Demuxed::Held(Bytes::copy_from_slice(self.parser.held()))
            }
            MultipartEvent::PartEnd => {
                self.state = FileState::AfterFile;
                Demuxed::Nothing
            }
            MultipartEvent::PartStart(_) | MultipartEvent::Data(_) | MultipartEvent::Held => {
                return Err("the part named \"file\" must be the last part".into());
            }
            MultipartEvent::End => {
                self.state = FileState::Done;
                Demuxed::Nothing
            }
            MultipartEvent::NeedData => Demuxed::Nothing,
        };
        Ok((used, found))
    }

    fn finish(&mut self) -> Result<(), String> {
        self.parser.finish().map_err(violation)?;
        match self.state {
            FileState::Done => Ok(()),
            _ => Err(violation(MultipartError::Truncated)),
        }
    }

    fn release(&mut self) -> Option<Bytes> {
        if self.state != FileState::InFile {
            return None;
        }
        self.parser.release_body().map(Bytes::from)
    }

    fn check_moved(&self, bytes: &[u8]) -> Result<(), String> {
        match self.parser.find_delimiter(bytes).map_err(violation)? {
            None => Ok(()),
            Some(_) => Err(format!(
                "the part named \"file\" must be the last part, followed by at most \
                 {TAIL_SLACK} bytes"
            )),
        }
    }

    fn cut_off(&self, bytes: &[u8]) -> Result<usize, String> {
        self.parser.cut_off(bytes).map_err(violation)
    }

    fn overlap(&self) -> usize {
        self.parser.max_held() + 1
    }

    fn tail(&self) -> usize {
        self.parser.max_held() + 4 + TAIL_SLACK
    }
}

/// Bytes a form may carry after its file part's close delimiter (its CRLF and an epilogue,
/// which browsers never send) when the file's middle is spliced.
pub const TAIL_SLACK: usize = 256;
