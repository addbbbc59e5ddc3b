//! Kernel receive timestamps: when the bytes reached the machine, not when the client got round
//! to reading them.
//!
//! A client that stamps bytes when its event loop reads them adds its own queueing to every
//! figure: when 256 streams' first tokens arrive in the same millisecond, the last socket the
//! worker reads is stamped a millisecond or two after its bytes arrived. On Linux the kernel
//! stamps every packet as it arrives (`SO_TIMESTAMPNS`) and hands the stamp of the newest bytes
//! to each `recvmsg`. [`StampedTcp`] reads that way and keeps the stamp of its last read in an
//! [`RxStamp`]; the connection turns it into a time on the run's clock for each frame it hands
//! over. A stamp is only ever used when it lies between the previous one and now, so a missing or
//! odd stamp falls back to the time of the read, never to something earlier than the bytes.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The kernel's arrival time of the newest bytes read so far on one connection.
#[derive(Debug, Default)]
pub(crate) struct RxStamp {
    /// Wall-clock (CLOCK_REALTIME) nanoseconds; 0 when none yet.
    real_ns: AtomicI64,
}

fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl RxStamp {
    /// The arrival of the newest bytes on the monotonic clock `now` reads: the kernel's wall-clock
    /// stamp moved by the wall clock's distance from now. The wall clock is read first, so a
    /// pause between the two readings can only make the result later, never earlier than the
    /// bytes. `None` without a stamp, or when the stamp is not plausible (ahead of the wall
    /// clock, or over a second old).
    pub(crate) fn arrival(&self, now: impl FnOnce() -> u64) -> Option<u64> {
        let stamp = self.real_ns.load(Ordering::Relaxed);
        if stamp == 0 {
            return None;
        }
        let age = realtime_ns() - stamp;
        let now = now();
        (0..1_000_000_000)
            .contains(&age)
            .then(|| now.saturating_sub(age as u64))
    }

    /// `0` clears the stamp.
    fn set(&self, real_ns: i64) {
        self.real_ns.store(real_ns, Ordering::Relaxed);
    }
}

/// A TCP stream whose reads record the kernel's receive timestamp.
pub(crate) struct StampedTcp {
    inner: TcpStream,
    stamp: Arc<RxStamp>,
    /// The socket accepted `SO_TIMESTAMPNS`; otherwise plain reads.
    enabled: bool,
}

/// Turns the kernel's packet stamping on for the life of the process, ahead of the first request.
///
/// Linux stamps arriving packets only while some socket asks for it, and switches stamping on in
/// deferred work after the first one does, so packets that arrive in the moment after the very
/// first `SO_TIMESTAMPNS` would not be stamped (they fall back to the time of reading). One socket
/// that asks for stamps and is never closed, made when the first client is built, keeps stamping
/// on before any connection is opened and between connections.
pub(crate) fn keep_enabled() {
    static KEEPER: std::sync::OnceLock<Option<std::net::UdpSocket>> = std::sync::OnceLock::new();
    KEEPER.get_or_init(|| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
        sys::enable_fd(&s).then_some(s)
    });
}

impl StampedTcp {
    pub(crate) fn new(inner: TcpStream, stamp: Arc<RxStamp>) -> Self {
        let enabled = sys::enable(&inner);
        Self {
            inner,
            stamp,
            enabled,
        }
    }
}

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]
mod sys {
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::AsRawFd;

    use tokio::net::TcpStream;

    use super::RxStamp;

    /// `SO_TIMESTAMPNS` (the 64-bit timespec form) and its control message type, as the generic
    /// Linux ABI (x86-64, AArch64, RISC-V) numbers them.
    const SO_TIMESTAMPNS: libc::c_int = 35;

    pub(super) fn enable(s: &TcpStream) -> bool {
        enable_fd(s)
    }

    pub(super) fn enable_fd(s: &impl AsRawFd) -> bool {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads an int from the pointer given, for the socket we own.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_TIMESTAMPNS,
                &on as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }

    /// One `recvmsg` into `buf`, recording the kernel's timestamp of the newest bytes in `stamp`
    /// (or clearing it: an older stamp must never stand for newer bytes).
    pub(super) fn recv(
        s: &TcpStream,
        buf: &mut [MaybeUninit<u8>],
        stamp: &RxStamp,
    ) -> io::Result<usize> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // Room for one timespec control message, 8-byte aligned.
        let mut control = [0u64; 8];
        // SAFETY: an all-zero msghdr is valid; its pointers are set to live buffers below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: recvmsg writes at most iov_len bytes into the buffer and at most
        // msg_controllen bytes of control data, both owned here for the duration of the call.
        let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n > 0 {
            let mut found = 0i64;
            // SAFETY: the CMSG macros walk the control buffer recvmsg filled, within
            // msg_controllen.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPNS {
                        let ts: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        found = ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64;
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            stamp.set(found);
        }
        Ok(n as usize)
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
)))]
mod sys {
    use std::io;
    use std::mem::MaybeUninit;

    use tokio::net::TcpStream;

    use super::RxStamp;

    /// No kernel stamps here: plain reads, stamped when read.
    pub(super) fn enable(_: &TcpStream) -> bool {
        false
    }

    pub(super) fn enable_fd<T>(_: &T) -> bool {
        false
    }

    pub(super) fn recv(_: &TcpStream, _: &mut [MaybeUninit<u8>], _: &RxStamp) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl AsyncRead for StampedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.enabled {
            return Pin::new(&mut me.inner).poll_read(cx, buf);
        }
        loop {
            std::task::ready!(me.inner.poll_read_ready(cx))?;
            // SAFETY: the unfilled part is only written by recvmsg, and only the bytes it reports
            // are marked initialised.
            let unfilled = unsafe { buf.unfilled_mut() };
            let (inner, stamp) = (&me.inner, &me.stamp);
            match inner.try_io(tokio::io::Interest::READABLE, || {
                sys::recv(inner, unfilled, stamp)
            }) {
                Ok(n) => {
                    // SAFETY: recvmsg initialised the first n bytes of the unfilled part.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_stamp_is_when_bytes_arrived_not_when_they_were_read() {
        // As a client does when it is built; the kernel switches stamping on shortly after.
        keep_enabled();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let rx = Arc::new(RxStamp::default());
        let mut s = StampedTcp::new(client, rx.clone());
        assert!(s.enabled, "SO_TIMESTAMPNS refused");
        let age = |rx: &RxStamp| {
            let origin = std::time::Instant::now();
            let clock = || origin.elapsed().as_nanos() as u64 + 1_000_000_000;
            rx.arrival(clock).map(|t| 1_000_000_000 - t as i64)
        };
        assert_eq!(age(&rx), None);
        server.write_all(b"first").await.unwrap();
        // The bytes wait in the kernel for 40 ms before they are read.
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first");
        let ago = age(&rx).expect("a kernel stamp");
        assert!(ago >= 39_000_000, "stamped {ago} ns ago");
        // Bytes read at once are stamped at once.
        server.write_all(b"second").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"second");
        assert!(age(&rx).unwrap() < 20_000_000);
        // Writes go through untouched.
        s.write_all(b"back").await.unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    }
}
