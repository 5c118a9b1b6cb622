//! The byte layer under the messages: a frame on the stream (a 4-byte
//! big-endian length, then the body), and the writer ([`Body`]) and
//! reader ([`Fields`]) of the numbers and byte strings in a body. Apart
//! from the messages because it knows nothing of them: a new kind of
//! request is written with these, never by changing them.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::Ids;

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame)
}

/// Reads one frame of at most `max` bytes; `None` at a clean end of the
/// stream. A longer frame is an error (the stream cannot be resynced).
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes, over the {max}-byte cap"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// A length as the 4 bytes the format has; longer is cut by the frame
/// cap long before this matters.
pub(super) fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A body being written.
pub(crate) struct Body(pub(super) Vec<u8>);

impl Body {
    pub(crate) fn new(id: u64) -> Body {
        Body(id.to_be_bytes().to_vec())
    }
    pub(crate) fn u8(&mut self, b: u8) -> &mut Body {
        self.0.push(b);
        self
    }
    pub(crate) fn u32(&mut self, n: u32) -> &mut Body {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    pub(crate) fn ids(&mut self, ids: Ids) -> &mut Body {
        self.u32(ids.uid).u32(ids.gid)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Body {
        self.u32(len32(b.len()));
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn path(&mut self, p: &Path) -> &mut Body {
        self.bytes(p.as_os_str().as_bytes())
    }
}

/// A body being read.
pub(crate) struct Fields<'a>(pub(super) &'a [u8]);

impl<'a> Fields<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated request".to_owned());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let hi = u64::from(self.u32()?);
        Ok(hi << 32 | u64::from(self.u32()?))
    }
    pub(crate) fn ids(&mut self) -> Result<Ids, String> {
        Ok(Ids {
            uid: self.u32()?,
            gid: self.u32()?,
        })
    }
    /// A count of items, each at least 4 bytes long: bounded by what is
    /// left, so that a forged count cannot make us loop or allocate.
    pub(crate) fn count(&mut self) -> Result<usize, String> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if n > self.0.len() / 4 {
            return Err("truncated request".to_owned());
        }
        Ok(n)
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        self.take(n)
    }
    pub(crate) fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a field not in UTF-8".to_owned())
    }
    pub(crate) fn path(&mut self) -> Result<PathBuf, String> {
        Ok(PathBuf::from(OsString::from_vec(self.bytes()?.to_vec())))
    }
    pub(crate) fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after the request".to_owned())
        }
    }
}
