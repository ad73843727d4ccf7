//! Files and folders only their owner may read: the data folder holds documents, results
//! and API key hashes, so it is created 0700 and everything in it 0600, whatever the
//! process's umask.

use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Creates `dir` and its missing parents, each new one 0700. Existing folders are left
/// as they are (the data folder may live in a folder shared on purpose).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)
}

/// As [`create_dir_all`], on the blocking pool.
pub async fn create_dir_all_async(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || create_dir_all(&dir))
        .await
        .map_err(io::Error::other)?
}

/// Writes `bytes` to a new or truncated file that only its owner may read.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    // A file that existed keeps its mode on open: narrow it.
    restrict(&file)?;
    file.write_all(bytes)?;
    file.flush()
}

/// As [`write`], on the blocking pool.
pub async fn write_async(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write(&path, &bytes))
        .await
        .map_err(io::Error::other)?
}

/// Makes an existing file private (the SQLite database, made 0644 by older builds:
/// SQLite gives its log and shared memory the database's own mode). By path only: a
/// descriptor opened and closed here on a database this process has open would drop
/// SQLite's POSIX locks on it.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates an empty file 0600 unless it exists (SQLite opens an empty file as an empty
/// database). An existing file is not opened (see [`make_private`]).
pub fn create_new(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn restrict(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}
