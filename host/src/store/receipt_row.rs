//! A block's receipts as one stored row, written with the block's state in every commit.
//!
//! For each transaction in block order: its id (32 bytes), the length of its failure encoding
//! (one byte; 0: applied) and that encoding. A row is appended under its height, so a commit
//! writes its receipts at the end of their table instead of at one random page per
//! transaction; the store finds a transaction's row through a small index of id prefixes.

/// A failure encoding longer than a row's length byte can say.
#[derive(Debug, thiserror::Error)]
#[error("a receipt's failure encoding of {0} bytes (at most 255)")]
pub struct TooLong(pub usize);

/// A stored row that is not whole receipts.
#[derive(Debug, thiserror::Error)]
#[error("a stored receipt row is cut short at byte {0}")]
pub struct Truncated(pub usize);

/// The row of `receipts` (id and failure encoding, in block order).
pub fn encode(receipts: &[([u8; 32], Vec<u8>)]) -> Result<Vec<u8>, TooLong> {
    let size = receipts.iter().map(|(_, f)| 33 + f.len()).sum();
    let mut row = Vec::with_capacity(size);
    for (id, failure) in receipts {
        let len = u8::try_from(failure.len()).map_err(|_| TooLong(failure.len()))?;
        row.extend_from_slice(id);
        row.push(len);
        row.extend_from_slice(failure);
    }
    Ok(row)
}

/// The receipts of `row` in block order: each one's id and failure encoding.
pub fn receipts(row: &[u8]) -> Receipts<'_> {
    Receipts { row, at: 0 }
}

/// The index in the block and the failure encoding of transaction `id` in `row`, the first
/// receipt with that id.
pub fn find<'a>(row: &'a [u8], id: &[u8; 32]) -> Result<Option<(u32, &'a [u8])>, Truncated> {
    for (index, receipt) in (0u32..).zip(receipts(row)) {
        let (stored, failure) = receipt?;
        if stored == id {
            return Ok(Some((index, failure)));
        }
    }
    Ok(None)
}

/// The receipts of a row ([`receipts`]).
pub struct Receipts<'a> {
    row: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Receipts<'a> {
    type Item = Result<(&'a [u8; 32], &'a [u8]), Truncated>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.row.len() {
            return None;
        }
        let at = self.at;
        let receipt = self
            .row
            .get(at..at + 33)
            .and_then(|header| {
                let len = usize::from(header[32]);
                let id = header[..32].try_into().ok()?;
                Some((id, self.row.get(at + 33..at + 33 + len)?))
            })
            .ok_or(Truncated(at));
        // A cut row ends the walk after its error.
        self.at = match &receipt {
            Ok((_, failure)) => at + 33 + failure.len(),
            Err(_) => self.row.len(),
        };
        Some(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_receipt_is_found_at_its_index_with_its_failure() {
        let block = vec![
            ([1u8; 32], vec![]),
            ([2u8; 32], vec![4, 1, 2, 3]),
            ([3u8; 32], vec![]),
        ];
        let row = encode(&block).expect("short failures");
        assert_eq!(row.len(), 3 * 33 + 4);
        for (index, (id, failure)) in block.iter().enumerate() {
            assert_eq!(
                find(&row, id).expect("whole"),
                Some((index as u32, failure.as_slice()))
            );
        }
        assert_eq!(find(&row, &[9; 32]).expect("whole"), None);
        let walked: Vec<_> = receipts(&row).map(|r| r.expect("whole")).collect();
        assert_eq!(walked.len(), 3);
        assert_eq!(walked[1], (&[2u8; 32], &[4u8, 1, 2, 3][..]));
    }

    #[test]
    fn a_cut_row_and_a_long_failure_are_refused() {
        let row = encode(&[([1u8; 32], vec![7; 5])]).expect("short failure");
        assert!(matches!(find(&row[..36], &[2; 32]), Err(Truncated(0))));
        assert!(matches!(find(&row[..20], &[2; 32]), Err(Truncated(0))));
        assert_eq!(receipts(&row[..36]).count(), 1, "the walk ends at the cut");
        assert!(matches!(
            encode(&[([1u8; 32], vec![0; 256])]),
            Err(TooLong(256))
        ));
    }
}
