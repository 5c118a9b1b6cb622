//! File descriptors over the helper's socket (SCM_RIGHTS, unix(7)): a
//! frame may carry one, attached to its first byte, and the helper reads
//! every frame with `recvmsg` so that none is lost.
//!
//! The kernel hands a descriptor over with the read that takes the first
//! byte of the `sendmsg` it came with, and the frame reader asks for
//! exactly a frame's bytes, so the descriptors read while reading one
//! frame are the ones sent with it; any other (a forged extra one) is
//! closed with the frame.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

/// Writes `frame` on `socket` with `fd` attached to its first byte.
pub(crate) fn send_with_fd(
    socket: &mut UnixStream,
    frame: &[u8],
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for a descriptor"));
    }
    let sent = loop {
        match sendmsg(
            socket.as_fd(),
            &[IoSlice::new(frame)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    if sent == 0 && !frame.is_empty() {
        return Err(io::ErrorKind::WriteZero.into());
    }
    // The descriptor went with the first bytes; the rest is plain.
    socket.write_all(&frame[sent..])
}

/// The helper's reader: a socket read with `recvmsg`, keeping the
/// descriptors that come with the bytes.
#[derive(Debug)]
pub(crate) struct FdReader {
    socket: UnixStream,
    /// Received since the last [`FdReader::take_fd`] or [`FdReader::clear`].
    fds: Vec<OwnedFd>,
}

/// Descriptors accepted per read: a frame carries one; a forged second
/// is received (and closed), more are discarded by the kernel.
const FDS_PER_READ: usize = 2;

impl FdReader {
    pub(crate) fn new(socket: UnixStream) -> FdReader {
        FdReader {
            socket,
            fds: Vec::new(),
        }
    }

    /// Closes what was received so far (before a new frame).
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// The first descriptor received since [`FdReader::clear`]; the
    /// others are closed.
    pub(crate) fn take_fd(&mut self) -> Option<OwnedFd> {
        let first = (!self.fds.is_empty()).then(|| self.fds.swap_remove(0));
        self.fds.clear();
        first
    }
}

impl Read for FdReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_READ))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match recvmsg(
                self.socket.as_fd(),
                &mut [IoSliceMut::new(buf)],
                &mut control,
                // Not inherited by anything the helper starts but the
                // child it is meant for.
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(got) => break got,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        Ok(got.bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::{read_frame, write_frame};

    #[test]
    fn a_descriptor_travels_with_its_frame_only() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (passed, mut kept) = UnixStream::pair().unwrap();
        let mut reader = FdReader::new(b);
        let mut plain = Vec::new();
        write_frame(&mut plain, b"first").unwrap();
        a.write_all(&plain).unwrap();
        let mut framed = Vec::new();
        write_frame(&mut framed, b"second").unwrap();
        send_with_fd(&mut a, &framed, passed.as_fd()).unwrap();
        reader.clear();
        assert_eq!(read_frame(&mut reader, 64).unwrap().unwrap(), b"first");
        assert!(reader.take_fd().is_none());
        reader.clear();
        assert_eq!(read_frame(&mut reader, 64).unwrap().unwrap(), b"second");
        let got = UnixStream::from(reader.take_fd().unwrap());
        // The received descriptor is the same socket.
        (&got).write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        kept.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }
}
