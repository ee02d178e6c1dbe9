//! The journal's file operations that can fail for reasons outside the program (a full disk, a
//! failing device): allocating space, syncing, naming files, writing durability marks.
//!
//! They go through [`Disk`], so a test can put its own implementation under a journal
//! ([`super::JournalConfig::disk`]). [`OsDisk`] is the real one; built with the `failpoints`
//! feature it has a failpoint in front of each operation, configured at run time (the
//! `FAILPOINTS` environment variable of the `fail` crate, read by `dco hub` at start):
//!
//! | failpoint | in | `return(ARG)` makes it |
//! |---|---|---|
//! | `journal::allocate` | reserving a new segment's blocks | fail with `ARG` (`enospc` default) |
//! | `journal::sync` | every fdatasync or header flush of a segment | fail with `ARG` (`eio` default): fatal, the hub exits with status 70 |
//! | `journal::rename` | naming a new or reclaimed segment | fail with `ARG` (`enospc` default) |
//! | `journal::mark` | writing a durability mark | fail with `ARG` (`eio` default) |
//! | `journal::write` | writing a round's records to the active segment | fail with `ARG` (`eio` default): fatal, the hub exits with status 70 |
//! | `journal::shadow` | every completed sync of a segment | keep a copy of what it made durable in directory `ARG` (below) |
//!
//! An error `ARG` is `enospc`, `eio`, `efbig` or `edquot`; `ERROR@PATH` fails only while the
//! file `PATH` exists, so a test switches a fault on and off in a running hub.
//!
//! `journal::shadow` simulates a power loss: the bytes a segment file holds when a sync (or a
//! header flush) starts are copied to `ARG/INODE` once that sync has completed (the inode
//! number names the copy, so renames do not matter). After a kill, putting each segment
//! file's copy back in place leaves what a power loss at that moment may leave: everything
//! not covered by a completed sync is gone. (File creations and renames count as durable at
//! once: the journal fsyncs the directory after each.)

use std::fs::File;
use std::io;
use std::path::Path;

/// File operations of the journal that can fail (see the module docs).
pub trait Disk: Send + Sync + 'static {
    /// Reserves every block of `f` up to `len` bytes, so writes through a mapping of it can
    /// never meet a full disk (fails with ENOSPC when the disk is full).
    fn allocate(&self, f: &File, len: u64) -> io::Result<()>;
    /// fdatasync: everything written to `f` is on disk when this returns Ok.
    fn sync_data(&self, f: &File) -> io::Result<()>;
    /// The first `len` bytes of `map` (a mapping of `f`) are on disk when this returns Ok.
    fn flush_head(&self, map: &memmap2::MmapMut, f: &File, len: usize) -> io::Result<()>;
    /// fsync of a directory: creations and renames in it are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Renames `from` to `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Writes all of `buf` at offset `off` of `f`, through the page cache.
    fn write_at(&self, f: &File, buf: &[u8], off: u64) -> io::Result<()>;
    /// Writes appended records (all of `buf`) at offset `off` of `f`, through the page cache.
    fn append_at(&self, f: &File, buf: &[u8], off: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        f.write_all_at(buf, off)
    }
}

impl std::fmt::Debug for dyn Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Disk")
    }
}

/// The operating system's file access.
#[derive(Debug, Default)]
pub struct OsDisk;

/// Fails with the error failpoint `name` is set to, if it is set (`return(ARG)`) and, when
/// `ARG` is `ERROR@PATH`, while file `PATH` exists (so a test can switch a fault on and off in
/// a running hub). `ERROR` is `enospc`, `eio`, `efbig` or `edquot`; `default` if missing.
#[cfg(feature = "failpoints")]
fn inject(name: &str, default: i32) -> io::Result<()> {
    let Some(arg) = fail::eval(name, |arg| arg.unwrap_or_default()) else {
        return Ok(());
    };
    let (what, when) = match arg.split_once('@') {
        Some((w, p)) => (w, Some(p)),
        None => (arg.as_str(), None),
    };
    if when.is_some_and(|p| !Path::new(p).exists()) {
        return Ok(());
    }
    let code = match what.to_ascii_lowercase().as_str() {
        "enospc" => libc::ENOSPC,
        "eio" => libc::EIO,
        "efbig" => libc::EFBIG,
        "edquot" => libc::EDQUOT,
        _ => default,
    };
    Err(io::Error::from_raw_os_error(code))
}

/// What a file holds now, if the `journal::shadow` failpoint is on: taken before a sync, kept
/// as what is on disk once the sync has completed (bytes written meanwhile may or may not be
/// on disk, so they do not count).
#[cfg(feature = "failpoints")]
struct Snapshot(std::path::PathBuf, u64, Vec<u8>);

#[cfg(feature = "failpoints")]
fn snapshot(f: &File) -> Option<Snapshot> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let dir = fail::eval("journal::shadow", |arg| arg).flatten()?;
    let meta = f.metadata().ok()?;
    let mut bytes = vec![0u8; meta.len() as usize];
    f.read_exact_at(&mut bytes, 0).ok()?;
    Some(Snapshot(dir.into(), meta.ino(), bytes))
}

#[cfg(feature = "failpoints")]
fn keep(snap: Option<Snapshot>) -> io::Result<()> {
    let Some(Snapshot(dir, ino, bytes)) = snap else {
        return Ok(());
    };
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!("{ino}.tmp"));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, dir.join(ino.to_string()))
}

impl Disk for OsDisk {
    fn allocate(&self, f: &File, len: u64) -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        inject("journal::allocate", libc::ENOSPC)?;
        crate::sys::allocate(f, len)
    }

    fn sync_data(&self, f: &File) -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        inject("journal::sync", libc::EIO)?;
        #[cfg(feature = "failpoints")]
        let snap = snapshot(f);
        f.sync_data()?;
        #[cfg(feature = "failpoints")]
        keep(snap)?;
        Ok(())
    }

    fn flush_head(&self, map: &memmap2::MmapMut, f: &File, len: usize) -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        inject("journal::sync", libc::EIO)?;
        #[cfg(feature = "failpoints")]
        let snap = snapshot(f);
        map.flush_range(0, len)?;
        #[cfg(feature = "failpoints")]
        keep(snap)?;
        let _ = f;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        crate::sys::sync_dir(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        inject("journal::rename", libc::ENOSPC)?;
        std::fs::rename(from, to)
    }

    fn write_at(&self, f: &File, buf: &[u8], off: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        #[cfg(feature = "failpoints")]
        inject("journal::mark", libc::EIO)?;
        f.write_all_at(buf, off)
    }

    fn append_at(&self, f: &File, buf: &[u8], off: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        #[cfg(feature = "failpoints")]
        inject("journal::write", libc::EIO)?;
        f.write_all_at(buf, off)
    }
}
