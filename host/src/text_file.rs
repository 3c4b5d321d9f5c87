//! Reading a text file that came from outside the process (configuration, genesis, keys),
//! bounded while it is read, not only by what its metadata claimed a moment before.

use std::io::{self, Read};
use std::path::Path;

/// The file's text if it holds at most `max` bytes; `Ok(Err(len))` with its length if it is
/// longer. At most `max + 1` bytes are ever held.
pub fn read_at_most(path: &Path, max: u64) -> io::Result<Result<String, u64>> {
    let file = std::fs::File::open(path)?;
    let claimed = file.metadata()?.len();
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Err(claimed.max(bytes.len() as u64)));
    }
    String::from_utf8(bytes)
        .map(Ok)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn files_over_the_bound_are_refused_with_their_length() {
        let dir = testing::scratch("text-file");
        let path = dir.join("f");
        std::fs::write(&path, "12345").expect("writes");
        assert_eq!(
            read_at_most(&path, 5).expect("reads"),
            Ok("12345".to_owned())
        );
        assert_eq!(read_at_most(&path, 4).expect("reads"), Err(5));
        std::fs::write(&path, [0xff, 0xfe]).expect("writes");
        assert_eq!(
            read_at_most(&path, 5).expect_err("not UTF-8").kind(),
            io::ErrorKind::InvalidData
        );
        assert!(read_at_most(&dir.join("missing"), 5).is_err());
    }
}
