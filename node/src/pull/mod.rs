//! The consumer's side of a feed: verified, resumable pulls and reading
//! pulled feeds back ([`pulls`]), the one append-only file a pulled feed's
//! chunks live in ([`chunkfile`]), and erasing pulled feeds once their
//! agreement's retention ends ([`retention`]).

pub mod chunkfile;
pub mod download;
pub mod pulls;
pub mod retention;
