//! What `-f` names, before anything is opened: which paths are declaration files to read, which
//! a directory holds that are skipped on purpose (and are listed, so nothing goes unread
//! unnoticed), and which are refused because reading them could block or never end (a FIFO, a
//! socket, a device) or cannot be reached at all (a symlink loop). A path's type is read from
//! its metadata, never by opening it. Owns no parsing.

use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::kind_of;

/// Why a path named with `-f`, or found in a `-f` directory, is not read. Each names the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Something that is not a regular file or directory: opening a FIFO blocks until a writer
    /// comes, a device may never end, so none is ever opened.
    #[error("`{name}` is {what}, not a file: declarations are read only from regular files")]
    NotAFile { name: String, what: &'static str },
    /// A symlink that leads back to itself: there is nothing to read, and it must not pass for
    /// an absent file (with `--prune`, its cards would count as undeclared).
    #[error("`{name}` is a symlink loop (too many levels of symbolic links)")]
    SymlinkLoop { name: String },
    #[error("cannot read `{name}`: {why}")]
    Unreadable { name: String, why: String },
}

impl FileError {
    pub fn name(&self) -> &str {
        match self {
            FileError::NotAFile { name, .. }
            | FileError::SymlinkLoop { name }
            | FileError::Unreadable { name, .. } => name,
        }
    }

    pub(super) fn io(name: String, e: &std::io::Error) -> FileError {
        if e.raw_os_error() == Some(libc::ELOOP) {
            return FileError::SymlinkLoop { name };
        }
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        FileError::Unreadable { name, why }
    }
}

/// A file a `-f` directory holds that is not read, on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub why: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Read by extension only: `.yaml`, `.yml` and `.csv`.
    NotDeclarations,
    /// A `-f` directory is read one level deep.
    Directory,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.why {
            SkipReason::NotDeclarations => "not .yaml, .yml or .csv",
            SkipReason::Directory => "a directory: -f reads only the files directly inside one",
        };
        write!(f, "{} ({why})", self.path)
    }
}

/// What a path is, by its metadata (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    File,
    Dir,
}

/// What `path` is, without opening it: a regular file, a directory, or an error naming it.
pub(super) fn examine(path: &Path) -> Result<Found, FileError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| FileError::io(name.clone(), &e))?;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(Found::File);
    } else if t.is_dir() {
        return Ok(Found::Dir);
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(FileError::NotAFile { name, what })
}

/// What a `-f` directory holds, directly inside it, in file-name order.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Declaration files to read, and entries refused (whatever their name: a FIFO called
    /// `notes` is as wrong as one called `cards.yaml`, and silence would hide both).
    pub entries: Vec<Result<PathBuf, FileError>>,
    pub skipped: Vec<Skipped>,
}

pub(super) fn list_dir(dir: &Path) -> std::io::Result<Listing> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        names.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    names.sort();
    let mut listing = Listing::default();
    for (name, path) in names {
        let declarations = kind_of(&name).is_some();
        let skip = |why| Skipped {
            path: path.display().to_string(),
            why,
        };
        match examine(&path) {
            Ok(Found::File) if declarations => listing.entries.push(Ok(path)),
            Ok(Found::File) => listing.skipped.push(skip(SkipReason::NotDeclarations)),
            Ok(Found::Dir) => listing.skipped.push(skip(SkipReason::Directory)),
            // A dangling symlink (or one unreadable) not named like declarations is no more
            // a declaration file than a README.
            Err(FileError::Unreadable { .. }) if !declarations => {
                listing.skipped.push(skip(SkipReason::NotDeclarations))
            }
            Err(e) => listing.entries.push(Err(e)),
        }
    }
    Ok(listing)
}

/// The files `-f paths` directories hold that are not read, on purpose, in order: what
/// `validate` lists.
pub fn skipped(paths: &[PathBuf]) -> Vec<Skipped> {
    paths
        .iter()
        .filter(|p| examine(p) == Ok(Found::Dir))
        .filter_map(|p| list_dir(p).ok())
        .flat_map(|l| l.skipped)
        .collect()
}
